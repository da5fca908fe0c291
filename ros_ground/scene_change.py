"""Whether two frames of one camera show the same scene, so that one's entity proposals fit the other.

A proposal node on a CPU takes seconds a frame, so a command is grounded on an older frame that
has proposals (frames.FrameStore.match), up to `proposal_max_age_s` old when the user says the
scene holds still. A scene that changed in the meantime (an object moved, a new scene in the
simulator) would be answered from before the change, with an OK status and 3-D positions of
where things were. Comparing the two frames' pixels catches it whatever the settings say.

The test is coarse on purpose: camera noise and auto-exposure move every pixel by a few levels,
an object put down or taken away moves a patch of them by many. Pixels are compared on a grid
of about `samples` points; the scene changed when more than `max_changed` of them differ by more
than `min_change` levels in some channel. With the defaults an object covering about 0.05 % of
the frame (20 x 15 pixels of 640 x 480) that appears, goes or moves is a change; smaller ones are
not seen.
"""

from __future__ import annotations

import math

import numpy as np

SAMPLES = 80_000  # grid points compared (time: docs/MEASUREMENTS.md, "A scene changed since the proposals")
MIN_CHANGE = 48  # levels (of 255) in some channel: above noise and exposure steps
MAX_CHANGED = 0.0005  # share of the grid points


def same_scene(a: np.ndarray | None, b: np.ndarray | None, *, samples: int = SAMPLES,
               min_change: int = MIN_CHANGE, max_changed: float = MAX_CHANGED) -> bool:
    """Whether frames `a` and `b` (HxWxC uint8, e.g. RGB, of one camera) show the same scene.

    Arguments:
      a, b: the two frames; None (no pixels) or frames of different shapes are not the same.
      samples: about how many pixels are compared, on a regular grid (every pixel of a frame
        smaller than that).
      min_change: a grid point changed when some channel differs by more than this many levels.
      max_changed: the scene changed when more than this share of the grid points changed.

    Returns False when the scene changed (or cannot be compared), True otherwise.
    """
    if a is None or b is None or a.shape != b.shape:
        return False
    if a is b:
        return True
    height, width = a.shape[:2]
    stride = max(1, math.ceil(math.sqrt(height * width / samples)))
    grid_a = a[::stride, ::stride].astype(np.int16)
    grid_b = b[::stride, ::stride].astype(np.int16)
    diff = np.abs(grid_a - grid_b)
    changed = diff.max(axis=-1) > min_change if diff.ndim == 3 else diff > min_change
    return float(changed.mean()) <= max_changed
