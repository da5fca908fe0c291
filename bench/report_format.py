"""Formatting shared by the RESULTS.md sections: numbers, pass marks, section headings."""

from __future__ import annotations

GPU_COMMAND = ".venv/bin/python -m bench.run --gpu"
NOT_MEASURED = "Not measured in this run."


def fmt(value, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value}{unit}"
    try:
        return f"{float(value):.{digits}f}{unit}"
    except (TypeError, ValueError):
        return str(value)


def pass_mark(flag) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "n/a"}[flag]


def open_section(lines: list[str], title: str, data=True, missing: str = NOT_MEASURED) -> bool:
    """Open section `title` (`## title` and a blank line); when `data` is empty say `missing`
    and return False, so the caller returns."""
    lines += [f"## {title}", ""]
    if not data:
        lines += [missing, ""]
        return False
    return True
