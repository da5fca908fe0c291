"""An image embedding computed ahead, on the worker thread, while the caller does something else.

The grounding engine starts SAM's image encoder when a request starts, so it runs on another
core while the language model prefills and decodes (torch releases the GIL inside its ops), and
the grounding step finds the embedding ready. The worker encodes on the segmenter's own
prefetch predictor, never on the shared one: it holds no lock the proposal node or the request
waits on, and nothing another thread does to the current frame can change what it computes.
The segmenter installs the result when that frame is next made current (`SamSegmenter.prefetched`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Executor, Future, wait
from typing import Any


class EmbeddingJob:
    """One frame's embedding being computed by `compute` on an executor's thread (the
    engine's ahead worker, `ros_ground.ahead.worker`).

    `state` is `compute`'s result once `done` is set; `error` what it raised instead.
    """

    def __init__(self, cache_key: Hashable, compute: Callable[[], Any]) -> None:
        self.cache_key = cache_key
        self.state: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._compute = compute
        self._future: Future | None = None

    def start(self, executor: Executor) -> EmbeddingJob:
        self._future = executor.submit(self._run)
        return self

    def _run(self) -> None:
        try:
            self.state = self._compute()
        except BaseException as exc:  # handed to whoever waits for it (the request)
            self.error = exc
        finally:
            self._compute = None
            self.done.set()

    def wait(self) -> Any:
        """The embedding once computed; re-raises what the worker raised."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.state

    def join(self) -> None:
        """Cancel the job if it has not started, else wait for it to end, whatever it does (a
        torch op cannot be interrupted). For when no one needs the embedding any more."""
        if self._future is not None:
            self._future.cancel()
            wait([self._future])
