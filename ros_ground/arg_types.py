"""argparse types shared by the command lines (`ros-ground` and its `train`, `ask`): each
parses one flag's text or raises argparse.ArgumentTypeError saying what it expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable


class ExactParser(argparse.ArgumentParser):
    """A parser that takes flags only as spelt in full (allow_abbrev=False): argparse's default
    took a misspelt `--max-new-token 5` for `--max-new-tokens` in silence. Subparsers are of the
    parser's class, so they are exact too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "allow_abbrev": False})


def ints(count: int) -> Callable[[str], tuple[int, ...]]:
    """argparse type: `count` comma-separated integers."""
    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != count:
            raise argparse.ArgumentTypeError(f"expected {count} comma-separated integers, got {text!r}")
        return values
    return parse


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= `low`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def scene_set(text: str) -> str:
    """argparse type: a scene set sim.ranges knows ("in", "ood", "ood:distance,palette")."""
    from ros_ground.sim.ranges import scene_set_ranges

    try:
        scene_set_ranges(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def positive_number(unit: str = "") -> Callable[[str], float]:
    """argparse type: a finite number > 0 (of `unit`, which the error names)."""
    what = f"a finite number of {unit} > 0" if unit else "a finite number > 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


positive_seconds = positive_number("seconds")
