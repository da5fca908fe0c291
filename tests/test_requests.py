"""requests.precheck: what is answered at once, before a request is queued."""

import numpy as np

from ros_ground.requests import BAD_INPUT, NO_IMAGE, Frame, Request, precheck

RGB = np.zeros((4, 4, 3), np.uint8)
LIMITS = dict(cameras=["left", "right"], topics={"left": "/l/image", "right": "/r/image"},
              max_prompt_chars=100, max_frame_age_s=1.0)


def check(request, now_ns=10_000_000_000, **overrides):
    return precheck(request, now_ns=now_ns, **{**LIMITS, **overrides})


def test_a_fresh_frame_of_a_known_camera_passes():
    frame = Frame(None, RGB, received_ns=9_500_000_000)
    assert check(Request("1", "Describe.", "", frame, camera="left")) is None


def test_a_frame_older_than_max_frame_age_is_no_image_with_its_age():
    frame = Frame(None, RGB, received_ns=0)
    kind, error = check(Request("1", "Describe.", "", frame, camera="right"))
    assert kind == NO_IMAGE and "10.0 s ago" in error and "/r/image" in error
    assert check(Request("1", "Describe.", "", frame, camera="right"), max_frame_age_s=0) is None
    own = Frame(None, RGB)  # a goal's own image has no receive time: never stale
    assert check(Request("1", "Describe.", "", own, camera="right")) is None


def test_unknown_camera_bad_prompt_missing_and_bad_frames():
    frame = Frame(None, RGB, received_ns=9_900_000_000)
    kind, error = check(Request("1", "Describe.", "", frame, camera="front"))
    assert kind == BAD_INPUT and "'front'" in error and "['left', 'right']" in error
    assert check(Request("1", "", "", frame, camera="left"))[0] == BAD_INPUT
    kind, error = check(Request("1", "Describe.", "", None, camera="left"))
    assert kind == NO_IMAGE and "/l/image" in error
    broken = Frame(None, None, "bad image: truncated", received_ns=9_900_000_000)
    assert check(Request("1", "Describe.", "", broken, camera="left")) == (
        BAD_INPUT, "bad image: truncated")
