"""calibrations.CalibrationHistory: the camera_info a frame was taken with, by stamp."""

import numpy as np
import pytest

from ros_ground.calibrations import CalibrationHistory, same_calibration


def _k(f: float) -> np.ndarray:
    return np.array([[f, 0.0, 80.0], [0.0, f, 60.0], [0.0, 0.0, 1.0]])


def test_a_frame_takes_the_calibration_of_its_time():
    # helper-127: K changed from f=300 to f=600 a quarter second after five goals; frames taken
    # before it were located with f=600 and their positions halved, position_error empty
    history = CalibrationHistory()
    assert history.at("cam", 10) is None and history.latest("cam") is None
    for stamp in (100, 133, 166):  # published with every frame: one change
        history.set("cam", (_k(300.0), 160, 120, "cam"), stamp)
    history.set("cam", (_k(600.0), 160, 120, "cam"), 200)
    assert history.at("cam", 199)[0][0, 0] == 300.0
    assert history.at("cam", 200)[0][0, 0] == 600.0
    assert history.latest("cam")[0][0, 0] == 600.0
    # a frame before every camera_info kept (on another clock, or before the first) takes the
    # newest
    assert history.at("cam", 50)[0][0, 0] == 600.0
    assert history.at("other", 200) is None


def test_a_refused_calibration_holds_from_its_stamp_and_a_clock_jump_starts_anew():
    # helper-137: a refusal between K1 and K2 had forgotten K1, so a frame between them took K2
    history = CalibrationHistory()
    history.set("cam", None, 50)  # refused before any: nothing to forget
    assert history.at("cam", 60) is None
    history.set("cam", "K1", 100)
    history.set("cam", None, 200)  # refused: no K from here until a valid one
    assert history.at("cam", 150) == "K1" and history.latest("cam") is None
    with pytest.raises(LookupError, match="was refused"):
        history.at("cam", 250)
    history.set("cam", "K2", 300)
    assert history.at("cam", 150) == "K1" and history.at("cam", 350) == history.latest("cam") == "K2"
    history.set("cam", "K3", 50)  # older than every change kept: a bag replayed again
    assert history.at("cam", 400) == history.at("cam", 60) == history.at("cam", 10) == "K3"


def test_a_late_camera_info_is_placed_by_its_stamp():
    # helper-137: K1 at 100, K2 at 200, then K1 stamped 150 arriving late was taken for a clock
    # jump: the history restarted and a frame at 250 got K1
    history = CalibrationHistory()
    for stamp, k in ((100, "K1"), (200, "K2"), (150, "K1")):
        history.set("cam", k, stamp)
    assert history.at("cam", 250) == "K2" and history.at("cam", 170) == "K1"
    history.set("cam", "K2", 120)  # a late K2: the change at 200 is no change any more
    assert [history.at("cam", t) for t in (110, 130, 170, 250)] == ["K1", "K2", "K2", "K2"]
    assert history._changes["cam"] == [(100, "K1"), (120, "K2")]
    # helper-140: a publisher that keeps one stamp and is recalibrated: the newer holds (two
    # that disagreed had made the stamp unknown for good)
    for k in ("K1", "K1", "K9", "K9"):
        history.set("cam", k, 300)
        assert history.at("cam", 310) == k and history.latest("cam") == k
    assert history.at("cam", 250) == "K2"


def test_a_k_that_jitters_is_one_calibration():
    """helper-140: a driver republishing a float zoom reading (fx 600 + 1e-9 noise, 40 frames at
    30 Hz) counted each as a change, and frames older than 16 of them lost their positions."""
    history = CalibrationHistory(max_changes=4)
    rng = np.random.default_rng(0)
    for i in range(40):
        history.set("cam", (_k(600.0 + rng.normal(0.0, 1e-9)), 160, 120, "cam"), 1_000 + 33 * i)
    assert len(history._changes["cam"]) == 1
    assert history.at("cam", 1_100)[0][0, 0] == pytest.approx(600.0)
    history.set("cam", (_k(600.01), 160, 120, "cam"), 3_000)  # a zoom step is a change
    assert history.at("cam", 3_000)[0][0, 0] == 600.01 and history.at("cam", 2_999)[0][0, 0] != 600.01


def test_a_frame_older_than_every_calibration_kept():
    # helper-134: a bag's frames (old stamps) beside a live camera_info (stamped now) kept the
    # first K after a correction; with no change dropped the newest is what they had before
    history = CalibrationHistory(max_changes=3)
    for stamp, k in ((100, "K1"), (200, "K2")):
        history.set("cam", k, stamp)
    assert history.at("cam", 150) == "K1" and history.at("cam", 5) == "K2"
    # helper-137: once changes are dropped, a frame older than those kept had one of them (K set
    # at 1..20 s with 16 kept gave frames at 2 s and 4 s the K of 20 s, 13% off sideways)
    for stamp, k in ((300, "K3"), (400, "K4")):
        history.set("cam", k, stamp)
    assert history.at("cam", 250) == "K2" and history.at("cam", 450) == "K4"
    with pytest.raises(LookupError, match="no longer kept: the calibration changed more than 3 times"):
        history.at("cam", 150)
    history.set("cam", "K5", 10)  # the clock jumped back: a new history, nothing dropped from it
    assert history.at("cam", 5) == "K5"
    history.clear()
    assert history.at("cam", 5) is None
    with pytest.raises(ValueError, match="max_changes"):
        CalibrationHistory(max_changes=0)


def test_same_calibration_compares_matrices_by_value():
    assert same_calibration((_k(1.0), 2, "a"), (_k(1.0), 2, "a"))
    assert not same_calibration((_k(1.0), 2, "a"), (_k(1.5), 2, "a"))
    assert not same_calibration((_k(1.0), 2), (_k(1.0), 2, "a"))
    assert same_calibration(_k(600.0), _k(600.0 * (1 + 1e-8))) and not same_calibration(_k(600.0), _k(600.01))
    assert not same_calibration(_k(1.0), np.eye(2))


def test_a_k_changing_with_every_frame_is_kept_for_every_frame_kept():
    from ros_ground import calibrations, frames

    assert calibrations.MAX_CHANGES >= frames.MAX_FRAMES
