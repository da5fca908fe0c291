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


def test_a_refused_calibration_forgets_the_ones_before_and_a_clock_jump_starts_anew():
    history = CalibrationHistory()
    history.set("cam", "K1", 100)
    history.set("cam", None, 150)  # refused: K1 may have been another publisher's
    assert history.at("cam", 120) is None and history.latest("cam") is None
    history.set("cam", "K2", 300)
    history.set("cam", "K3", 50)  # a bag replayed again
    assert history.at("cam", 400) == history.at("cam", 60) == "K3"


def test_a_frame_older_than_every_calibration_kept_takes_the_newest():
    # helper-134: a bag's frames (old stamps) beside a live camera_info (stamped now) kept the
    # first K after a correction, then none after 16; the newest is what they had before
    history = CalibrationHistory(max_changes=2)
    for stamp, k in ((100, "K1"), (200, "K2"), (300, "K3")):
        history.set("cam", k, stamp)
    assert history.at("cam", 250) == "K2" and history.at("cam", 150) == history.at("cam", 5) == "K3"
    with pytest.raises(ValueError, match="max_changes"):
        CalibrationHistory(max_changes=0)


def test_same_calibration_compares_matrices_by_value():
    assert same_calibration((_k(1.0), 2, "a"), (_k(1.0), 2, "a"))
    assert not same_calibration((_k(1.0), 2, "a"), (_k(1.5), 2, "a"))
    assert not same_calibration((_k(1.0), 2), (_k(1.0), 2, "a"))
