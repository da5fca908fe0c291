"""Progress over an evaluation's scenes: a tqdm bar on a terminal, a line now and then in a log.

An evaluation of 200 scenes runs for 15-20 minutes on a 2-core CPU. tqdm draws its bar only on
a terminal (`disable=None`), so a run under nohup or in CI would say nothing until it ends;
without one it prints the training loop's progress lines (train.loop.progress_line).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from tqdm import tqdm

from ros_ground.train.loop import progress_line

REPORT_EVERY_S = 60.0


def scene_progress(seeds: Sequence[int], desc: str, progress: bool | None = None,
                   report_every_s: float = REPORT_EVERY_S) -> Iterator[int]:
    """Yield `seeds` in order, showing progress on stderr.

    Arguments:
      seeds: the scene seeds (a sized sequence: the lines say how many are left).
      desc: the name that starts each line or the bar ("eval", "eval regions").
      progress: True for a bar; False for nothing; None (default) for a bar when stderr is a
        terminal, and otherwise one line every `report_every_s` seconds and one at the end:
        "eval: scene 12/200, 1.2 min, about 19 min left".
      report_every_s: seconds between lines (> 0; ValueError otherwise).
    """
    if report_every_s <= 0:
        raise ValueError(f"report_every_s must be > 0, got {report_every_s!r}")
    bar = tqdm(seeds, desc=desc, unit="scene", disable=None if progress is None else not progress)
    if progress is not None or not bar.disable:
        yield from bar
        return
    start = reported = time.perf_counter()
    for done, seed in enumerate(seeds, start=1):
        yield seed
        now = time.perf_counter()
        if now - reported >= report_every_s or done == len(seeds):
            reported = now
            left = (now - start) / done * (len(seeds) - done)
            progress_line(desc, "scene", done, len(seeds), now - start, left)
