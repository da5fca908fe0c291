"""The life of a node executable, from its first line to its exit, and how a signal ends it.

Every executable (grounding_node, mask_proposal_node, sim_camera_node, ground_container) ends
within EXIT_WITHIN_S of the first SIGINT or SIGTERM, whenever it arrives, with exit status 0:

- starting (importing torch, building a scene, loading models in the autostart configure): the
  signal raises `Stopped` in the main thread, which abandons the start at the next Python line;
- spinning, idle or busy: the signal only sets a flag the spin loop reads every SIGNAL_POLL_S,
  then the nodes stop their workers, callbacks in flight get STOP_WITHIN_S to end, and the nodes
  are destroyed (see `StopOnSignals` for why rclpy's own handlers are not used);
- then the process exits at once (`exit_now`), without the interpreter's teardown: that is a
  full garbage collection over every object torch, transformers and spaCy made (2.7 s for the
  sim camera on 2 loaded cores) and a join of every pool thread, which a callback still loading
  a model (a configure asked for over the lifecycle service) would hold until the load ends.

If the process is still up EXIT_WITHIN_S after the signal (stuck in a C call, or in a cleanup
that does not end) a watchdog thread prints where every thread is and exits with status 1.

This module imports only the standard library, so the console scripts (`grounding_node`, ...
below) install the handlers before the node modules import torch: the first seconds of a
process, when `ros2 launch` is most often interrupted, are covered too.
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

# how often the spin loop looks for a stop request, and how long it waits for callbacks to end
SIGNAL_POLL_S = 0.2
STOP_WITHIN_S = 2.0
# after this long the watchdog ends the process whatever it is doing (the promise: 5 s)
EXIT_WITHIN_S = 4.5


class Stopped(BaseException):
    """A stop signal arrived while the executable was starting (raised in the main thread).

    A BaseException, like KeyboardInterrupt, so the `except Exception` around a model load
    (ModelNode.on_configure, rclpy's lifecycle) does not turn it into a failed configure."""


class StopOnSignals:
    """SIGINT and SIGTERM ask the process to stop; while spinning they never raise.

    Why not rclpy's handlers: they shut the context down on a thread of their own and chain to
    Python's SIGINT handler, which raises KeyboardInterrupt in the main thread at an arbitrary
    later point. Spin could end through the context first and the KeyboardInterrupt then land
    in the middle of the nodes' cleanup, leaving the process up (seen: an idle node that
    needed a second Ctrl-C) or killed half-way; and before spin, during a model load, the
    KeyboardInterrupt ended the process with a traceback and status -2 (254 from `ros2 run`),
    SIGTERM with -15. Here, until `spinning()`, the first signal raises `Stopped` once (the
    start has nothing to finish); from then on the handler only sets a flag that the spin loop
    reads. Another signal within STOP_WITHIN_S is the same request (Ctrl-C reaches the whole
    process group, and launch signals the node too); a later one exits at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.interrupting = True  # starting: the first signal raises Stopped
        self._since = 0.0

    def install(self) -> None:
        """Handlers first: a signal from here on raises Stopped (even inside this function)."""
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)
        # The watchdog hears of the signal from the C-level handler, through the wakeup fd: the
        # Python handler runs in the main thread only, and not while it is inside a C call.
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watchdog, args=(read_fd,), name="ros_ground-stop-watchdog",
                         daemon=True).start()

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            self.requested, self._since = True, time.monotonic()
            if self.interrupting:
                self.interrupting = False
                raise Stopped(signal.Signals(signum).name)
        elif time.monotonic() - self._since > STOP_WITHIN_S:
            _say(f"{signal.Signals(signum).name} again: exiting without finishing the cleanup")
            exit_now(1)

    def spinning(self) -> None:
        """The start is over: from now a signal only sets the flag. Raises Stopped when a
        signal came during the start and its Stopped was swallowed (a bare `except:` in a
        library, or a `finally` it landed in)."""
        self.interrupting = False
        self.check()

    def check(self) -> None:
        """Raises Stopped when a signal came while starting (see `spinning`)."""
        if self.requested:
            raise Stopped("signal during the start")

    def _watchdog(self, read_fd: int) -> None:
        while os.read(read_fd, 1)[0] not in self.SIGNALS:  # another signal: not ours to count
            pass
        time.sleep(EXIT_WITHIN_S)
        # straight to fd 2 and out: the main thread may hold the locks of sys.stdout / stderr
        os.write(2, f"[ros_ground] still running {EXIT_WITHIN_S} s after the stop signal: exiting "
                    "without finishing the cleanup; the threads were here:\n".encode())
        faulthandler.dump_traceback(all_threads=True)
        os._exit(1)


_stop: StopOnSignals | None = None


def stop_on_signals() -> StopOnSignals:
    """The process's StopOnSignals, installed on first use (from the main thread)."""
    global _stop
    if _stop is None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("stop_on_signals() must be called from the main thread")
        _stop = StopOnSignals()
        _stop.install()
    return _stop


def exit_now(code: int) -> NoReturn:
    """Flush the output and end the process, skipping the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(code)


def _say(text: str) -> None:
    print(f"[ros_ground] {text}", file=sys.stderr, flush=True)


def run_executable(makers: Sequence[Callable], args: list[str] | None = None,
                   threads: int | None = None) -> NoReturn:
    """Start rclpy, make the nodes (`makers`: a constructor each), configure and activate the
    lifecycle ones (`autostart`), spin them until a signal or rclpy shutdown, stop them, exit.

    Exit status: 0 after a signal or shutdown, the code of a SystemExit raised while making a
    node (a bad parameter, logged by the maker), 1 after any other error (with its traceback).
    It ends the process (on the main thread only): call it as an executable's main, never in a
    process that has more to do.
    """
    nodes: list = []
    executor = None
    code = 1
    try:
        stop = stop_on_signals()
        stop.check()
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from ros_ground.nodes.common import autostart
        from ros_ground.nodes.executor import DEFAULT_THREADS, CallbackExecutor

        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        for make in makers:
            stop.check()
            nodes.append(make())
        for node in nodes:
            stop.check()
            if hasattr(node, "trigger_configure"):
                autostart(node)
        stop.spinning()
        executor = CallbackExecutor(threads or DEFAULT_THREADS)
        for node in nodes:
            executor.add_node(node)
        while not stop.requested and rclpy.ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
        code = 0
    except Stopped:
        code = 0
    except SystemExit as exc:  # a maker's verdict on its parameters (logged), unless stopping
        code = 0 if _stopping() or exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - whatever it was, the nodes are stopped and we exit
        code = _failed()
    finally:
        if _stop is not None:
            _stop.interrupting = False
        try:
            _stop_nodes(nodes, executor)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = code or 1
        exit_now(code)


def _stopping() -> bool:
    return _stop is not None and _stop.requested


def _failed() -> int:
    """The exit status after an error in the start, printed unless the signal caused it:
    Stopped raised inside an import or a library's load can come out as another error (numpy
    turns it into an ImportError), and whatever fails after the signal, the user asked to stop."""
    if _stopping():
        return 0
    traceback.print_exc()
    return 1


def _stop_nodes(nodes: list, executor) -> None:
    for node in nodes:
        shutdown = getattr(node, "shutdown_worker", None)
        if shutdown:
            shutdown()  # queued requests answered CANCELED, the running one stops
    if executor is not None:
        executor.shutdown(timeout_sec=STOP_WITHIN_S)  # callbacks in flight end first
    for node in nodes:
        node.destroy_node()  # each node leaves the graph now, not at its peers' lease timeout
    import rclpy

    rclpy.try_shutdown()


def run_module(module: str) -> NoReturn:
    """A console script: handlers first, then the node module's imports (torch), then its main
    (which ends the process through run_executable)."""
    try:
        stop_on_signals()
        importlib.import_module(module).main()
    except SystemExit:
        raise  # the container's argparse: --help, a usage error
    except BaseException:  # noqa: BLE001
        exit_now(_failed())
    exit_now(0)


def grounding_node() -> NoReturn:
    run_module("ros_ground.nodes.grounding_node")


def mask_proposal_node() -> NoReturn:
    run_module("ros_ground.nodes.mask_proposal_node")


def sim_camera_node() -> NoReturn:
    run_module("ros_ground.nodes.sim_camera_node")


def ground_container() -> NoReturn:
    run_module("ros_ground.nodes.container")
