"""The command line's flags that mirror node parameters, one per setting, named and defaulting
like the parameter (`--max-new-tokens` is `max_new_tokens`), and their values from ROS 2
parameter files (`ros-ground ground --params-file`), read as the nodes read them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ros_ground import param_files, settings
from ros_ground.arg_types import int_at_least

if TYPE_CHECKING:  # the engine imports torch: only a subcommand that runs a model loads it
    from ros_ground.engine import EngineConfig

GROUND_LIMITS = ("max_image_pixels", "max_prompt_chars")  # node limits `ground` has flags of
# a node setting `ground` does not take from a file: compiling the decode step pays over a
# node's many requests, not one image (the sim model: 16.7 s against 0.2 s on a 2-core CPU)
NOT_FROM_FILES = ("compile",)
_positive = int_at_least(1)


def flag_type(setting: settings.Setting) -> Callable[[str], object]:
    """argparse type of a setting's flag: its default's type, a list as VALUE[,VALUE...], each
    value checked against the setting so a bad one is a usage error naming the flag."""
    kind = type(setting.default)
    expected = {int: "an integer", float: "a number"}.get(kind)

    def parse(text: str):
        try:
            value = [v.strip() for v in text.split(",")] if kind is list else kind(text)
        except ValueError:  # int("abc")'s own words name Python, not the flag's value
            raise argparse.ArgumentTypeError(f"expected {expected or kind.__name__}, got {text!r}") from None
        try:
            setting.check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        return value

    return parse


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig the engine flags of `add_model_args` (and the proposal flags of
    `add_proposal_args`, where the parser has them) describe."""
    from ros_ground.engine import EngineConfig

    config = EngineConfig.from_settings(vars(args))
    proposals = {name: getattr(args, name) for name in settings.AMG_NAMES if hasattr(args, name)}
    return replace(config, amg_params={**config.amg_params, **proposals}).validate()


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """One flag per setting marked `cli`, named and defaulting like the node parameter."""
    for s in settings.GROUNDING:
        if s.cli:
            add_setting_flag(parser, s, "the node's")


def add_proposal_args(parser: argparse.ArgumentParser) -> None:
    """One flag per mask-proposal setting (settings.AMG_NAMES), named and defaulting like the
    mask_proposal_node's parameter: the proposals of mode auto / entities."""
    for s in settings.PROPOSAL:
        if s.name in settings.AMG_NAMES:
            add_setting_flag(parser, s, "in mode auto / entities, the mask_proposal_node's")


def add_setting_flag(parser: argparse.ArgumentParser, s: settings.Setting, whose: str) -> None:
    """Add `--NAME` for setting `s` to `parser`, its default, allowed values and `whose` in the help."""
    flag = "--" + s.name.replace("_", "-")
    allowed = f"; {s.range_text()}" if s.range_text() else ""
    shown = '""' if s.default == "" else "%(default)s"  # as the README's tables give it
    help_text = f"{s.description} (default {shown}{allowed}; {whose} {s.name})"
    if isinstance(s.default, bool):
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=s.default,
                            help=help_text)
        return
    default = s.default if s.default != "" else None  # "" on the node means "not given"
    if isinstance(default, list):
        default = ",".join(default)  # argparse parses a string default through `type`
    parser.add_argument(flag, type=flag_type(s), default=default,
                        metavar="VALUE[,VALUE...]" if isinstance(s.default, list) else None,
                        help=help_text)


def file_flags(path: str) -> dict:
    """The flag values the parameter file at `path` gives `ground`: the grounding_node's
    (param_files.params_file; its model and engine settings, GROUND_LIMITS, and its
    default_prompt as `--prompt`) and, from the mask_proposal_node's section, its proposal
    settings only (settings.AMG_NAMES: the engine's own proposals; its sam_model or device are
    that node's), each read as the node reads it
    (param_files.as_declared: `compile: off`) and checked as its flag would be. Every other
    value of the two sections is checked as its node would (and not used). ValueError naming
    the file and the parameter, or a file with a section for neither node. Names no node has
    (param_files.unknown_names) are said on stderr with the closest names and ignored, as the
    nodes do; NOT_FROM_FILES are checked and left out in silence (the --params-file help says
    so: config/sim.yaml, the recommended file, sets compile)."""
    flags = {s.name: s for s in settings.GROUNDING if s.cli or s.name in GROUND_LIMITS}
    grounding = param_files.params_file(path, "grounding_node", settings.GROUNDING, required=False)
    proposal = param_files.params_file(path, "mask_proposal_node", settings.PROPOSAL, required=False)
    if not grounding and not proposal:  # a section for neither: say which sections it has
        param_files.params_file(path, "grounding_node", settings.GROUNDING)
    for name, node in param_files.unknown_names(path):  # ignored with a word, as the node does
        table = {"mask_proposal_node": settings.PROPOSAL, "sim_camera_node": settings.SIM_CAMERA}.get(
            node, settings.GROUNDING)
        who = f"{node} has no parameter" if node else "no ros_ground node has a parameter"
        print(f"ros-ground ground: {path}: {who} {name!r}, so it is ignored"
              f"{param_files.closest(name, table)}", file=sys.stderr)
    found = {}
    for table, values, used in ((settings.GROUNDING, grounding, flags),
                                (settings.PROPOSAL, proposal, settings.AMG_NAMES)):
        declared = settings.by_name(table)
        for name, value in values.items():
            setting = declared[name]
            fixed = param_files.as_declared(setting, value)
            value = value if fixed is None else fixed
            if not param_files.of_declared_type(setting, value):  # as the node would refuse it
                raise ValueError(f"{path}: {name}: expected {param_files.type_words(setting)}, got {value!r} "
                                 f"(the node declares it of type {param_files.declared_type(setting)} and "
                                 "would refuse it)")
            if name not in used or name in NOT_FROM_FILES:
                try:
                    setting.check(value)
                except ValueError as exc:
                    raise ValueError(f"{path}: {exc}") from None
                continue
            if not isinstance(value, bool):
                value = ",".join(map(str, value)) if isinstance(value, list) else str(value)
                try:
                    (_positive if name in GROUND_LIMITS else flag_type(setting))(value)
                except (argparse.ArgumentTypeError, ValueError) as exc:
                    raise ValueError(f"{path}: {name}: {exc}") from None
            found[name] = value
    if "default_prompt" in grounding:  # what the node's `describe` asks, so `ground`'s question too
        found["prompt"] = grounding["default_prompt"]
    return found
