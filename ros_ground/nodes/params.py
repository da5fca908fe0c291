"""ROS parameters from the settings tables (ros_ground.settings): descriptors, declaration,
reading, and the check a set-parameters callback runs.

A setting that is not `live` is read at configure: it may be set at any time (it is not
`read_only`, which would forbid that), and takes effect on the next configure; a value of a
model setting the next configure would refuse on its own (a missing directory, an uninstalled
spaCy pipeline: spec_change_problem) is refused when set. Those of READ_AT_START are read when
the node starts only (autostart), or must not be changed by anyone on the graph after it (the
trust settings), so they are declared `read_only`: given at start (launch file, params file,
`-p`), refused by rclpy after.
"""

from __future__ import annotations

import functools
import sys

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.parameter import Parameter

from ros_ground import settings
from ros_ground.param_files import as_declared, closest
from ros_ground.settings import Setting

GROUNDING_PARAMS = settings.GROUNDING
PROPOSAL_PARAMS = settings.PROPOSAL
SIM_CAMERA_PARAMS = settings.SIM_CAMERA

_INT_MAX = 2**63 - 1
# a lifecycle node's settings read once, when it starts (its description says so), not at a
# configure: declared read-only (ModelNode), as a plain node's start-only ones are
# autostart is read once; the two trust settings are read at each configure, but fixed at start
# so that nobody on the graph can let a model run its own code or fetch weights later
READ_AT_START = ("autostart", "trust_remote_code", "allow_download")
# the settings the models' specs are checked on when one of them is set (spec_change_problem);
# `device` has its own check (lifecycle._usable_device)
SPEC_SETTINGS = ("model", "sam_model", "sam_checkpoint", "allow_download", "spacy_model")


def descriptor(setting: Setting, read_only: bool = False) -> ParameterDescriptor:
    """The setting's description, choices and numeric range as a ParameterDescriptor;
    `read_only` for a setting read once, at start (rclpy then refuses changes; its description
    says so)."""
    suffix = "" if setting.live or read_only else " (read at configure)"
    d = ParameterDescriptor(description=setting.description + suffix, read_only=read_only,
                            additional_constraints=setting.range_text())
    if setting.low is None and setting.high is None:
        return d
    if isinstance(setting.default, float):
        low = -sys.float_info.max if setting.low is None else float(setting.low)
        high = sys.float_info.max if setting.high is None else float(setting.high)
        d.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    else:
        low = -_INT_MAX if setting.low is None else int(setting.low)
        high = _INT_MAX if setting.high is None else int(setting.high)
        d.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    return d


def declare(node, table, read_only: tuple[str, ...] = ()) -> dict[str, str]:
    """Declare every setting of `table` on `node` (those named in `read_only` read-only);
    returns {name: why} for the overrides (launch file, YAML, `-p`) that were refused, each
    declared with its default instead.

    rclpy raises for an override outside a setting's range or of the wrong type, which would
    end the node (and a container with it) before it could say more: a lifecycle node comes up
    unconfigured instead, and refuses to configure until each refused name is set again.
    """
    refused = {}
    valid = {}  # the declared values that pass their own checks, in the engine's form
    for s in table:
        d = descriptor(s, s.name in read_only)
        why = ""
        try:
            node.declare_parameter(s.name, s.default, d)
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            given = getattr(getattr(node, "_parameter_overrides", {}).get(s.name),  # no public accessor
                            "value", None)
            why = str(exc).removesuffix(f": {s.name}") + type_hint(s, str(exc), given)
            fixed = as_declared(s, given) if isinstance(exc, InvalidParameterTypeException) else None
            if fixed is not None:
                why = _declare_as(node, s, fixed, d)
        else:
            try:
                node.get_parameter(s.name)
            except ParameterUninitializedException:  # "-p cameras:=[]": declared without a type
                node.undeclare_parameter(s.name)
                why = _declare_as(node, s, [], d) if isinstance(s.default, (list, tuple)) \
                    else "the value given has no type"
        if why:
            node.declare_parameter(s.name, s.default, d, ignore_override=True)
            refused[s.name] = why
            continue
        try:  # what rclpy's types and ranges let through: "device: gpu", "mode: entitys"
            valid[s.name] = s.check(node.get_parameter(s.name).value)
        except (ValueError, TypeError) as exc:
            refused[s.name] = str(exc)
    for warning in unknown_overrides(node, table):
        node.get_logger().warning(warning)
    broken = _broken_rule(valid)
    if broken is not None:  # each value allowed, two together not: configure will refuse
        node.get_logger().error(f"{broken}; the node will not configure until then")
    return refused


def _declare_as(node, setting: Setting, value, d: ParameterDescriptor) -> str:
    """Declare `setting` on `node` with `value` (of as_declared), ignoring the override; "" or,
    declaring nothing, why rclpy refused it (out of range). An empty list is declared typed
    first, then set: rclpy types a bare [] as a byte array."""
    if not (isinstance(value, list) and not value):
        try:
            node.declare_parameter(setting.name, value, d, ignore_override=True)
        except InvalidParameterValueException as exc:
            return str(exc)
        return ""
    kind = Parameter.Type.from_parameter_value(setting.default)
    if d.read_only:
        return f"an empty list cannot be set on read-only {setting.name}: leave it out for its default"
    node.declare_parameter(setting.name, kind, d, ignore_override=True)
    result = node.set_parameters([Parameter(setting.name, kind, value)])[0]
    if not result.successful:
        node.undeclare_parameter(setting.name)
    return "" if result.successful else result.reason


def retype_changes(node, table):
    """A pre-set-parameters callback for `node` (Node.add_pre_set_parameters_callback): each
    change to a setting of `table` of another type than declared, in the declared type where
    as_declared can tell what was meant (`ros2 param set ... max_frame_age_s 0`); a change it
    cannot retype is passed on for rclpy to refuse, and the node logs how to write it."""
    declared = settings.by_name(table)

    def retype(changes: list) -> list:
        out = []
        for p in changes:
            s = declared.get(p.name)
            if s is None and not node.has_parameter(p.name):  # rclpy's refusal names nothing
                node.get_logger().warning(f"parameter {p.name!r} is not one of this node's"
                                          + closest(p.name, table))
            wanted = None if s is None else Parameter.Type.from_parameter_value(s.default)
            if s is None or p.type_ in (Parameter.Type.NOT_SET, wanted):
                out.append(p)
                continue
            fixed = as_declared(s, p.value)
            if fixed is not None:
                out.append(Parameter(p.name, wanted, fixed))
                continue
            error = f"expected {wanted.name} got {p.type_.name}"
            node.get_logger().warning(f"parameter {p.name}: {p.value!r} is refused, "
                                      f"{error}{type_hint(s, error, p.value)}")
            out.append(p)
        return out

    return retype


def type_hint(setting: Setting, error: str, given=None) -> str:
    """How to write `setting`'s value so that ROS types it as declared, for rclpy's type
    `error` and the value `given` ("" when no hint applies): ROS parameters take the type YAML
    reads, so 5 is an integer, not a double, and a bare on / 1 is a boolean / integer, not
    text."""
    name = setting.name
    if isinstance(setting.default, float) and "INTEGER" in error:
        value = float(given) if isinstance(given, int) else 0.0
        return f" (a double needs its decimal point: {name}: {value}, or -p {name}:={value})"
    if isinstance(setting.default, str) and ("BOOL" in error or "INTEGER" in error
                                             or "DOUBLE" in error):
        number = isinstance(given, (int, float)) and not isinstance(given, bool)
        text = str(given) if number else setting.default
        try:
            setting.check(text)
        except (ValueError, TypeError):
            text = setting.default
            if number and setting.choices:  # quoting would not help: say what would
                example = next((c for c in setting.choices if c[:1].isdigit()), setting.default)
                return (f" ({given} is refused quoted too: {name} must be "
                        f"{setting.range_text()}, as text: {name}: \"{example}\" or "
                        f"-p '{name}:=\"{example}\"')")
        allowed = f"; {setting.range_text()}" if setting.choices else ""
        return (f" (YAML reads a bare on / off / yes / no as a boolean and 1 as a number: "
                f"quote the text, {name}: \"{text}\" or -p '{name}:=\"{text}\"'{allowed})")
    return ""


def unknown_overrides(node, table) -> list[str]:
    """A warning for each override given to `node` (params file, `-p`) that names no parameter
    of it nor of another ros_ground node: a misspelt name, which ROS ignores without a word.

    Reads rclpy's Node._parameter_overrides (no public accessor; {} if it goes away).
    Parameters rclpy declares later (qos_overrides.*) and use_sim_time are left out.
    """
    known = {s.name for t in (GROUNDING_PARAMS, PROPOSAL_PARAMS, SIM_CAMERA_PARAMS) for s in t}
    return [f"parameter {name!r} was given but is not one of this node's, so it is ignored"
            + closest(name, table)
            for name in sorted(getattr(node, "_parameter_overrides", {}) or {})
            if name not in known and not name.startswith("qos_overrides.")
            and not node.has_parameter(name)]


def values(node, table) -> dict:
    return {s.name: node.get_parameter(s.name).value for s in table}


def check_changes(node, table, changes) -> tuple[SetParametersResult, dict]:
    """Check proposed parameter changes against the settings (what a set-parameters callback
    returns), with every value of `table` after the change, checked, in the engine's form.

    Each changed value is checked, and the rules between settings on all of them; a value
    `declare` refused at start that the change leaves as it is does not refuse the change (it
    stands in the result as the setting's default, and the node still refuses to configure
    until it is set), nor does a rule the values broke before the change, so several bad values
    can be mended one at a time."""
    declared = settings.by_name(table)
    before = values(node, table)
    # rclpy's own parameters (use_sim_time, qos_overrides.*) are rclpy's to check
    ours = [c for c in changes if c.name in declared]
    merged = {**before, **{c.name: c.value for c in ours}}
    changed = {c.name for c in ours}
    checked, valid = {}, {}
    try:
        for name, value in merged.items():
            try:
                checked[name] = valid[name] = declared[name].check(value)
            except (ValueError, TypeError):
                if name in changed:
                    raise
                checked[name] = declared[name].default
        broken = _broken_rule(valid)
        if broken is not None and broken != _broken_rule(_valid(table, before)):  # this change breaks it
            raise ValueError(broken)
    except (ValueError, TypeError) as exc:
        return SetParametersResult(successful=False, reason=str(exc)), merged
    return SetParametersResult(successful=True), checked


def refusing_on_error(callback):
    """`callback` (a node's set-parameters callback) returning a refusal that names the error
    where it raises: rclpy's executor would log the exception and never answer the
    set-parameters service, so `ros2 param set` (and dump / load) waited forever."""
    @functools.wraps(callback)
    def checked(changes):
        try:
            return callback(changes)
        except Exception as exc:  # noqa: BLE001 - any error must still answer the request
            names = ", ".join(c.name for c in changes)
            return SetParametersResult(successful=False, reason=f"setting {names} failed: "
                                                                  f"{type(exc).__name__}: {exc}")
    return checked


def _valid(table, given: dict) -> dict:
    """The values of `given` that pass their own checks, in the engine's form: a value that
    fails its own is left out, so it breaks no rule between settings on another's behalf."""
    valid = {}
    for s in table:
        try:
            valid[s.name] = s.check(given[s.name])
        except (KeyError, ValueError, TypeError):
            pass
    return valid


def _broken_rule(valid: dict) -> str | None:
    """Why `valid` (values that pass their own checks, in the engine's form) breaks a rule
    between settings (settings.check_combination), None when it breaks none."""
    try:
        settings.check_combination(valid)
    except ValueError as exc:
        return str(exc)
    return None


def read_at_configure(table, changes) -> str:
    """For a lifecycle node's accepted change: which of the changed settings wait for the
    next configure ("" if none)."""
    # rclpy's own parameters (use_sim_time) are not in the table and take effect at once
    later = sorted({c.name for c in changes} & {s.name for s in table if not s.live}
                   - set(READ_AT_START))
    if not later:
        return ""
    return (f"{', '.join(later)} {'is' if len(later) == 1 else 'are'} read at configure: "
            "takes effect at the next configure")


def spec_change_problem(before: dict, after: dict) -> str | None:
    """Why the values `after` (a node's settings by name, after a change; the LMM's and spaCy's
    where the node has them) break the models' specs where `before` did not: each problem that
    model_specs.spec_problems finds in `after` and not in `before`, in the words the next
    configure would refuse it with; None when there is none. It loads nothing: it stats paths,
    looks in the Hugging Face cache and the installed packages.

    A problem `before` had is left to configure, so several can be mended one at a time. Nor is
    sam_model against sam_checkpoint judged (a released SAM without one, an embedded SAM with
    one: check_sam_spec's pair_checks): they are set one at a time, in either order, and
    configure refuses a pair that does not fit; nor a device (its own check).
    """
    from ros_ground.model_specs import joined, spec_problems

    def problems(values: dict) -> list[Exception]:
        return spec_problems(values.get("model"), values["sam_model"],
                             values["sam_checkpoint"] or None, "cpu",
                             bool(values.get("allow_download", False)), values.get("spacy_model"),
                             pair_checks=False)

    old = {str(p) for p in problems(before)}
    error = joined([p for p in problems(after) if str(p) not in old])
    return None if error is None else str(error)


def half_on_cpu(after: dict) -> str:
    """For a grounding node's change: the warning (lmm.half_on_cpu) when `after`'s dtype is half
    precision and its device is the CPU ("" otherwise, and for a device torch cannot use)."""
    if "dtype" not in after:
        return ""
    from ros_ground.device import resolve_device
    from ros_ground.lmm import half_on_cpu as warning

    try:
        return warning(after["dtype"], resolve_device(after["device"]))
    except ValueError:
        return ""
