#!/usr/bin/env python3
"""Print the README's parameter tables from ros_ground/settings.py (tests compare them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ros_ground import settings  # noqa: E402

TABLES = (
    ("grounding_node", settings.GROUNDING),
    ("mask_proposal_node", settings.PROPOSAL),
    ("sim_camera_node", settings.SIM_CAMERA),
)


def _value(value) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, list):  # as a YAML flow sequence, the way a params file writes it
        items = ('""' if v == "" else str(v) for v in value)
        return f"`[{', '.join(items)}]`"
    return '`""`' if value == "" else f"`{value}`"


def row(s: settings.Setting) -> str:
    """One README table row for a setting."""
    allowed = s.range_text()
    return (f"| `{s.name}` | {_value(s.default)} | {f'`{allowed}`' if allowed else ''} | "
            f"{'yes' if s.live else 'no'} | {s.description} |")


def render() -> str:
    out = []
    for node, table in TABLES:
        out += [f"**{node}**", "", "| parameter | default | values | live | meaning |",
                "|---|---|---|---|---|"]
        out += [row(s) for s in table]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
