"""The life of a node executable, from its first line to its exit, and how a signal ends it.

Every executable (grounding_node, mask_proposal_node, sim_camera_node, ground_container) ends
within EXIT_WITHIN_S of the first SIGINT or SIGTERM, whenever it arrives, with exit status 0:

- starting (importing torch, building a scene, loading models in the autostart configure): the
  process exits at once, from the signal handler, or from the watchdog thread when the main
  thread is inside a C call and the handler cannot run. Nothing is running yet that must be
  finished; nodes made so far leave the graph when their peers' discovery lease expires;
- spinning, idle or busy: the signal only sets a flag the spin loop reads every SIGNAL_POLL_S,
  then the nodes stop their workers, callbacks in flight get STOP_WITHIN_S to end, and the nodes
  are destroyed (see `StopOnSignals` for why rclpy's own handlers are not used);
- then the process exits at once (`exit_now`), without the interpreter's teardown: that is a
  full garbage collection over every object torch, transformers and spaCy made (2.7 s for the
  sim camera on 2 loaded cores) and a join of every pool thread, which a callback still loading
  a model (a configure asked for over the lifecycle service) would hold until the load ends.

If the process is still up EXIT_WITHIN_S after the signal (a cleanup stuck in a C call, or one
that does not end) the watchdog thread prints where every thread is and exits with status 1.

Why the start is not interrupted with an exception (as KeyboardInterrupt does): raised inside
Python code that C++ called (torch's import registers operators through pybind11), it cannot
pass the C++ frames and the process aborts (seen: exit -6 for a SIGINT one second into the
imports); raised inside numpy's import, it comes out as an ImportError.

This module imports only the standard library, so the console scripts (`grounding_node`, ...
below) install the handlers before the node modules import torch: the first seconds of a
process, when `ros2 launch` is most often interrupted, are covered too.
"""

from __future__ import annotations

import faulthandler
import importlib
import os
import re
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
# the ask goals answered at a stop end within this (then their replies go: goals.RESULT_REPLY_S)
RESULTS_WITHIN_S = 1.0
# a signal during the start: how long the watchdog leaves the handler to end the process (it
# flushes the output; the watchdog cannot, as the main thread may hold the streams' locks)
STARTING_HANDLER_S = 0.5
# after this long the watchdog ends the process whatever it is doing (the promise: 5 s)
EXIT_WITHIN_S = 4.5


class StopOnSignals:
    """SIGINT and SIGTERM end the start at once, and ask a spinning process to stop.

    Why not rclpy's handlers: they shut the context down on a thread of their own and chain to
    Python's SIGINT handler, which raises KeyboardInterrupt in the main thread at an arbitrary
    later point. Spin could end through the context first and the KeyboardInterrupt then land
    in the middle of the nodes' cleanup, leaving the process up (seen: an idle node that
    needed a second Ctrl-C) or killed half-way; and before spin, during a model load, the
    KeyboardInterrupt ended the process with a traceback and status -2 (254 from `ros2 run`),
    SIGTERM with -15. Here, until `spinning()`, a signal ends the process (status 0); from then
    on the handler only sets a flag that the spin loop reads. Another signal within
    STOP_WITHIN_S is the same request (Ctrl-C reaches the whole process group, and launch
    signals the node too); a later one exits at once (status 1).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.starting = True  # until `spinning()`: the first signal ends the process at once
        self._since = 0.0

    def install(self) -> None:
        """Handlers first: from here on a signal ends the start (even inside this function)."""
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
        if self.starting:
            exit_now(0)
        if not self.requested:
            self.requested, self._since = True, time.monotonic()
        elif time.monotonic() - self._since > STOP_WITHIN_S:
            _say(f"{signal.Signals(signum).name} again: exiting without finishing the cleanup")
            exit_now(1)

    def spinning(self) -> None:
        """The start is over: from now a signal only sets the flag the spin loop reads."""
        self.starting = False

    def _watchdog(self, read_fd: int) -> None:
        while os.read(read_fd, 1)[0] not in self.SIGNALS:  # another signal: not ours to count
            pass
        if self.starting:  # the handler ends the process unless the main thread is in a C call
            time.sleep(STARTING_HANDLER_S)
            os._exit(0)
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
        except Exception:  # noqa: BLE001 - closed, or a write it interrupted (reentrant call)
            pass
    # a signal may land while `logging` is still being imported: no shutdown there yet
    shutdown = getattr(sys.modules.get("logging"), "shutdown", None)
    if shutdown is not None:
        try:
            shutdown()
        except Exception:  # noqa: BLE001 - a handler half set up: exit all the same
            pass
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
    stop = stop_on_signals()
    try:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        from ros_ground.nodes.common import autostart, check_domain_id, forward_core_logging
        from ros_ground.nodes.executor import DEFAULT_THREADS, CallbackExecutor

        try:
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
            check_domain_id()
        # rcl's RCLError: the --ros-args do not parse; ValueError: a domain without DDS ports
        except Exception as exc:  # noqa: BLE001
            cannot_start(exc)
        for make in makers:
            nodes.append(make())
            if len(nodes) == 1:  # before any node configures: it loads the models, which log
                forward_core_logging(nodes[0].get_logger())
        _warn_unmatched_params_files(args if args is not None else sys.argv, nodes)
        for node in nodes:
            if hasattr(node, "trigger_configure"):
                autostart(node)
        executor = CallbackExecutor(threads or DEFAULT_THREADS)
        for node in nodes:
            executor.add_node(node)
        stop.spinning()
        while not stop.requested and rclpy.ok():
            executor.spin_once(timeout_sec=SIGNAL_POLL_S)
        code = 0
    except SystemExit as exc:  # a maker's verdict on its parameters (logged)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - whatever it was, the nodes are stopped and we exit
        traceback.print_exc()
        code = 1
    finally:
        stop.spinning()  # a signal from now on waits for the cleanup (a failed start has one)
        try:
            _stop_nodes(nodes, executor)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
            code = code or 1
        exit_now(code)


def _warn_unmatched_params_files(argv: Sequence[str], nodes: list) -> None:
    """Log, from the first node, each `--params-file` of `argv` whose sections apply to none of
    `nodes` (param_files.unmatched): rcl applies none of it, silently."""
    from ros_ground.param_files import unmatched

    paths = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--params-file"]
    names = [n.get_fully_qualified_name() for n in nodes]
    for path in paths:
        why = unmatched(path, names) if names else None
        if why:
            nodes[0].get_logger().warning(why)


def cannot_start(exc: Exception) -> NoReturn:
    """Say in one line why rcl refused the command line's --ros-args (`exc`), and exit 2."""
    _say(f"cannot start: {_rcl_message(exc)}")
    exit_now(2)


def _rcl_message(exc: Exception) -> str:
    """rcl's error without the C source locations it appends (", at src/rcl/arguments.c:415")."""
    return re.sub(r",? at \S+:\d+", "", str(exc)).strip()


def _stop_nodes(nodes: list, executor) -> None:
    goals = [n.goals for n in nodes if hasattr(n, "goals")]  # GroundingNode's PendingGoals
    answering = any(len(g) for g in goals)
    for node in nodes:
        shutdown = getattr(node, "shutdown_worker", None)
        if shutdown:
            shutdown()  # queued requests answered CANCELED, the running one stops
    if executor is not None:
        if answering:
            _send_results(goals, executor)
        executor.shutdown(timeout_sec=STOP_WITHIN_S)  # callbacks in flight end first
    for node in nodes:
        node.destroy_node()  # each node leaves the graph now, not at its peers' lease timeout
    import rclpy

    rclpy.try_shutdown()


def _send_results(goals: list, executor) -> None:
    """Spin on until the `ask` goals the stop answered have sent their results (at most
    RESULTS_WITHIN_S): a goal's result goes out from executor callbacks (its execute callback,
    then rclpy's reply to the client's result request), and the loop that ran them has ended."""
    from ros_ground.nodes.goals import RESULT_REPLY_S

    deadline = time.monotonic() + RESULTS_WITHIN_S
    while any(len(g) for g in goals) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    replies = time.monotonic() + RESULT_REPLY_S
    while time.monotonic() < replies:
        executor.spin_once(timeout_sec=0.05)


def run_module(module: str) -> NoReturn:
    """A console script: handlers first, then the node module's imports (torch), then its main
    (which ends the process through run_executable)."""
    stop_on_signals()
    importlib.import_module(module).main()
    exit_now(0)


def grounding_node() -> NoReturn:
    run_module("ros_ground.nodes.grounding_node")


def mask_proposal_node() -> NoReturn:
    run_module("ros_ground.nodes.mask_proposal_node")


def sim_camera_node() -> NoReturn:
    run_module("ros_ground.nodes.sim_camera_node")


def ground_container() -> NoReturn:
    run_module("ros_ground.nodes.container")
