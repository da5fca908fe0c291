"""Small pieces every node needs: QoS by name, frame keys, lifecycle autostart, spin_until, the
core's Python logging into rclpy's.

How an executable spins its nodes and stops on a signal: ros_ground.nodes.process."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable

import rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ros_ground.frames import pixel_fingerprint
from ros_ground.nodes.conversions import ns_to_stamp, stamp_to_ns

# Commands and results must arrive: reliable and keep-all, so a burst of commands (or of the
# rejections they earn) is held until delivered instead of being overwritten by newer ones.
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
# Pictures, markers, proposals and sim ground truth: reliable, but only the newest few kept, so
# a slow reader (rviz over Wi-Fi) gets fresh ones and the writer never holds every frame for it.
LATEST = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
# What an answer looks like (overlay, markers): the last one kept for a viewer that starts later
# (rviz opened after the answer); volatile readers match it too
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def qos_by_name(name: str) -> QoSProfile:
    """Camera QoS is a parameter because a mismatch is the classic 'nothing is published'."""
    if name == "sensor_data":
        return qos_profile_sensor_data
    if name in ("reliable", "auto"):  # auto: reliable until a publisher says otherwise
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    if name == "best_effort":
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    raise ValueError(f"image_qos must be one of sensor_data / reliable / best_effort / auto, got {name!r}")


# the nodes of this process whose loaded models are exempt from full collections; weak, so a
# node destroyed without a cleanup stops counting once it is collected
_MODEL_HOLDERS: weakref.WeakSet = weakref.WeakSet()
_GC_LOCK = threading.Lock()


def freeze_loaded_objects(holder) -> None:
    """Exempt everything loaded so far (models, libraries) from the cyclic garbage collector;
    `holder` (the node that loaded them) counts as holding models until `release_memory`.

    Why: a full collection walks every tracked object; with the LMM, SAM and spaCy loaded that
    is ~490k objects and ~250 ms on a robot CPU, landing inside a request every minute or two.
    Objects made later are still collected.
    """
    with _GC_LOCK:
        _MODEL_HOLDERS.add(holder)
        gc.collect()
        gc.freeze()


def thaw_loaded_objects(holder) -> None:
    """`holder` dropped its models: collect them, cycles included. The freeze is per process
    while its effect is wanted per node: while another node of the process (the composed
    container) still holds models, what survives the collection is frozen again, so only the
    dropped models leave the exemption."""
    with _GC_LOCK:
        _MODEL_HOLDERS.discard(holder)
        gc.unfreeze()
        gc.collect()
        if _MODEL_HOLDERS:
            gc.freeze()


def release_memory(dropped_by=None) -> None:
    """Collect garbage and return cached CUDA blocks, after a failed request or a cleanup.
    `dropped_by`: the node that dropped its models (cleanup), lifting their exemption from full
    collections (`thaw_loaded_objects`); None after a failed request, whose models are still
    loaded and whose leftovers were made after the freeze."""
    if dropped_by is not None:
        thaw_loaded_objects(dropped_by)
    else:
        gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def frame_key(header, rgb, topic: str) -> tuple | None:
    """Names one camera frame's pixels across nodes, so SAM embeds it once in a shared process:
    (frame_id, stamp ns, height, width, `topic` (the camera's resolved image topic), the
    decoded HxWx3 `rgb`'s frames.pixel_fingerprint). A header names no picture by itself (a
    replay, a hardware-synced stereo pair in one frame_id, a driver that repeats a stamp), so
    the pixels are in the key. None for a zero stamp, which names no frame: SAM then names the
    image by all of its pixels."""
    stamp = stamp_to_ns(header.stamp)
    if not stamp:
        return None
    return (header.frame_id, stamp, int(rgb.shape[0]), int(rgb.shape[1]), topic,
            pixel_fingerprint(rgb))


def now_ns(node) -> int:
    """`node`'s clock now (ns). Under sim time before any /clock (a bag played without `--clock`)
    that clock reads 0, and every frame would be 0 s old and a zero stamp stay zero: the
    system's time stands in, and the node warns once that it does."""
    now = node.get_clock().now().nanoseconds
    if now:
        return now
    if not getattr(node, "_ros_ground_no_clock_said", False):
        node._ros_ground_no_clock_said = True
        node.get_logger().warning(
            "use_sim_time is true but nothing publishes /clock (a bag played without --clock?): "
            "frame ages and the stamps of unstamped frames use the system's time until it does")
    return time.time_ns()


def stamp_if_unset(header, node) -> None:
    """Set `header`'s zero stamp to `node`'s now (`now_ns`), the time the frame was received. A
    driver that stamps nothing would otherwise give every frame one stamp, and depth and
    proposals are paired with a frame by its stamp: each frame would be paired with the first
    one's."""
    if stamp_to_ns(header.stamp) == 0:
        header.stamp = ns_to_stamp(now_ns(node))


def autostart(node: LifecycleNode) -> bool:
    """Configure then activate, as `autostart` asks; False (logged) when a transition failed."""
    if not node.get_parameter("autostart").value:
        node.get_logger().info("autostart is false: waiting for lifecycle transitions")
        return True
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        name = node.get_fully_qualified_name()
        node.get_logger().error(
            f"configure failed; fix the parameters (ros2 param set {name} NAME VALUE) and "
            f"configure again (ros2 lifecycle set {name} configure, then activate; without "
            f"that command, ros-ground lifecycle {name} configure), or restart it with the "
            "fixed parameters")
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def say_twins(node, effect: str) -> None:
    """Warn when another node of `node`'s fully qualified name is in the graph (ROS lets two
    start); `effect` says what the duplicate does, e.g. that each command gets two answers."""
    name = node.get_fully_qualified_name()
    twins = sum(f"{ns.rstrip('/')}/{n}" == name for n, ns in node.get_node_names_and_namespaces())
    if twins > 1:
        node.get_logger().warning(f"{twins} nodes named {name} are running: {effect}; give each "
                                  "its own name or namespace")


def spin_until(node, done: Callable[[], object], timeout_s: float,
               check: Callable[[], None] | None = None, check_every_s: float = 0.5) -> bool:
    """Spin `node` until `done()` is true or `timeout_s` seconds pass; returns whether it is done.

    `check`, when given, runs every `check_every_s` seconds of the wait and may raise to end it
    (the demo's graph watch does when a node fails). rclpy's spin_until_future_complete takes
    a future only; this takes any condition, e.g. "a message has arrived".
    """
    deadline = time.monotonic() + timeout_s
    checked = time.monotonic()
    while not done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if check is not None and time.monotonic() - checked >= check_every_s:
            check()
            checked = time.monotonic()
    return bool(done())


class RosLogging(logging.Handler):
    """Python logging of the ROS-free core (the `ros_ground` loggers: a centre crop the LMM
    never sees, a phrase whose map has no peak, compiled decoding off for a model type) into a
    node's rclpy logger, so it reaches /rosout, rqt_console and the launch log as the node's own
    messages do; by itself it would reach stderr alone. A record with an exception (LOG.exception)
    gets its type, message and raising frame on the same line, and its traceback at debug."""

    def __init__(self, logger):
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"[{record.name.removeprefix('ros_ground.')}] {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                # the reason on the line itself, the whole traceback at debug: a bare "failed"
                # would leave the cause to a debugger
                text += f": {exception_summary(record.exc_info[1])}"
                self._say(record.levelno, text)
                self._say(logging.DEBUG, "".join(traceback.format_exception(*record.exc_info)))
            else:
                self._say(record.levelno, text)
        except Exception:  # noqa: BLE001 - logging must never fail the code that logs
            self.handleError(record)

    def _say(self, level: int, text: str) -> None:
        # one call site per severity: rclpy refuses a call site whose severity changes
        if level >= logging.ERROR:
            self.logger.error(text)
        elif level >= logging.WARNING:
            self.logger.warning(text)
        elif level >= logging.INFO:
            self.logger.info(text)
        else:
            self.logger.debug(text)


def exception_summary(exc: BaseException) -> str:
    """One readable line for `exc`: "AttributeError: ... (at outputs.py:41 in deliver)", the
    frame that raised it; its type alone when it has no message."""
    try:
        said = " ".join(str(exc).split())  # a CUDA out-of-memory message spans lines
    except Exception:  # noqa: BLE001 - an exception whose str() raises still gets its line
        said = ""
    line = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        line += f" (at {os.path.basename(last.filename)}:{last.lineno} in {last.name})"
    return line


def forward_core_logging(logger) -> RosLogging:
    """Send the core's Python logging to `logger` (an rclpy logger: the process's first node's)
    through one RosLogging on the `ros_ground` logger, which then no longer propagates to the
    root logger's stderr (each message once). Returns the handler."""
    core = logging.getLogger("ros_ground")
    for handler in [h for h in core.handlers if isinstance(h, RosLogging)]:
        core.removeHandler(handler)
    handler = RosLogging(logger)
    core.addHandler(handler)
    core.propagate = False
    return handler


# DDS maps a domain to UDP ports 7400 + 250 x id (+ offsets): above 232 they pass 65535
MAX_DDS_DOMAIN_ID = 232


def check_domain_id(domain: int | None = None) -> None:
    """ValueError when the domain (None: the ROS_DOMAIN_ID rclpy.init read) has no DDS ports:
    Fast DDS would end the process from inside node creation, with only its own log line
    saying why."""
    from rclpy.utilities import get_rmw_implementation_identifier

    if domain is None:
        domain = rclpy.get_default_context().get_domain_id()
    if domain > MAX_DDS_DOMAIN_ID and "zenoh" not in get_rmw_implementation_identifier():
        raise ValueError(f"ROS_DOMAIN_ID {domain} is above {MAX_DDS_DOMAIN_ID}, the largest a DDS "
                         "middleware has ports for (the ROS 2 docs advise 0-101)")


def check_ros_name(name: str, what: str, node: bool = False) -> str:
    """`name` ("/sim/grounding_node", a namespace "sim") made absolute; ValueError in one line,
    saying where it breaks ROS's naming rules, before rclpy raises them as a traceback (a
    node's services) or a RuntimeWarning (a client's action name)."""
    from rclpy.exceptions import NameValidationException
    from rclpy.validate_namespace import validate_namespace
    from rclpy.validate_node_name import validate_node_name

    full = "/" + name.strip("/")
    try:
        if node:
            namespace, _, base = full.rpartition("/")
            validate_node_name(base)
            validate_namespace(namespace or "/")
        else:
            validate_namespace(full)
    except NameValidationException as exc:
        why = str(exc).splitlines()[0].split(": ", 1)[-1].rstrip(":")
        raise ValueError(f"{what} {name!r} is not a ROS name: {why}") from None
    return full


def check_type_support(msg_type) -> None:
    """Raise RuntimeError, naming both install locations, when `msg_type`'s Python class and
    the C type support loaded for it were built from different .msg files: a colcon workspace
    built from a newer msg/ than the venv's package (or the reverse) gives the Python classes
    of one and, through LD_LIBRARY_PATH, the C libraries of the other, and every publish then
    fails (a field the C side reads is missing) or drops a field (one it does not know).

    How: one message with every field set is serialised and read back (~0.1 ms); a field that
    does not come back equal, or a serialisation that raises, is the disagreement."""
    from rclpy.serialization import deserialize_message, serialize_message

    sent = _every_field_set(msg_type)
    try:
        back = deserialize_message(serialize_message(sent), msg_type)
    except (AttributeError, TypeError, ValueError) as exc:
        why = f"serialising one raises {type(exc).__name__}: {exc}"
    else:
        lost = [name for name in msg_type.get_fields_and_field_types()
                if getattr(back, name, None) != getattr(sent, name)]
        if not lost:
            return
        why = f"field(s) {', '.join(lost)} do not survive serialisation"
    package = msg_type.__module__.split(".")[0]
    libraries = sorted({os.path.dirname(line.split()[-1]) for line in _mapped_files()
                        if f"lib{package}__rosidl" in line}) or ["LD_LIBRARY_PATH"]
    classes = os.path.dirname(sys.modules[msg_type.__module__].__file__)
    raise RuntimeError(
        f"{msg_type.__name__}'s Python class (from {classes}) and its C type support (from "
        f"{', '.join(libraries)}) are built from different msg/ files: {why}. After pulling "
        "changes to msg/, rebuild both (make msgs in the checkout, then colcon build in the "
        "workspace; README, 'Install without an apt ROS')")


def _every_field_set(msg_type):
    """An instance of `msg_type` whose fields (nested messages and one element of each sequence
    included) are all off their defaults, so a field either side lacks reads back changed."""
    import importlib

    from rosidl_parser.definition import AbstractSequence, AbstractString, BasicType, NamespacedType

    def value(slot):
        if isinstance(slot, NamespacedType):
            module = importlib.import_module(".".join(slot.namespaces))
            return _every_field_set(getattr(module, slot.name))
        if isinstance(slot, AbstractString):
            return "x"
        if isinstance(slot, BasicType):
            return {"float": 0.5, "double": 0.5, "boolean": True, "octet": b"\x01",
                    "char": "x"}.get(slot.typename, 1)
        if isinstance(slot, AbstractSequence) and not isinstance(slot.value_type, AbstractSequence):
            element = value(slot.value_type)
            return None if element is None else [element]
        return None  # a fixed-size array: left at its default

    msg = msg_type()
    for name, slot in zip(msg_type.get_fields_and_field_types(), msg_type.SLOT_TYPES):
        chosen = value(slot)
        if chosen is not None:
            setattr(msg, name, chosen)
    return msg


def _mapped_files() -> list[str]:
    """The lines of /proc/self/maps (the shared libraries loaded), [] where there is none."""
    try:
        with open("/proc/self/maps") as maps:
            return maps.read().splitlines()
    except OSError:
        return []
