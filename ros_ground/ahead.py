"""Work that needs only the frame, done on a worker thread while the LMM generates the answer.

SAM's image embedding (`SamSegmenter.prefetched`) and the attention views' prompt (`LMMAdapter.prefill_views`)
do not depend on the answer, so `GroundingEngine.ground` can start them with the request and
find them done when generation ends. One worker thread, and only where it has somewhere to
run: a GPU for SAM, or CPU cores left free by an explicit `torch_threads` below the core count.
Measured on the 2-core CPU (docs/compiled_decoding.md): with torch on one core the embedded
default answers in 0.77x the time; with torch on both, the worker's threads and torch's spin
against each other and the answer takes longer than with no worker (1.1-1.3x), hence the rule.

torch's intra-op thread count (OpenMP builds) belongs to the thread that sets it, and a thread
that has not set it starts from the last value set anywhere in the process; so each request
sets its own for its duration (`threads`) and each job its worker's (`with_threads`).
A compiled decode step is guarded on that count, so `GroundingEngine.warm_up` compiles it under
the requests' count. Compiled under another, it compiles again in the first request, and while
dynamo compiles, `torch.compiler.is_compiling()` is true for the whole process: the worker's
transformers forward then takes its compile-time branches (seen once on the 2-core CPU: the
vision tower's hidden states came back None in the views' prefill).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

import torch

from ros_ground.cores import usable_cores

_worker: ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()


def worker() -> ThreadPoolExecutor:
    """The process's one thread for work ahead (SAM's embedding, the views' prefill), started on
    first use and kept: jobs run one at a time in the order submitted, and no thread is made
    per request (a thread per request grew the streaming node's memory 65 MB in 120 s against
    6 MB with this one, bench section 5)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ground-ahead")
        return _worker


def spare_cores(torch_threads: int) -> int:
    """Cores a `torch_threads` setting leaves free (0 for 0: torch's default takes them all)."""
    return max(0, usable_cores() - torch_threads) if torch_threads > 0 else 0


@contextlib.contextmanager
def threads(torch_threads: int) -> Iterator[None]:
    """Within the block, the calling thread's torch threads are `torch_threads` (> 0; 0 leaves
    them); restored on leaving, so the process's other threads (a proposal node in the same
    container) keep starting from torch's default, not this request's count."""
    before = torch.get_num_threads()
    if torch_threads > 0 and before != torch_threads:
        torch.set_num_threads(torch_threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def ahead_work(prefetch: bool | None, sam_device: str, lmm_device,
               torch_threads: int = 0) -> tuple[bool, bool]:
    """(SAM's embedding, the views' prefill): whether each runs ahead, on the worker thread.

    `prefetch` True / False forces both on / off (the views' only with the LMM on the CPU);
    None: SAM's when it is on a GPU or a core is spare (`spare_cores(torch_threads)`), the
    views' when the LMM is on the CPU and a core is spare. On a GPU the worker's kernels would
    queue on the decoder's stream, so the views stay after the answer there.
    """
    on_cpu = str(lmm_device).startswith("cpu")
    if prefetch is not None:
        return prefetch, prefetch and on_cpu
    spare = spare_cores(torch_threads) > 0
    return str(sam_device).startswith("cuda") or spare, on_cpu and spare


def with_threads(work: Callable[[], object], threads: int) -> Callable[[], object]:
    """`work`, run by the worker thread with its torch threads set to `threads` (>= 1) first:
    the cores the generation runs on are not the job's."""

    def run():
        torch.set_num_threads(max(1, threads))
        return work()

    return run


@contextlib.contextmanager
def joined(torch_threads: int) -> Iterator[None]:
    """Within the block, the calling thread's torch threads cover every usable core when
    `torch_threads` leaves some spare: once the answer is generated, the cores that ran the
    work ahead are idle, and the grounding stages (the views' answer pass, SAM's decodes) use
    them. The thread's count is restored on leaving."""
    with threads(usable_cores() if spare_cores(torch_threads) > 0 else 0):
        yield


@contextlib.contextmanager
def views_prefill(lmm, image, prompt: str, views, enabled: bool,
                  threads: int = 1) -> Iterator[Future | None]:
    """Within the block, a future of `lmm.prefill_views(image, prompt, views but identity)` run
    on the `worker` thread with `threads` torch threads (after the jobs submitted before it,
    such as SAM's embedding of the frame), or None (disabled, or no view but identity). On
    leaving, the job is canceled if it has not started, else it has ended."""
    others = [view for view in views if view != "identity"]
    if not enabled or not others:
        yield None
        return
    future = worker().submit(with_threads(
        lambda: lmm.prefill_views(image, prompt, others), threads))
    try:
        yield future
    finally:
        future.cancel()
        wait([future])
