"""Which camera calibration was in effect when a frame was taken, per source (camera).

A frame is grounded seconds after it arrives (a request waits for the model; with
`proposal_max_age_s` it may ground a frame 10 s old), and a camera's K can change meanwhile: a
zoom or autofocus lens, a recalibration, a driver restarted with other settings. Located with
the newest K, such a frame's positions would be off by the ratio of the two focal lengths,
silently. So each change is kept with the stamp of the camera_info that brought it, and a frame
takes the calibration of the last change stamped at or before it, as depth is paired with it by
stamp (frames.DepthStore). Stamps are integer nanoseconds; no ROS import.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

import numpy as np

# calibrations kept per source: twice the frames kept (frames.MAX_FRAMES), so a lens whose K
# changes with every frame still has the K of each frame kept (a K is 72 bytes)
MAX_CHANGES = 512
# K entries this close (relative) are one calibration: a driver that republishes a float zoom
# reading jitters in the last digits, and each jitter is no change of where a pixel looks
K_RTOL = 1e-6


def same_calibration(a: Any, b: Any) -> bool:
    """`a == b` for calibrations: tuples item by item, numpy arrays (a K) element by element
    within K_RTOL of each other; None (unknown) equals only None."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_calibration(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=K_RTOL, atol=0.0))
    return a == b


class CalibrationHistory:
    """The calibrations of each source with the stamp from which each holds; thread-safe.

    `set` records a calibration received with a stamp, placed by its stamp; one equal to the
    one in effect there (a camera publishes its camera_info with every frame) adds nothing, and
    a refused camera_info (None) holds as "unknown" until the next. `at` gives the one in effect
    at a stamp, and says why when none can be named:

    - a stamp older than every change kept gets the newest while no change has been dropped:
      the camera_info of a camera's first frame may come just after it, and camera_info on
      another clock than the images (a bag's frames beside a live camera_info, or one stamped
      on receipt) would otherwise keep the first K forever;
    - once more than `max_changes` changes came, the oldest are dropped, and a stamp older than
      those kept is refused: its K is one of those dropped;
    - a camera_info older than every change kept (a clock that jumped back: a bag replayed
      again, a simulator restarted) starts the history anew, as frames.FrameStore drops frames
      stamped in the future; one older than the newest but not than all is a late message, and
      is placed by its stamp;
    - a camera_info stamped as an earlier one replaces it: a publisher that keeps one stamp
      and is recalibrated (set_camera_info) says what holds from then on.
    """

    def __init__(self, max_changes: int = MAX_CHANGES):
        if max_changes < 1:
            raise ValueError(f"max_changes must be at least 1, got {max_changes}")
        self._max_changes = max_changes
        # source -> [(since_ns, value or None: refused)], by stamp; the sources that dropped some
        self._changes: dict[str, list[tuple[int, Any]]] = {}
        self._dropped: set[str] = set()
        self._lock = threading.Lock()

    def set(self, source: str, value: Any, stamp_ns: int) -> None:
        """`value` holds for `source` from `stamp_ns` on, until the next change stamped after
        it; None: no calibration is known from `stamp_ns` on (a camera_info refused)."""
        stamp_ns = int(stamp_ns)
        with self._lock:
            changes = self._changes.setdefault(source, [])
            if changes and stamp_ns < changes[0][0]:  # the clock jumped back
                changes.clear()
                self._dropped.discard(source)
            at = bisect.bisect_right(changes, stamp_ns, key=lambda change: change[0])
            if at and changes[at - 1][0] == stamp_ns:  # the same stamp again: the newer holds
                del changes[at - 1]
                at -= 1
            if at and same_calibration(changes[at - 1][1], value) or not at and not changes and value is None:
                return  # in effect already, or nothing known to forget
            changes.insert(at, (stamp_ns, value))
            if at + 1 < len(changes) and same_calibration(changes[at + 1][1], value):
                del changes[at + 1]  # the next change is no change any more
            if len(changes) > self._max_changes:
                del changes[0]
                self._dropped.add(source)

    def latest(self, source: str) -> Any:
        """The newest calibration of `source`, or None before the first and while the newest
        camera_info was refused."""
        with self._lock:
            changes = self._changes.get(source)
            return changes[-1][1] if changes else None

    def at(self, source: str, stamp_ns: int) -> Any:
        """The calibration of `source` in effect at `stamp_ns` (see the class); None before the
        first set. Raises LookupError saying why when the one in effect is not known: refused or
        dropped."""
        with self._lock:
            changes = self._changes.get(source)
            if not changes:
                return None
            at = bisect.bisect_right(changes, int(stamp_ns), key=lambda change: change[0])
            if at:
                value = changes[at - 1][1]
            elif source in self._dropped:
                raise LookupError(f"the camera_info in effect at the frame's stamp is no longer kept: "
                                  f"the calibration changed more than {self._max_changes} times since")
            else:
                value = changes[-1][1]
            if value is None:
                raise LookupError("the camera_info in effect at the frame's stamp was refused")
            return value

    def clear(self) -> None:
        with self._lock:
            self._changes.clear()
            self._dropped.clear()

