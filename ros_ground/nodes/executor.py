"""A thread-pool executor for the nodes, without rclpy's busy loop.

Why not rclpy's MultiThreadedExecutor: in the rclpy these nodes run on (9.x, Kilted), its wait
loop hands a callback that is submitted but not yet started back to the spin thread at once,
and resubmits it, instead of waiting. Whenever a callback waits for a pool thread (every thread
busy, or just not scheduled yet) the spin thread loops at full speed holding the GIL, the lock
the pool thread needs to start, and the one the generation thread needs too. Measured in the
streaming bench: a second in which the spin thread used 0.8-0.9 s of CPU and the request in
flight 0.1-0.2 s, then a queue of late answers. (Upstream changed the loop in rclpy 10.0.4, ros2/rclpy#1547.)

Here each callback is submitted once, and while one waits for a thread the spin thread sleeps
until some callback starts or ends. A callback's exception is logged with its traceback and the
node keeps serving: MultiThreadedExecutor keeps it in a task nobody reads (silently lost), and
SingleThreadedExecutor ends the spin, taking the node down over one bad message.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import rclpy.logging
from rclpy.exceptions import InvalidHandle
from rclpy.executors import (
    ConditionReachedException,
    Executor,
    ExternalShutdownException,
    ShutdownException,
    TimeoutException,
)
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

# Threads start only when needed (ThreadPoolExecutor). No callback waits for a request to be
# answered (a goal is executed once its answer exists), so the cap bounds the callback groups
# that run at once, not the requests that wait.
DEFAULT_THREADS = 16
# wait sets that failed in a row because their entities were being destroyed, before giving up;
# each failure waits FAILED_WAIT_PAUSE_S, so the destroying thread (rclpy 7 destroys an action
# server's handle before it removes the waitable) has time to finish
MAX_FAILED_WAITS = 100
FAILED_WAIT_PAUSE_S = 0.002


class CallbackExecutor(Executor):
    """Runs each ready callback on a pool thread; never spins while a callback waits for one."""

    def __init__(self, num_threads: int = DEFAULT_THREADS, *, context=None,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        super().__init__(context=context)
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        self._pool = ThreadPoolExecutor(num_threads, thread_name_prefix="ros_ground-callback")
        self._changed = threading.Condition()  # a submitted callback started or finished
        self._submitted: set = set()  # handlers in the pool: waiting for a thread or running
        self._on_error = on_error or _log_error
        self._failed_waits = 0
        self._draining = False  # shutting down: no new callbacks start

    def spin_once(self, timeout_sec: float | None = None) -> None:
        self._spin_once(timeout_sec, lambda: False)

    def spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        future.add_done_callback(lambda _: self.wake())
        self._spin_once_until_future_complete(future, timeout_sec)

    def _spin_once_until_future_complete(self, future, timeout_sec=None) -> None:
        self._spin_once(timeout_sec, future.done)

    def shutdown(self, timeout_sec: float | None = None) -> bool:
        """Stop taking callbacks, wait up to `timeout_sec` (None: no limit) for those in flight
        to end, then release the executor; False when some were still running.

        Why wait here: rclpy 9's Executor.shutdown returns without waiting and destroys the
        guard condition that a running callback's handler triggers as it ends, so every
        shutdown during a callback (a camera timer at 5 Hz: nearly every one) logged an
        InvalidHandle error.
        """
        with self._changed:
            self._draining = True
            done = self._changed.wait_for(lambda: not self._submitted, timeout=timeout_sec)
        super().shutdown(timeout_sec=0)
        self._notify()
        self._pool.shutdown(wait=done)
        return done

    def _spin_once(self, timeout_sec, condition) -> None:
        try:
            handler, _, _ = self.wait_for_ready_callbacks(timeout_sec, None, condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException,
                ConditionReachedException):
            return  # as MultiThreadedExecutor: spin() then ends with the context
        except (InvalidHandle, _rclpy.RCLError):
            # An entity was destroyed while the wait set was being built: a lifecycle node
            # closing its topics and action server in a transition callback on a pool thread
            # (rclpy 9 checks subscriptions for this, not action servers). The next wait set
            # no longer holds it; raising here would end the spin thread and every callback.
            self._failed_waits += 1
            if self._failed_waits > MAX_FAILED_WAITS:
                raise
            time.sleep(FAILED_WAIT_PAUSE_S)
            return
        self._failed_waits = 0
        with self._changed:
            if self._draining:
                return
            if handler in self._submitted:
                # handed back before a thread started it: sleep until a callback starts or
                # ends (a thread is free) rather than loop; the timeout bounds a missed wake-up
                self._changed.wait(timeout=0.05)
                return
            self._submitted.add(handler)
        self._pool.submit(self._run, handler)

    def _run(self, handler) -> None:
        self._notify()
        try:
            handler()
        finally:
            with self._changed:
                self._submitted.discard(handler)
                self._changed.notify_all()
        error = handler.exception()
        if error is not None:
            self._on_error(error)

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()


def _log_error(error: BaseException) -> None:
    trace = "".join(traceback.format_exception(error))
    rclpy.logging.get_logger("ros_ground.executor").error(f"a callback raised:\n{trace}")
