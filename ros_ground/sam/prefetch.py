"""An image embedding computed ahead, on a worker thread, while the caller does something else.

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
from typing import Any


class EmbeddingJob:
    """One frame's embedding being computed by `compute` on a thread of its own.

    `state` is `compute`'s result once `done` is set; `error` what it raised instead.
    """

    def __init__(self, cache_key: Hashable, compute: Callable[[], Any]) -> None:
        self.cache_key = cache_key
        self.state: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._compute = compute
        self.thread = threading.Thread(target=self._run, name="sam-prefetch", daemon=True)

    def start(self) -> EmbeddingJob:
        self.thread.start()
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
        """Wait for the worker to end, whatever it did (a torch op cannot be interrupted)."""
        self.thread.join()
