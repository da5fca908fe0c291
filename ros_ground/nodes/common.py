"""Small pieces every node needs: QoS by name, frame keys, lifecycle autostart, spinning."""

from __future__ import annotations

import gc
import signal
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ros_ground.nodes.conversions import stamp_to_ns
from ros_ground.nodes.executor import DEFAULT_THREADS, CallbackExecutor

# Commands and results must arrive: reliable and keep-all, so a burst of commands (or of the
# rejections they earn) is held until delivered instead of being overwritten by newer ones.
RELIABLE = QoSProfile(depth=100, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)


def qos_by_name(name: str) -> QoSProfile:
    """Camera QoS is a parameter because a mismatch is the classic 'nothing is published'."""
    if name == "sensor_data":
        return qos_profile_sensor_data
    if name in ("reliable", "auto"):  # auto: reliable until a publisher says otherwise
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    if name == "best_effort":
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    raise ValueError(f"image_qos must be one of sensor_data / reliable / best_effort / auto, got {name!r}")


def freeze_loaded_objects() -> None:
    """Exempt everything loaded so far (models, libraries) from the cyclic garbage collector.

    Why: a full collection walks every tracked object; with the LMM, SAM and spaCy loaded that
    is ~490k objects and ~250 ms on a robot CPU, landing inside a request every minute or two.
    Objects made later are still collected. Call `thaw_loaded_objects` before dropping a model.
    """
    gc.collect()
    gc.freeze()


def thaw_loaded_objects() -> None:
    """Undo `freeze_loaded_objects` and collect, so a dropped model's cycles are freed."""
    gc.unfreeze()
    gc.collect()


def release_memory(models_dropped: bool) -> None:
    """Collect garbage and return cached CUDA blocks, after a failed request or a cleanup.
    Only when the models were dropped is their exemption from full collections lifted; after a
    failed request they are still loaded, and what it left behind was made after the freeze."""
    if models_dropped:
        thaw_loaded_objects()
    else:
        gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def frame_key(header, shape) -> tuple:
    """Identifies one camera frame across nodes, so SAM embeds it once in a shared process."""
    return (header.frame_id, stamp_to_ns(header.stamp), int(shape[0]), int(shape[1]))


def autostart(node: LifecycleNode) -> bool:
    """Configure then activate, as `autostart` asks; False (logged) when a transition failed."""
    if not node.get_parameter("autostart").value:
        node.get_logger().info("autostart is false: waiting for lifecycle transitions")
        return True
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        node.get_logger().error("configure failed; fix the parameters and configure again")
        return False
    return node.trigger_activate() == TransitionCallbackReturn.SUCCESS


def spin_nodes(nodes, threads: int = DEFAULT_THREADS) -> None:
    """Spin on a thread pool until SIGINT or SIGTERM (or rclpy shutdown), then stop the nodes.

    Requests run on their own worker threads. The process is back within STOP_WITHIN_S of the
    first signal, idle or busy; see `_StopOnSignals` for why rclpy's own handlers are not used.
    """
    with _StopOnSignals() as stop:
        executor = None
        try:
            executor = CallbackExecutor(threads)
            for node in nodes:
                executor.add_node(node)
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=SIGNAL_POLL_S)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            for node in nodes:
                shutdown = getattr(node, "shutdown_worker", None)
                if shutdown:
                    shutdown()  # queued requests answered CANCELED, the running one stops
            if executor is not None:
                executor.shutdown(timeout_sec=STOP_WITHIN_S)  # callbacks in flight end first
            for node in nodes:
                node.destroy_node()
            rclpy.try_shutdown()


# how often the spin loop looks for a stop request, and how long it waits for callbacks to end
SIGNAL_POLL_S = 0.2
STOP_WITHIN_S = 3.0


class _StopOnSignals:
    """SIGINT and SIGTERM ask the spin loop to stop; they never raise into the cleanup.

    Why not rclpy's handlers: they shut the context down on a thread of their own and chain to
    Python's SIGINT handler, which raises KeyboardInterrupt in the main thread at an arbitrary
    later point. Spin could end through the context first and the KeyboardInterrupt then land
    in the middle of the nodes' cleanup, leaving the process up (seen: an idle node that
    needed a second Ctrl-C) or killed half-way. Here the handler only sets a flag that the spin
    loop reads every SIGNAL_POLL_S. Another signal within STOP_WITHIN_S is the same request
    (Ctrl-C reaches the whole process group, and a non-interactive launch or systemd signals
    the node too); a later one raises KeyboardInterrupt, to force an exit from a stuck cleanup.
    Off the main thread (tests spinning nodes in-process) Python cannot install handlers, and
    the loop ends with the context alone.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._since = 0.0
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            self.requested, self._since = True, time.monotonic()
        elif time.monotonic() - self._since > STOP_WITHIN_S:
            raise KeyboardInterrupt

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
