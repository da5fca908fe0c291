"""Frames and proposals matched by stamp, per source, without ROS."""

import numpy as np
import pytest

from ros_ground.frames import MAX_RUN_NS, MIN_KEEP_NS, DepthStore, FrameStore, pixel_fingerprint

S = 1_000_000_000  # ns per second


def test_latest_frame_per_source():
    store = FrameStore()
    assert store.latest("cam0") is None
    store.add_frame("cam0", 5 * S, "f5")
    store.add_frame("cam1", 6 * S, "g6")
    assert (store.latest("cam0"), store.latest("cam1")) == ("f5", "g6")


def test_proposals_near_a_stamp_closest_first_within_tolerance():
    store = FrameStore()
    store.add_proposals("cam0", 5 * S + 40_000_000, "p+40ms")
    store.add_proposals("cam0", 5 * S - 10_000_000, "p-10ms")
    store.add_proposals("cam0", 5 * S + 200_000_000, "p+200ms")
    store.add_proposals("cam1", 5 * S, "other camera")
    assert store.proposals_near("cam0", 5 * S, 50_000_000) == ["p-10ms", "p+40ms"]
    assert store.proposals_near("cam0", 5 * S, 0) == []


def test_frames_are_kept_for_max_age_only_while_asked():
    store = FrameStore(min_keep_ns=0)
    store.add_frame("cam0", 5 * S, "f5", max_age_ns=0)
    assert store.recent_count("cam0") == 1  # the newest, whatever max_age
    store.add_frame("cam0", 5 * S, "f5", max_age_ns=3 * S, keep=False)
    assert store.recent_count("cam0") == 0  # nobody publishes proposals
    for sec in (5, 6, 7, 9):
        store.add_frame("cam0", sec * S, f"f{sec}", max_age_ns=3 * S)
    assert store.recent_count("cam0") == 3  # f5 is more than 3 s older than f9
    # a run's frame is among those kept when its proposals_started comes, however fast the
    # camera: the newest MIN_KEEP_NS of frames, by stamp, not a count
    period = 11_000_000  # 90 Hz
    newest = FrameStore()
    for k in range(500):
        newest.add_frame("cam0", k * period, f"f{k}", max_age_ns=0)
    assert newest.recent_count("cam0") == 1 + MIN_KEEP_NS // period
    newest.keep_near("cam0", 400 * period, 5_000_000)  # started 1.1 s after its frame
    assert newest.kept_count("cam0") == 1


def test_older_pairs_newest_proposals_first_each_with_its_closest_frame():
    store = FrameStore()
    for sec in (5, 6, 7):  # each frame's proposals at once: runs of no time
        store.add_frame("cam0", sec * S, f"f{sec}", max_age_ns=10 * S)
        if sec == 5:
            store.add_proposals("cam0", 5 * S + 10_000_000, "p5")
            store.add_proposals("cam0", 4 * S, "p4 (no frame near)")
        if sec == 6:
            store.add_proposals("cam0", 6 * S, "p6")
    assert list(store.older_pairs("cam0", 7 * S, 10 * S, 50_000_000)) == [
        ("f6", "p6"), ("f5", "p5")]
    assert list(store.older_pairs("cam0", 7 * S, int(1.5 * S), 50_000_000)) == [("f6", "p6")]
    assert list(store.older_pairs("cam1", 7 * S, 10 * S, 50_000_000)) == []


def test_a_clock_jumping_back_drops_the_frames_from_the_future():
    store = FrameStore()
    for sec in (100, 101, 102):
        store.add_frame("cam0", sec * S, f"f{sec}", max_age_ns=10 * S)
    store.add_proposals("cam0", 102 * S, "p102 (the old scene)")
    store.add_frame("cam0", 1 * S, "f1", max_age_ns=10 * S)  # a bag started again
    assert store.recent_count("cam0") == 1 and store.latest("cam0") == "f1"
    assert store.proposal_count("cam0") == 0  # the old scene's proposals never pair with the new
    store.add_proposals("cam0", 101 * S, "p101")
    assert list(store.older_pairs("cam0", 1 * S, 10 * S, 50_000_000)) == []
    # a jump back of a few frames: every frame stamped after the new one goes, not the oldest only
    small = FrameStore()
    for k in (13, 14, 15, 16, 17, 18, 19, 16):
        small.add_frame("cam0", k * S // 10, f"f{k}", max_age_ns=10 * S)
    assert small.stamped("cam0", 17 * S // 10) == [] and small.recent_count("cam0") == 4


def test_clear_forgets_everything():
    store = FrameStore()
    store.add_frame("cam0", S, "f", max_age_ns=S)
    store.add_proposals("cam0", S, "p")
    store.clear()
    assert (store.latest("cam0"), store.recent_count("cam0"), store.proposal_count("cam0")) == (
        None, 0, 0)


def test_match_prefers_the_frames_own_proposals_then_an_older_frame_with_some():
    store = FrameStore()
    store.add_frame("cam0", 5 * S, "f5", max_age_ns=10 * S)
    store.add_proposals("cam0", 5 * S, "p5")  # at once: a run of no time
    store.add_frame("cam0", 7 * S, "f7", max_age_ns=10 * S)

    def decode(proposals, frame):
        return None if proposals == "bad" else f"{proposals}@{frame}"

    kw = dict(tolerance_ns=50_000_000, max_age_ns=3 * S)
    assert store.match("cam0", "f7", 7 * S, decode, **kw) == ("f7", None)  # not asked to search
    assert store.match("cam0", "f7", 7 * S, decode, search_older=True, **kw) == ("f5", "p5@f5")
    assert store.match("cam0", "f7", 7 * S, decode, search_older=True, tolerance_ns=50_000_000,
                       max_age_ns=S) == ("f7", None)  # too old
    store.add_proposals("cam0", 7 * S, "p7")
    assert store.match("cam0", "f7", 7 * S, decode, search_older=True, **kw) == ("f7", "p7@f7")
    other = FrameStore()
    for sec in (5, 7):
        other.add_frame("cam0", sec * S, f"f{sec}", max_age_ns=10 * S)
    other.add_proposals("cam0", 5 * S, "p5")
    other.add_proposals("cam0", 7 * S, "bad")  # do not fit the frame: the older frame's are used
    assert other.match("cam0", "f7", 7 * S, decode, search_older=True, **kw) == ("f5", "p5@f5")


def test_depth_store_matches_by_stamp_and_keeps_what_an_older_frame_needs():
    from ros_ground.frames import DepthStore

    store = DepthStore(max_frames=20, min_keep_ns=0)
    assert store.depth_near("cam", 0, 10) is None and store.calibration("cam") is None
    for t in range(0, 100, 10):
        store.add_depth("cam", t, f"d{t}", max_age_ns=35)
    assert store.depth_near("cam", 72, 5) == "d70"
    assert store.depth_near("cam", 75, 4) is None  # nothing within the tolerance
    assert store.depth_near("cam", 60, 1) == "d60"  # 30 ns before the newest: kept
    assert store.depth_near("cam", 50, 1) is None  # 40 ns before it: forgotten
    store.add_depth("cam", 5, "replayed")  # the clock jumped back: the future is dropped
    assert store.depth_near("cam", 90, 100) == "replayed"
    store.set_calibration("cam", "K")
    assert store.calibration("cam") == "K" and store.has_depth("cam")
    store.clear()
    assert not store.has_depth("cam") and store.calibration("cam") is None


def test_registered_depth_says_what_is_missing():
    store = DepthStore()
    with pytest.raises(LookupError, match="no depth frame received"):
        store.registered("cam", 100, 10, str)
    store.add_depth("cam", 100, 7)
    with pytest.raises(LookupError, match="within depth_tolerance_s"):
        store.registered("cam", 200, 10, str)
    with pytest.raises(LookupError, match="camera_info"):
        store.registered("cam", 105, 10, str)
    store.set_calibration("cam", "K")
    assert store.registered("cam", 105, 10, lambda item: item * 2) == (14, "K")


def test_proposals_keep_their_frame_and_depth_past_the_frame_bounds():
    """A proposal run can outlast the frames kept by count (a 30 Hz camera, a proposal node
    taking a minute a frame on a CPU, a scene that holds still with proposal_max_age_s): the
    frame its proposals are for, and that frame's depth, must still pair with them, or auto
    mode falls back to point prompts and the phrases lose their 3-D positions."""
    from ros_ground.frames import DepthStore

    frames, depth = FrameStore(max_frames=4), DepthStore(max_frames=4, min_keep_ns=0)
    max_age, tol = 100 * S, 50_000_000
    for t in range(3):
        frames.add_frame("cam", t * S, f"f{t}", max_age)
        depth.add_depth("cam", t * S, f"d{t}", max_age)
    frames.keep_near("cam", 1 * S, tol)  # the run on f1 starts (proposals_started)
    depth.keep_near("cam", 1 * S, tol)
    for t in range(3, 40):
        frames.add_frame("cam", t * S, f"f{t}", max_age)
        depth.add_depth("cam", t * S, f"d{t}", max_age)
    assert frames.recent_count("cam") == 4  # f1 left the recent frames long ago
    frames.add_proposals("cam", 1 * S, "p1")  # and its proposals come
    assert frames.match("cam", "f39", 39 * S, lambda p, f: (p, f), tolerance_ns=tol,
                        max_age_ns=max_age, search_older=True) == ("f1", ("p1", "f1"))
    assert depth.depth_near("cam", 1 * S, tol) == "d1" and depth.depth_near("cam", 2 * S, tol) is None
    # proposals whose frame was not kept pair with nothing, as before
    frames.add_proposals("cam", 2 * S, "p2")
    assert list(frames.older_pairs("cam", 39 * S, max_age, tol)) == [("f1", "p1")]
    # the kept frame and depth go with max_age, and with a clock jumping back
    frames.add_frame("cam", 102 * S, "f102", max_age)
    depth.add_depth("cam", 102 * S, "d102", max_age)
    assert list(frames.older_pairs("cam", 102 * S, 200 * S, tol)) == []
    assert depth.depth_near("cam", 1 * S, tol) is None
    frames.keep_near("cam", 102 * S, tol)
    depth.keep_near("cam", 102 * S, tol)
    assert frames.kept_count("cam") == 1
    frames.add_frame("cam", 5 * S, "replayed", max_age)
    depth.add_depth("cam", 5 * S, "replayed", max_age)
    assert list(frames.older_pairs("cam", 200 * S, 300 * S, tol)) == []
    assert depth.depth_near("cam", 102 * S, tol) is None


def test_a_run_announced_before_its_frame_arrives_keeps_that_frame_once():
    """proposals_started and the image travel on different topics: the notice may come first.
    The frame is kept when it arrives, once however often it is asked for, and a notice whose
    frame never comes is forgotten when later frames pass it."""
    from ros_ground.frames import DepthStore

    frames, depth = FrameStore(max_frames=2), DepthStore(max_frames=2, min_keep_ns=0)
    max_age, tol = 100 * S, 50_000_000
    frames.add_frame("cam", 0, "f0", max_age)
    frames.keep_near("cam", 1 * S, tol)  # the notice of f1 before f1
    depth.keep_near("cam", 1 * S, tol)
    frames.keep_near("cam", 3 * S + 500_000_000, tol)  # a frame the store will never get
    for t in range(1, 10):
        frames.add_frame("cam", t * S, f"f{t}", max_age)
        depth.add_depth("cam", t * S, f"d{t}", max_age)
        if t == 1:
            frames.keep_near("cam", 1 * S, tol)  # the proposals came too: still one slot
            depth.keep_near("cam", 1 * S, tol)
    assert frames.kept_count("cam") == 1 and frames.recent_count("cam") == 2
    frames.keep_near("cam", 1 * S, tol, frames.add_proposals("cam", 1 * S, "p1"))  # as the node does
    assert list(frames.older_pairs("cam", 9 * S, max_age, tol)) == [("f1", "p1")]
    assert depth.depth_near("cam", 1 * S, tol) == "d1"
    # without a proposal node seen (keep=False, e.g. while it restarts) the kept frame stays
    frames.add_frame("cam", 10 * S, "f10", max_age, keep=False)
    assert frames.kept_count("cam") == 1
    # f1's proposals came 8 s after it (at f9): it stays 2 x 8 s past its stamp, max_age or not
    frames.add_frame("cam", 11 * S, "f11", 0)
    assert frames.kept_count("cam") == 1
    frames.add_frame("cam", 18 * S, "f18", 0)
    assert frames.kept_count("cam") == 0


def test_a_live_cameras_frames_pair_with_the_proposals_of_the_newest_run_without_max_age():
    """proposal_max_age_s 0 (config/default.yaml) with a 30 Hz camera: proposals come seconds
    after their frame, when it is no longer the newest, and never paired; the proposal node's
    runs were wasted. A run's frame stays pairable while it runs and as long again after."""
    frames, depth = FrameStore(), DepthStore()
    period, tol, run = 33_000_000, 50_000_000, 15
    frames.add_frame("", 0, "frame0", max_age_ns=0)
    depth.add_depth("", 0, "depth0", max_age_ns=0)
    frames.keep_near("", 0, tol)  # proposals_started for frame0
    depth.keep_near("", 0, tol)
    for k in range(1, run + 1):  # 0.5 s of frames while SAM runs
        frames.add_frame("", k * period, f"frame{k}", max_age_ns=0)
        depth.add_depth("", k * period, f"depth{k}", max_age_ns=0)
    ran = frames.add_proposals("", 0, "proposals for frame0")
    assert ran == run * period
    frames.keep_near("", 0, tol, ran)
    depth.keep_near("", 0, tol, ran)

    def match(k):
        return frames.match("", f"frame{k}", k * period, lambda p, f: p, tolerance_ns=tol,
                            max_age_ns=0, search_older=True)

    assert match(run) == ("frame0", "proposals for frame0")
    assert depth.depth_near("", 0, tol) == "depth0"  # its depth too, for positions
    for k in range(run + 1, 2 * run + 1):  # for as long again as the run took
        frames.add_frame("", k * period, f"frame{k}", max_age_ns=0)
        depth.add_depth("", k * period, f"depth{k}", max_age_ns=0)
    assert match(2 * run) == ("frame0", "proposals for frame0")
    k = 2 * run + 1  # then the next run's proposals are due: the newest frame, alone
    frames.add_frame("", k * period, f"frame{k}", max_age_ns=0)
    depth.add_depth("", k * period, f"depth{k}", max_age_ns=0)
    assert match(k) == (f"frame{k}", None)
    assert frames.kept_count("") == 0
    k = MIN_KEEP_NS // period + 1  # then past the newest frames kept by time, its depth goes too
    depth.add_depth("", k * period, f"depth{k}", max_age_ns=0)
    assert depth.depth_near("", 0, 1) is None


def test_a_frame_paired_by_its_run_alone_must_be_fresh_and_one_within_max_age_need_not():
    """A changed scene: the run's frame, seconds old, pairs by its run only while the caller
    finds it fresh (the node: received within max_frame_age_s); proposal_max_age_s is the
    user's word that an older scene is still right."""
    frames, period, tol, run = FrameStore(), 100_000_000, 50_000_000, 10
    frames.add_frame("", 0, "frame0", max_age_ns=0)
    frames.keep_near("", 0, tol)
    for k in range(1, run + 1):
        frames.add_frame("", k * period, f"frame{k}", max_age_ns=0)
    frames.keep_near("", 0, tol, frames.add_proposals("", 0, "proposals for frame0"))

    def match(max_age_ns, fresh):
        return frames.match("", f"frame{run}", run * period, lambda p, f: p, tolerance_ns=tol,
                            max_age_ns=max_age_ns, search_older=True, fresh=fresh)

    stale = lambda frame: frame != "frame0"  # noqa: E731
    assert match(0, None) == ("frame0", "proposals for frame0")
    assert match(0, lambda frame: True) == ("frame0", "proposals for frame0")
    assert match(0, stale) == (f"frame{run}", None)
    assert match(run * period, stale) == ("frame0", "proposals for frame0")


def test_a_run_whose_proposals_never_come_keeps_its_frame_for_max_run_only():
    frames = FrameStore()
    frames.add_frame("", 0, "f0", max_age_ns=0)
    frames.keep_near("", 0, 10)  # proposals_started; the proposal node then stops
    frames.add_frame("", MAX_RUN_NS, "late", max_age_ns=0)
    assert frames.kept_count("") == 1
    frames.add_frame("", MAX_RUN_NS + 1, "later", max_age_ns=0)
    assert frames.kept_count("") == 0


def test_pixel_fingerprint_tells_pictures_apart_and_names_equal_ones_alike():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1944, 2592, 3), dtype=np.uint8)  # 15 MB: sampled, not hashed whole
    same = pixel_fingerprint(image)
    assert pixel_fingerprint(image.copy()) == same
    assert pixel_fingerprint(np.ascontiguousarray(image[:, :, ::-1])) \
        == pixel_fingerprint(image[:, :, ::-1])  # a view is named by its pixels, not its memory
    assert pixel_fingerprint(np.roll(image, 120, axis=1)) != same  # the scene moved
    moved = image.copy()
    moved[900:940, 1200:1240] = 0  # an object of 40 x 40 pixels
    assert pixel_fingerprint(moved) != same
    assert pixel_fingerprint(image.reshape(2592, 1944, 3)) != same  # other shape, same bytes
    small = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    changed = small.copy()
    changed[3, 5, 2] ^= 1  # a small image is hashed whole: one bit tells
    assert pixel_fingerprint(changed) != pixel_fingerprint(small)
