"""Camera frames and mask proposals matched by stamp, per source (camera).

Stamps are integer nanoseconds. A proposal node takes seconds a frame (a GPU: about one), so
its proposals arrive after newer frames: `FrameStore` keeps each source's recent frames (the
newest few, and as many as `max_age_ns` asks, only while `keep` says someone publishes
proposals) and the frame of each proposal run, to pair with proposals that come late. A
clock that jumps back (a bag replayed again, a simulator reset) leaves frames stamped in the
future; they are dropped as soon as an older stamp arrives.
No ROS import: the grounding node converts stamps and decodes messages.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ros_ground.calibrations import CalibrationHistory

MAX_FRAMES = 256  # memory bound on the frames kept per source
# how long the newest frames are kept while proposals come, whatever max_age: a run's frame is
# among them when its proposals_started comes, which the proposal node sends after decoding it
MIN_KEEP_NS = 2 * 10**9
# the longest proposal run counted (KeptForProposals), so that with max_age 0 a command grounds
# a frame at most twice this old: within tf2's default 10 s buffer, for looking up its stamp.
# A GPU takes about a second a frame; a CPU's 25-60 s runs pair only through max_age
MAX_RUN_NS = 5 * 10**9
MAX_PROPOSALS = 16  # proposal messages kept per source
# bytes a fingerprint reads: ~0.3 ms on a 2592x1944 rgb8 frame (15 MB), where blake2b of every
# byte takes ~30 ms, and a frame is fingerprinted at each request and each proposal run
FINGERPRINT_SAMPLES = 1 << 16


@lru_cache(maxsize=8)
def _sample_positions(size: int) -> np.ndarray:
    """FINGERPRINT_SAMPLES sorted byte positions in [0, size), the same for every image of
    `size` bytes (seeded by it): uniform, so no row, column or stripe is skipped."""
    if size <= FINGERPRINT_SAMPLES:
        return np.arange(size)
    return np.unique(np.random.default_rng(size).integers(0, size, FINGERPRINT_SAMPLES))


def pixel_fingerprint(image: np.ndarray) -> str:
    """A cheap name for `image`'s pixels (any shape and dtype): blake2b of its shape, dtype
    and FINGERPRINT_SAMPLES of its bytes at fixed pseudo-random positions (all of them in an
    image of at most that many bytes). Equal images get equal fingerprints; two pictures that
    differ over n bytes of a B-byte image get different ones but with probability about
    exp(-n * FINGERPRINT_SAMPLES / B): for a 5 MP rgb8 frame about 1 in 10^4 for a change of
    26 x 26 pixels (which leaves SAM's embedding almost the same), under 1e-11 for 200 x 10.
    Sampled, not hashed whole, for speed (FINGERPRINT_SAMPLES says how much)."""
    flat = np.ascontiguousarray(image).reshape(-1).view(np.uint8)
    digest = hashlib.blake2b(repr((image.shape, image.dtype.str)).encode(), digest_size=16)
    digest.update(flat.take(_sample_positions(flat.size)))
    return digest.hexdigest()


@dataclass(frozen=True)
class Stamped:
    """A frame or a proposal message with its stamp in ns."""

    stamp_ns: int
    item: Any
    run_ns: int = 0  # proposals: how far the camera's stamps moved on while their run took


class KeptForProposals:
    """Frames (colour or depth) kept past a store's bounds because proposals for them are
    coming or have come: a proposal run can outlast the frames kept by count (a proposal node
    on a CPU, a 30 Hz camera: 256 frames are 8.5 s) or by `max_age_ns`, so the proposal node
    says when it starts one, and the store keeps that frame (`want`) while the run lasts (at
    most MAX_RUN_NS) and, once its proposals came, as long again as the run took: pairable
    until the next run's proposals are due, whatever `max_age_ns` (the longer of the two
    holds). A stamp wanted before its frame came is remembered until that frame (or a later
    one) arrives. At most `maxlen` frames and wanted stamps per source; the stores call it
    under their own lock.
    """

    def __init__(self, maxlen: int = MAX_PROPOSALS):
        self._maxlen = maxlen
        # kept frames, each with how long past its stamp it stays (beyond max_age_ns)
        self._kept: dict[str, deque[tuple[Stamped, int]]] = {}
        self._wanted: dict[str, deque[tuple[int, int]]] = {}  # (stamp, tolerance) ns

    def want(self, source: str, stamp_ns: int, tolerance_ns: int, stored,
             run_ns: int | None = None) -> None:
        """Keep the frame of `stored` (Stamped) closest to `stamp_ns` within `tolerance_ns`,
        or the first such frame to arrive; `run_ns`: its proposals came, after a run that
        took this long (Stamped.run_ns), so it stays 2 x `run_ns` past its stamp."""
        near = [f for f in [*stored, *self.frames(source)] if abs(f.stamp_ns - stamp_ns) <= tolerance_ns]
        if near:
            self._keep(source, min(near, key=lambda f: abs(f.stamp_ns - stamp_ns)), run_ns)
        else:
            self._wanted.setdefault(source, deque(maxlen=self._maxlen)).append(
                (int(stamp_ns), int(tolerance_ns)))

    def arrived(self, source: str, entry: Stamped, max_age_ns: int) -> None:
        """A new frame: kept if a wanted stamp fits it (that stamp is then served). Kept frames
        more than `max_age_ns` older than it, or stamped after it (the clock jumped back), are
        forgotten, and so are wanted stamps it has passed."""
        wanted = self._wanted.get(source, deque())
        fits = [abs(entry.stamp_ns - stamp) <= tol for stamp, tol in wanted]
        if any(fits):
            self._keep(source, entry)
        still = [(stamp, tol) for (stamp, tol), fit in zip(wanted, fits)
                 if not fit and entry.stamp_ns < stamp + tol]
        wanted.clear()
        wanted.extend(still)
        kept = self._kept.get(source, deque())
        still = [(f, stays) for f, stays in kept
                 if 0 <= entry.stamp_ns - f.stamp_ns <= max(max_age_ns, stays)]
        kept.clear()
        kept.extend(still)

    def frames(self, source: str) -> list[Stamped]:
        return [f for f, _ in self._kept.get(source, ())]

    def forget(self, source: str | None = None) -> None:
        """Forget `source`'s kept frames and wanted stamps (every source's when None)."""
        for table in (self._kept, self._wanted):
            if source is None:
                table.clear()
            else:
                table.pop(source, None)

    def _keep(self, source: str, entry: Stamped, run_ns: int | None = None) -> None:
        kept = self._kept.setdefault(source, deque(maxlen=self._maxlen))
        stays = MAX_RUN_NS if run_ns is None else 2 * min(max(int(run_ns), 0), MAX_RUN_NS)
        for i, (f, _) in enumerate(kept):
            if f.stamp_ns == entry.stamp_ns:
                if run_ns is not None:  # its run ended: kept as long again as it took
                    kept[i] = (f, stays)
                return
        kept.append((entry, stays))


class FrameStore:
    """Latest frame, recent frames and recent proposals of each source; thread-safe."""

    def __init__(self, max_frames: int = MAX_FRAMES, max_proposals: int = MAX_PROPOSALS,
                 min_keep_ns: int = MIN_KEEP_NS):
        self._max_frames, self._max_proposals = max_frames, max_proposals
        self._min_keep_ns = min_keep_ns
        self._latest: dict[str, Stamped] = {}
        self._recent: dict[str, deque[Stamped]] = {}
        self._proposals: dict[str, deque[Stamped]] = {}
        self._proposals_received: dict[str, int] = {}  # ever, per source: the flow's sign of life
        self._kept = KeptForProposals(max_proposals)
        self._lock = threading.Lock()

    def add_frame(self, source: str, stamp_ns: int, frame, max_age_ns: int = 0,
                  keep: bool = True) -> None:
        """Make `frame` the source's latest; when `keep` (someone publishes proposals to pair
        it with) remember it while it is at most `min_keep_ns` or `max_age_ns` older than the
        latest. Frames and proposals stamped after this one (the clock jumped back: a bag
        replayed again, a simulator reset) are forgotten; frames kept for a proposal run go
        as KeptForProposals says."""
        entry = Stamped(int(stamp_ns), frame)
        with self._lock:
            before = self._latest.get(source)
            self._latest[source] = entry
            recent = self._recent.setdefault(source, deque(maxlen=self._max_frames))
            self._kept.arrived(source, entry, max(int(max_age_ns), 0))
            proposals = self._proposals.get(source)
            if proposals and before is not None and before.stamp_ns > entry.stamp_ns:
                kept = [p for p in proposals if p.stamp_ns <= entry.stamp_ns]
                proposals.clear()
                proposals.extend(kept)
            if not keep:  # frames kept for a run in flight stay: its node may be restarting
                recent.clear()
                return
            window = max(int(max_age_ns), self._min_keep_ns)
            kept = [f for f in recent if 0 < entry.stamp_ns - f.stamp_ns <= window]  # a stamp once
            recent.clear()
            recent.extend(kept)
            recent.append(entry)

    def add_proposals(self, source: str, stamp_ns: int, proposals) -> int:
        """Remember proposals for the source's frame stamped `stamp_ns`; returns their run's
        time (Stamped.run_ns): how far the source's latest stamp is past theirs now, at most
        MAX_RUN_NS. Give it to `keep_near` to keep their frame as long again."""
        with self._lock:
            latest = self._latest.get(source)
            run = min(max(latest.stamp_ns - int(stamp_ns), 0), MAX_RUN_NS) if latest else 0
            queue = self._proposals.setdefault(source, deque(maxlen=self._max_proposals))
            queue.append(Stamped(int(stamp_ns), proposals, run))
            self._proposals_received[source] = self._proposals_received.get(source, 0) + 1
        return run

    def proposals_received(self, source: str) -> int:
        """How many proposal messages the source has had, ever (not reset by `clear`)."""
        with self._lock:
            return self._proposals_received.get(source, 0)

    def keep_near(self, source: str, stamp_ns: int, tolerance_ns: int,
                  run_ns: int | None = None) -> None:
        """Keep the frame stamped within `tolerance_ns` of `stamp_ns` past the store's bounds
        (KeptForProposals): proposals for it are coming, or have come after a run of `run_ns`
        (`add_proposals`)."""
        with self._lock:
            self._kept.want(source, stamp_ns, tolerance_ns, self._recent.get(source, ()), run_ns)

    def latest(self, source: str):
        """The source's latest frame, or None before the first."""
        with self._lock:
            entry = self._latest.get(source)
        return None if entry is None else entry.item

    def stamped(self, source: str, stamp_ns: int) -> list:
        """The source's remembered frames (latest, recent, kept for proposals) stamped `stamp_ns`."""
        with self._lock:
            entries = [self._latest.get(source), *self._recent.get(source, ()),
                       *self._kept.frames(source)]
        return [e.item for e in entries if e is not None and e.stamp_ns == stamp_ns]

    def recent_count(self, source: str) -> int:
        with self._lock:
            return len(self._recent.get(source, ()))

    def kept_count(self, source: str) -> int:
        """Frames kept for proposals past the `max_frames` bound (`keep_near`)."""
        with self._lock:
            return len(self._kept.frames(source))

    def proposal_count(self, source: str) -> int:
        with self._lock:
            return len(self._proposals.get(source, ()))

    def proposals_near(self, source: str, stamp_ns: int, tolerance_ns: int) -> list:
        """The source's proposals stamped within `tolerance_ns` of `stamp_ns`, closest first."""
        with self._lock:
            found = [p for p in self._proposals.get(source, ())
                     if abs(p.stamp_ns - stamp_ns) <= tolerance_ns]
        return [p.item for p in sorted(found, key=lambda p: abs(p.stamp_ns - stamp_ns))]

    def older_pairs(self, source: str, stamp_ns: int, max_age_ns: int, tolerance_ns: int,
                    fresh: Callable[[Any], bool] | None = None) -> Iterator[tuple[Any, Any]]:
        """(frame, proposals) pairs of remembered frames at most `max_age_ns`, or twice their
        proposals' run (Stamped.run_ns), before `stamp_ns` whose proposals are stamped within
        `tolerance_ns`; newest proposals first, each with its closest frame. A frame paired by
        its run alone must also be `fresh(frame)` (the node: received within max_frame_age_s):
        `max_age_ns` is the caller's word that older scenes are still right, the run is not."""
        with self._lock:
            recent = [*self._recent.get(source, ()), *self._kept.frames(source)]
            proposals = sorted(self._proposals.get(source, ()), key=lambda p: -p.stamp_ns)
        for p in proposals:
            gap = stamp_ns - p.stamp_ns
            if not 0 <= gap <= max(max_age_ns, 2 * p.run_ns):
                continue
            near = [f for f in recent if abs(f.stamp_ns - p.stamp_ns) <= tolerance_ns]
            if not near:
                continue
            frame = min(near, key=lambda f: abs(f.stamp_ns - p.stamp_ns)).item
            if gap <= max_age_ns or fresh is None or fresh(frame):
                yield frame, p.item

    def match(self, source: str, frame, stamp_ns: int, decode: Callable[[Any, Any], Any], *,
              tolerance_ns: int, max_age_ns: int = 0, search_older: bool = False,
              fresh: Callable[[Any], bool] | None = None):
        """The frame to ground and its proposals: `frame` with the closest proposals within
        `tolerance_ns`, else (when `search_older`) the newest remembered frame that has
        proposals at most `max_age_ns` older, or twice its proposal run while `fresh`
        (`older_pairs`: with a live camera the frame of the newest run pairs until the next
        run's proposals are due), else (`frame`, None). `decode(proposals, frame)`
        turns stored proposals into the frame's, or None when they do not fit it.

        Why older frames: a proposal node on a CPU takes seconds a frame, so the newest frame
        almost never has proposals yet. In a scene that holds still, a slightly older frame
        with entity masks grounds better than point prompts on the newest.
        """
        for proposals in self.proposals_near(source, stamp_ns, tolerance_ns)[:1]:
            found = decode(proposals, frame)
            if found is not None:
                return frame, found
        if search_older:
            for older, proposals in self.older_pairs(source, stamp_ns, max_age_ns, tolerance_ns, fresh):
                found = decode(proposals, older)
                if found is not None:
                    return older, found
        return frame, None

    def clear(self) -> None:
        with self._lock:
            self._latest.clear()
            self._recent.clear()
            self._proposals.clear()
            self._kept.forget()


class DepthStore:
    """Recent registered depth frames and the camera calibration of each source, paired with a
    colour frame by stamp; thread-safe.

    Depth images are kept as they arrive (`item`, e.g. the message) and decoded by the caller
    only when a request needs one, so a 30 Hz depth stream costs no decoding. Calibrations are
    those in effect at the frame's stamp (calibrations.CalibrationHistory: a zoom lens or a
    recalibration changes K between a frame and its request). As many depth
    frames are kept as colour frames (MAX_FRAMES): a frame the proposals come for late is
    grounded with its own depth.
    """

    def __init__(self, max_frames: int = MAX_FRAMES, min_keep_ns: int = MIN_KEEP_NS):
        self._depth: dict[str, deque[Stamped]] = {}
        self._kept = KeptForProposals()
        self._calibrations = CalibrationHistory()
        self._max_frames, self._min_keep_ns = max_frames, min_keep_ns
        self._lock = threading.Lock()

    def add_depth(self, source: str, stamp_ns: int, item, max_age_ns: int = 0) -> None:
        """Remember a depth frame; (up to `max_frames`) those at most `min_keep_ns` or
        `max_age_ns` older than it are kept: a request may ground an older colour frame
        (FrameStore.match) and needs that frame's depth."""
        with self._lock:
            queue = self._depth.setdefault(source, deque(maxlen=self._max_frames))
            if queue and queue[-1].stamp_ns > stamp_ns:  # the clock jumped back
                queue.clear()
            entry = Stamped(int(stamp_ns), item)
            queue.append(entry)
            while stamp_ns - queue[0].stamp_ns > max(max_age_ns, self._min_keep_ns):
                queue.popleft()
            self._kept.arrived(source, entry, max_age_ns)

    def keep_near(self, source: str, stamp_ns: int, tolerance_ns: int,
                  run_ns: int | None = None) -> None:
        """Keep the depth frame stamped within `tolerance_ns` of `stamp_ns` past the store's
        bounds (KeptForProposals, `run_ns` as there): a request may ground the colour frame
        the proposals are for long after (FrameStore.keep_near)."""
        with self._lock:
            self._kept.want(source, stamp_ns, tolerance_ns, self._depth.get(source, ()), run_ns)

    def set_calibration(self, source: str, calibration, stamp_ns: int = 0) -> None:
        """The source's calibration (its camera_info as the caller keeps it: K, the image size
        and frame) from `stamp_ns` on; None: none known from `stamp_ns` on (its camera_info was
        refused)."""
        self._calibrations.set(source, calibration, stamp_ns)

    def calibration(self, source: str, stamp_ns: int | None = None):
        """The source's calibration in effect at `stamp_ns` (None: the latest), or None before
        the first (and, for the latest, while the newest camera_info was refused). LookupError
        saying why when the one in effect at `stamp_ns` is not known
        (calibrations.CalibrationHistory.at)."""
        history = self._calibrations
        return history.latest(source) if stamp_ns is None else history.at(source, stamp_ns)

    def depth_near(self, source: str, stamp_ns: int, tolerance_ns: int):
        """The source's depth item stamped closest to `stamp_ns` if within `tolerance_ns`, else
        None."""
        found = [d for d in self._stored(source) if abs(d.stamp_ns - stamp_ns) <= tolerance_ns]
        if not found:
            return None
        # of equally near ones (one stamp twice), the newest
        return min(reversed(found), key=lambda d: abs(d.stamp_ns - stamp_ns)).item

    def registered(self, source: str, stamp_ns: int, tolerance_ns: int, decode: Callable):
        """(`decode(depth item)`, calibration) for the source's colour frame stamped `stamp_ns`:
        its depth frame stamped closest, within `tolerance_ns`, and the calibration in effect at
        the stamp. LookupError saying what is missing (no depth received, none within the
        tolerance, no camera_info yet, or not the one in effect at the stamp); `decode`'s errors
        pass."""
        if not self.has_depth(source):
            raise LookupError("no depth frame received")
        item = self.depth_near(source, stamp_ns, tolerance_ns)
        if item is None:
            raise LookupError("no depth frame within depth_tolerance_s of the image"
                              + self._nearest_offset(source, stamp_ns))
        calibration = self.calibration(source, stamp_ns)
        if calibration is None:
            raise LookupError("no camera_info received")
        return decode(item), calibration

    def _nearest_offset(self, source: str, stamp_ns: int) -> str:
        """" (the nearest is stamped 2.000 s before it)" for the depth frame kept nearest
        `stamp_ns`: how far to widen depth_tolerance_s, or which clock to fix."""
        offsets = [d.stamp_ns - stamp_ns for d in self._stored(source)]
        if not offsets:
            return ""
        nearest = min(offsets, key=abs)
        side = "before" if nearest < 0 else "after"
        return f" (the nearest is stamped {abs(nearest) / 1e9:.3f} s {side} it)"

    def _stored(self, source: str) -> list:
        """The source's depth frames, those kept for proposals first, then the recent ones
        oldest to newest."""
        with self._lock:
            return [*self._kept.frames(source), *self._depth.get(source, ())]

    def has_depth(self, source: str) -> bool:
        with self._lock:
            return bool(self._depth.get(source))

    def clear(self) -> None:
        with self._lock:
            self._depth.clear()
            self._kept.forget()
        self._calibrations.clear()
