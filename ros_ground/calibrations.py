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

import threading
from typing import Any

import numpy as np

MAX_CHANGES = 16  # calibrations kept per source: a lens that refocuses at 30 Hz keeps half a second


def same_calibration(a: Any, b: Any) -> bool:
    """`a == b` for calibrations: tuples item by item, numpy arrays (a K) element by element."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same_calibration(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


class CalibrationHistory:
    """The calibrations of each source with the stamp from which each holds; thread-safe.

    `set` records a calibration received with a stamp; one equal to the current one (a camera
    publishes its camera_info with every frame) adds nothing. `at` gives the one in effect at a
    stamp. A stamp older than every change kept gets the newest: the camera_info of a camera's
    first frame may come just after it, and camera_info on another clock than the images (a
    bag's frames beside a live camera_info, or one stamped on receipt) would otherwise keep the
    first K forever. A clock that jumps back (a bag replayed again) starts the history anew, as
    frames.FrameStore drops frames stamped in the future.
    """

    def __init__(self, max_changes: int = MAX_CHANGES):
        if max_changes < 1:
            raise ValueError(f"max_changes must be at least 1, got {max_changes}")
        self._max_changes = max_changes
        self._changes: dict[str, list[tuple[int, Any]]] = {}  # source -> [(since_ns, value)]
        self._lock = threading.Lock()

    def set(self, source: str, value: Any, stamp_ns: int) -> None:
        """`value` holds for `source` from `stamp_ns` on; None forgets every calibration of the
        source (a camera_info refused: the ones before may not be this camera's)."""
        with self._lock:
            if value is None:
                self._changes.pop(source, None)
                return
            changes = self._changes.setdefault(source, [])
            if changes and stamp_ns < changes[-1][0]:  # the clock jumped back
                changes.clear()
            if changes and same_calibration(changes[-1][1], value):
                return
            changes.append((int(stamp_ns), value))
            if len(changes) > self._max_changes:
                del changes[0]

    def latest(self, source: str) -> Any:
        """The newest calibration of `source`, or None before the first."""
        with self._lock:
            changes = self._changes.get(source)
            return changes[-1][1] if changes else None

    def at(self, source: str, stamp_ns: int) -> Any:
        """The calibration of `source` in effect at `stamp_ns`: the last one set at or before
        it, else the newest (see the class); None before the first set."""
        with self._lock:
            changes = self._changes.get(source)
            if not changes:
                return None
            held = [value for since, value in changes if since <= stamp_ns]
            return held[-1] if held else changes[-1][1]

    def clear(self) -> None:
        with self._lock:
            self._changes.clear()
