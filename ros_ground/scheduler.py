"""Request scheduling: a bounded queue, round-robin across sources, one worker thread.

Every accepted request gets exactly one answer through `deliver`: the result of `run`, or the
answer `canceled` builds when it is canceled while queued, or the scheduler closes before it
runs. Requests are keyed by `source` (a camera, a client): the worker takes the next request
from each source in turn, so one source flooding the queue delays another by at most one
request per flooding source. No ROS import: the grounding node wraps it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger(__name__)


class Rejected(Exception):
    """`submit` could not queue the request (closed, or the queue is full); says why."""


class Closed(Rejected):
    """`submit` could not queue the request: the scheduler is closed (`closed_because`)."""


@dataclass(eq=False)
class Ticket:
    """One accepted request: its payload, its source and when it was accepted."""

    payload: Any
    source: str = ""
    accepted_at: float = field(default_factory=time.perf_counter)  # time.perf_counter() s
    number: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        """Mark it canceled: `should_stop` turns true, and it is answered as canceled if it has
        not run yet (use Scheduler.cancel to answer a queued one at once)."""
        self._cancel.set()


class Scheduler:
    """Runs `run(ticket)` for one request at a time on its own thread.

    Keyword args:
      run: does the work on the worker thread; returns the answer. An exception it raises is
        turned into an answer by `failed(ticket, exc)`.
      deliver: `deliver(ticket, answer)`, called exactly once per accepted ticket (on the
        worker thread, or on the thread that cancels or closes).
      canceled: `canceled(ticket, reason)` builds the answer of a request that never ran.
      failed: `failed(ticket, exc)` builds the answer of a request whose `run` raised.
      queue_size: requests that may wait while one runs (>= 0); settable at any time.
      name: the worker thread's name.
      started: `started(ticket)`, called on the worker just before `run(ticket)` (not for a
        ticket canceled while queued); an exception it raises fails the request like `run`'s.
    """

    def __init__(self, run: Callable[[Ticket], Any], deliver: Callable[[Ticket, Any], None],
                 canceled: Callable[[Ticket, str], Any],
                 failed: Callable[[Ticket, BaseException], Any], *, queue_size: int = 4,
                 name: str = "scheduler",
                 started: Callable[[Ticket], None] | None = None) -> None:
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, got {queue_size}")
        self.queue_size = queue_size
        self._run, self._deliver, self._canceled, self._failed = run, deliver, canceled, failed
        self._started = started
        self._queues: OrderedDict[str, deque[Ticket]] = OrderedDict()  # round-robin order
        self._cond = threading.Condition()
        self._open = False
        self.closed_because = ""  # the reason `close` was given, while closed
        self._stopping = False
        self._running: Ticket | None = None
        self._numbers = itertools.count(1)
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    # ---- state -----------------------------------------------------------------------------
    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._running is not None

    def is_open(self) -> bool:
        return self._open

    def should_stop(self, ticket: Ticket) -> bool:
        """True once the running request should end early: canceled, or the scheduler closed."""
        return ticket.cancel_requested or not self._open

    # ---- requests --------------------------------------------------------------------------
    def submit(self, payload, source: str = "") -> Ticket:
        """Queue a request; raises Closed when closed, Rejected when full (each says why)."""
        with self._cond:
            if not self._open:
                raise Closed(f"not accepting requests ({self.closed_because or 'node not active'})")
            waiting = sum(len(q) for q in self._queues.values())
            # one request runs and `queue_size` wait; an idle worker takes the next at once
            if waiting >= self.queue_size + (0 if self._running else 1):
                running = "one request running and " if self._running else ""
                raise Rejected(f"busy: {running}{waiting} waiting (queue_size={self.queue_size})")
            ticket = Ticket(payload, source, number=next(self._numbers))
            self._queues.setdefault(source, deque()).append(ticket)
            self._cond.notify_all()
            return ticket

    def cancel(self, ticket: Ticket, reason: str = "canceled while queued") -> None:
        """Cancel a request: answered now if still queued; a running one sees `should_stop`."""
        ticket.request_cancel()
        with self._cond:
            queue = self._queues.get(ticket.source)
            if queue is None or ticket not in queue:
                return
            queue.remove(ticket)
            if not queue:
                del self._queues[ticket.source]
        self._deliver(ticket, self._canceled(ticket, reason))

    def open(self) -> None:
        with self._cond:
            self._open, self.closed_because = True, ""

    def close(self, reason: str, timeout: float = 60.0) -> None:
        """Stop accepting, answer every queued request with `canceled(ticket, reason)`, and
        wait (at most `timeout` s) for the running one, which sees `should_stop`, to answer."""
        with self._cond:
            if self._open or not self.closed_because:
                self.closed_because = reason
            self._open = False
            pending = [t for q in self._queues.values() for t in q]
            self._queues.clear()
        for ticket in pending:
            self._deliver(ticket, self._canceled(ticket, reason))
        if threading.current_thread() is not self._worker:
            with self._cond:
                self._cond.wait_for(lambda: self._running is None, timeout=timeout)

    def stop(self, reason: str = "shutting down", timeout: float = 30.0) -> None:
        """`close`, then end the worker thread."""
        self.close(reason, timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=timeout)

    # ---- worker ----------------------------------------------------------------------------
    def _next(self) -> Ticket:
        source, queue = next(iter(self._queues.items()))
        ticket = queue.popleft()
        del self._queues[source]
        if queue:
            self._queues[source] = queue  # to the back: the other sources go first
        return ticket

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queues or self._stopping)
                if self._stopping:
                    return
                ticket = self._next()
                self._running = ticket
            try:
                if ticket.cancel_requested:
                    answer = self._canceled(ticket, "canceled while queued")
                else:
                    try:
                        if self._started is not None:
                            self._started(ticket)
                        answer = self._run(ticket)
                    except Exception as exc:  # noqa: BLE001 - the worker must outlive any request
                        answer = self._failed(ticket, exc)
                self._deliver(ticket, answer)
            except Exception:  # noqa: BLE001 - a failed delivery must not end the worker
                LOG.exception("delivering the answer of request %s failed", ticket.number)
            finally:
                with self._cond:
                    self._running = None
                    self._cond.notify_all()
