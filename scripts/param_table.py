#!/usr/bin/env python3
"""Print the README's parameter tables from ros_ground/nodes/params.py (tests compare them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ros_ground.nodes import params  # noqa: E402

TABLES = (
    ("grounding_node", params.GROUNDING_PARAMS),
    ("mask_proposal_node", params.PROPOSAL_PARAMS),
    ("sim_camera_node", params.SIM_CAMERA_PARAMS),
)


def _value(value) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, list):  # as a YAML flow sequence, the way a params file writes it
        return f"`[{', '.join(map(str, value))}]`"
    return '`""`' if value == "" else f"`{value}`"


def render() -> str:
    out = []
    for node, table in TABLES:
        out += [f"**{node}**", "", "| parameter | default | live | meaning |", "|---|---|---|---|"]
        out += [f"| `{p.name}` | {_value(p.default)} | {'yes' if p.dynamic else 'no'} | "
                f"{p.description} |" for p in table]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
