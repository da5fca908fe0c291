"""ROS 2 parameter files (the YAML of `--params-file`, `ros2 param dump`, launch's
`params_file`): which sections apply to a node, and what they give it.

A file whose sections name no node it is given to is the classic silent failure of a robot
bring-up: `/robot/grounding_node:` in a file launched with `namespace:=ground` applies to
nothing, and the nodes start on their defaults (the embedded sim models). rcl matches a
section to a node by its fully qualified name, with `*` one name token and `**` any number
(the ROS 2 command-line arguments design, "Parameter files"), after joining nested namespace
keys (`ground: grounding_node: ros__parameters:`) and putting a `/` before a name without one.
A value YAML typed otherwise than its parameter is declared (`compile: off` is a boolean) is
read as the node reads it (`as_declared`), and an unknown name gets the closest known ones
(`closest`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from ros_ground.settings import GROUNDING, PROPOSAL, SIM_CAMERA, Setting, by_name

PARAMS_KEY = "ros__parameters"


def no_aliases(base):
    """A subclass of the yaml loader class `base` that refuses an alias (`*a`) with a
    yaml.composer.ComposerError at its line, as rcl does ("Will not support aliasing"; an anchor
    alone names a value and is harmless): nested aliases (the "billion laughs") make a file of
    a few hundred bytes a value of billions of items, gigabytes once walked or copied. Used by `read_yaml` and
    launch/ground.launch.py's loader of launch argument values."""
    import yaml

    class NoAliases(base):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, f"alias *{event.anchor[:40]}: YAML aliases are refused, as ROS "
                    "refuses them; write each value out", event.start_mark)
            return super().compose_node(parent, index)

    return NoAliases


def _loader():
    """yaml's SafeLoader reading `!!python/tuple` as a list. launch_ros writes the parameters a
    launch file gives as a dict (`parameters=[{"cameras": [...]}]`) to a temporary params file
    with yaml.dump, and a list parameter's value is a tuple there by then (its
    evaluate_parameters): rcl reads that tag as a list, safe_load refuses it. No other python
    tag is accepted: a params file builds no arbitrary objects here. (launch_ros's bytes come
    as `!!binary`, which safe_load reads.) Aliases are refused (`no_aliases`), and so are merge
    keys (`<<: {max_new_tokens: 7}`): rcl does not merge them but reads `<<` as a name, so the
    node would get a parameter `<<.max_new_tokens` and run on its default where safe_load
    would read 7."""
    import yaml

    class ParamsLoader(no_aliases(yaml.SafeLoader)):
        def flatten_mapping(self, node):
            for key, _ in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        None, None, "merge key <<: YAML merge keys are refused, as ROS does not merge "
                        "them (rcl reads '<<' as part of a parameter's name); write each value out",
                        key.start_mark)
            super().flatten_mapping(node)

    ParamsLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                                 lambda loader, node: loader.construct_sequence(node, deep=True))
    return ParamsLoader


def read_yaml(path) -> Any:
    """The YAML document of the file at `path`. OSError or ValueError in one line naming the
    file and what is wrong: no such file, a folder, no permission, not a YAML text file (not
    UTF-8: an image given by mistake), or where its YAML is broken."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_loader())  # a SafeLoader: no arbitrary objects
    except FileNotFoundError:
        raise OSError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise OSError(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise OSError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.reader.ReaderError):
        raise ValueError(f"{path}: not a YAML text file (not UTF-8 text)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ValueError(f"{path}: YAML error{where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: YAML error: {str(exc).splitlines()[0]}") from None


def load(path: str) -> dict:
    """The YAML mapping of the parameter file at `path` (as rcl reads it, launch_ros's
    `!!python/tuple` a list). OSError when it cannot be read, ValueError when it is not YAML or
    not a mapping (`read_yaml`)."""
    content = read_yaml(path)
    if not isinstance(content, dict):
        raise ValueError(f"{path} is no ROS 2 parameter file (node: ros__parameters: ...)")
    return content


def _param_sections(content: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, value) of each section of a parameter file: a key holding `ros__parameters`, or
    holding no mapping below it (a section written wrong); nested namespace keys joined
    ("ground/x" of `ground: x: ros__parameters:`), a top-level key as written."""
    out = []
    for key, value in content.items():
        name = f"{prefix}/{str(key).strip('/')}" if prefix else str(key)
        if isinstance(value, dict) and PARAMS_KEY not in value and any(
                isinstance(v, dict) for v in value.values()):
            out += _param_sections(value, name)
        else:
            out.append((name, value))
    return out


def sections(content: dict) -> list[str]:
    """The node names of a parameter file's sections, nested keys joined ("/ground/x" of
    `ground: x: ros__parameters:`), each with a leading "/" as rcl reads them."""
    return ["/" + name.strip("/") for name, value in _param_sections(content)
            if isinstance(value, dict) and PARAMS_KEY in value]


def applies(section: str, node: str) -> bool:
    """Whether the section named `section` (`sections`) applies to the node whose fully
    qualified name is `node` ("/ground/grounding_node"): "*" matches one name token, "**" any
    number, as rcl matches them."""
    tokens = [t for t in section.split("/") if t]
    pattern = "".join(r"(?:/[^/]+)*" if t == "**" else r"/[^/]+" if t == "*" else "/" + re.escape(t)
                      for t in tokens)
    return re.fullmatch(pattern or "/", node) is not None


def unmatched(path: str, nodes: Sequence[str]) -> str | None:
    """Why the parameter file at `path` misses `nodes` (fully qualified names), or None: a
    section of it names one of them by its node name ("/robot/grounding_node") but none of
    those applies to it, or no section applies to any of them; a file that cannot be read
    says so. A wildcard section ("/**": use_sim_time) does not hide a node's own section
    written for another namespace."""
    try:
        names = sections(load(path))
    except (OSError, ValueError) as exc:
        return str(exc)
    # a node missed: the sections naming it by its node name, and none of them applying to it
    missed = [n for n in nodes if (own := [s for s in names if _last(s) == _last(n)])
              and not any(applies(s, n) for s in own)]
    if not missed and any(applies(s, n) for s in names for n in nodes):
        return None
    missed = missed or list(nodes)
    return (f"parameter file {path} has no section for {', '.join(missed)} (its sections: "
            f"{', '.join(names) or 'none'}): its values for it apply to no node here, which runs "
            f"on its defaults; name the nodes as /**/{_last(missed[0])}: ros__parameters: ...")


def _last(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def params_file(path: str, node: str, table: Iterable, required: bool = True) -> dict[str, Any]:
    """The parameters a ROS 2 parameter file gives node `node` in any namespace: the
    `ros__parameters` of each section naming it (`grounding_node`, `/ns/grounding_node`,
    `/**/grounding_node`, `/**`, nested `ns: grounding_node:`), a later one's value winning.
    Only those `table` (settings.Setting) declares are returned; a name it lacks is ignored, as
    the node itself ignores it (`unknown_names` finds them to warn of). OSError when the file
    cannot be read, ValueError when it is no parameter file or has no section for `node` (unless
    not `required`: then {})."""
    all_sections = _param_sections(load(path))
    declared = by_name(table)
    values: dict[str, Any] = {}
    found = [(key, section) for key, section in all_sections
             if _last(key.strip("/")) in (node, "*", "**")]  # "/**/x" -> "x"
    if not found and not required:
        return values
    if not found:
        raise ValueError(f"{path} has no section for {node} (its sections: "
                         f"{', '.join(key for key, _ in all_sections)}); e.g. /**/{node}: ros__parameters:")
    for key, section in found:
        params = section.get(PARAMS_KEY) if isinstance(section, dict) else None
        if not isinstance(params, dict):
            raise ValueError(f"{path}: {key!r} has no ros__parameters mapping")
        values.update({name: value for name, value in params.items() if name in declared})
    return values


def unknown_names(path: str) -> list[tuple[str, str]]:
    """The misspelt parameter names of the file, sorted, each with the node whose own section
    names it ("" for a wildcard section, `/**` or `*`): in a wildcard section a name no
    ros_ground node declares, in a ros_ground node's own section one that node lacks. Either
    reaches no node, which ignores it (the node warns, nodes.params.unknown_overrides); other
    nodes' sections are theirs. OSError or ValueError as `load`."""
    tables = {"grounding_node": GROUNDING, "mask_proposal_node": PROPOSAL, "sim_camera_node": SIM_CAMERA}
    known = {node: {s.name for s in table} | {"use_sim_time"} for node, table in tables.items()}
    known["*"] = known["**"] = set().union(*known.values())
    found: set[tuple[str, str]] = set()
    for key, section in _param_sections(load(path)):
        params = section.get(PARAMS_KEY) if isinstance(section, dict) else None
        owner = _last(key.strip("/"))
        if isinstance(params, dict) and owner in known:
            found.update((name, "" if owner in ("*", "**") else owner)
                         for name in params if name not in known[owner])
    return sorted(found)


def as_declared(setting: Setting, value):
    """`value` in the type `setting` is declared with, where YAML typed it otherwise and what
    was meant is not in doubt; None where it is, or where the type is already right.

    An integer for a double (`max_frame_age_s: 0`), a whole double for an integer
    (`queue_size: 3.0`), for text with choices the choice YAML read as a number or a boolean
    (`multimask_choice: 1`, `compile: off`), and an empty list for a list (`cameras: []`).
    rclpy refuses each of these by type, and under Python 3.11+ says only "expected '3' got
    '2'" (it formats the type enum as a number).
    Anything else (`device: 0`) is still refused, with type_hint's advice.
    """
    d = setting.default
    if isinstance(d, bool) or value is None:
        return None
    if isinstance(d, (list, tuple)) and not isinstance(value, str) and hasattr(value, "__len__") \
            and len(value) == 0:
        return []  # "[]" has no item type: YAML's empty list is typed a byte array, or nothing
    if isinstance(d, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(d, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(d, str) and setting.choices:
        if isinstance(value, bool):
            words = ("on", "true", "yes") if value else ("off", "false", "no")
            return next((w for w in words if w in setting.choices), None)
        if isinstance(value, (int, float)) and str(value) in setting.choices:
            return str(value)
    return None


def declared_type(setting: Setting) -> str:
    """The ROS parameter type `setting` is declared with, as rclpy names it in a refusal."""
    d = setting.default
    if isinstance(d, (list, tuple)):
        return _TYPE_NAMES.get(type(d[0] if d else ""), "STRING") + "_ARRAY"
    return _TYPE_NAMES.get(type(d), "STRING")


_TYPE_NAMES = {bool: "BOOL", int: "INTEGER", float: "DOUBLE"}


def type_words(setting: Setting) -> str:
    """`declared_type` in words: "an integer", "a number (not quoted)", "a list of text"."""
    words = {"BOOL": "true or false", "INTEGER": "an integer", "DOUBLE": "a number (not quoted)",
             "STRING": "text"}
    kind = declared_type(setting)
    return f"a list of {words[kind[:-len('_ARRAY')]]}" if kind.endswith("_ARRAY") else words[kind]


def of_declared_type(setting: Setting, value) -> bool:
    """Whether a node declaring `setting` takes `value` (after as_declared) by its type alone:
    rclpy refuses a double for an integer (`queue_size: 2.5`) and text for a number
    (`pred_iou_thresh: "0.5"`), which a flag, parsed from text, would take."""
    want = declared_type(setting)
    if want.endswith("_ARRAY"):
        return isinstance(value, (list, tuple)) and all(_is(want[:-len("_ARRAY")], v) for v in value)
    return _is(want, value)


def _is(kind: str, value) -> bool:
    if kind == "BOOL":
        return isinstance(value, bool)
    return isinstance(value, {"INTEGER": int, "DOUBLE": float, "STRING": str}[kind]) and not isinstance(
        value, bool)


def closest(name: str, table) -> str:
    """': did you mean ...?' naming the parameters closest to the unknown `name`, among the
    node's own (`table`) and then every ros_ground node's ("" when none is close)."""
    ours = {s.name for s in table}
    owner: dict[str, list[str]] = {}
    for node_name, t in (("grounding_node", GROUNDING), ("mask_proposal_node", PROPOSAL),
                         ("sim_camera_node", SIM_CAMERA)):
        for s in t:
            owner.setdefault(s.name, []).append(node_name)
    # among every ros_ground node's names: a shared section reaches several nodes
    close = difflib.get_close_matches(name, sorted(ours) + sorted(set(owner) - ours), n=3)
    named = [repr(c) if c in ours else f"{c!r} (a {' / '.join(owner[c])} parameter)" for c in close]
    return f": did you mean {' or '.join(named)}?" if close else ""
