"""Work that needs only the frame, done on a worker thread while the LMM generates the answer.

SAM's image embedding (sam.prefetch) and the attention views' prompt (`LMMAdapter.prefill_views`)
do not depend on the answer, so `GroundingEngine.ground` can start them with the request and
find them done when generation ends. One worker at a time, and only where it has somewhere to
run: a GPU for SAM, or CPU cores that torch's intra-op threads leave free. Measured on the
2-core CPU (docs/compiled_decoding.md): with torch at 1 thread the embedded default answers in
~0.78x the time; with torch's threads on every core the worker's threads and torch's spin
against each other and the answer takes ~1.3x as long, hence the free-core rule.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import torch


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def spare_threads() -> int:
    """Cores left free by torch's intra-op threads (0 when torch uses them all)."""
    return max(0, usable_cores() - torch.get_num_threads())


def ahead_work(prefetch: bool | None, sam_device: str, lmm_device) -> tuple[bool, bool]:
    """(SAM's embedding, the views' prefill): whether each runs ahead, on a worker thread.

    `prefetch` True / False forces both on / off (the views' only with the LMM on the CPU);
    None: SAM's when it is on a GPU or a core is spare (`spare_threads`), the views' when the
    LMM is on the CPU and a core is spare. On a GPU the worker's kernels would queue on the
    decoder's stream, so the views stay after the answer there.
    """
    on_cpu = str(lmm_device).startswith("cpu")
    if prefetch is not None:
        return prefetch, prefetch and on_cpu
    spare = spare_threads() > 0
    return str(sam_device).startswith("cuda") or spare, on_cpu and spare


def on_spare_threads(work: Callable[[], object]) -> Callable[[], object]:
    """`work` to run on a worker thread with torch's intra-op threads set, for that thread
    only, to the spare cores (at least 1): it must not take the cores the generation runs on."""

    def run():
        torch.set_num_threads(max(1, spare_threads()))
        return work()

    return run


@contextlib.contextmanager
def spare_cores_joined(enabled: bool) -> Iterator[None]:
    """Within the block, the calling thread's torch threads cover every usable core (when
    `enabled` and some are spare): once the answer is generated, the cores that ran the work
    ahead are idle, and the grounding stages (the views' answer pass, SAM's decodes) use them.
    torch's thread count is per thread; it is restored on leaving."""
    before = torch.get_num_threads()
    if enabled and spare_threads() > 0:
        torch.set_num_threads(usable_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def views_prefill(lmm, sam, image, prompt: str, views, image_key,
                  enabled: bool) -> Iterator[Future | None]:
    """Within the block, a future of `lmm.prefill_views(image, prompt, views but identity)` run
    on a worker thread, or None (disabled, or no view but identity). The worker starts once
    SAM's embedding of the frame, if `sam` computes it ahead, is done. On leaving, the worker
    has ended."""
    others = [view for view in views if view != "identity"]
    if not enabled or not others:
        yield None
        return

    def prefill():
        with contextlib.suppress(Exception):  # the request meets that error where it waits
            sam.wait_prefetch(image, image_key)
        return lmm.prefill_views(image, prompt, others)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="views-ahead") as worker:
        yield worker.submit(on_spare_threads(prefill))
