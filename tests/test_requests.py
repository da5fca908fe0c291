"""requests: what is answered at once, before a request is queued, and how it is grounded."""

from types import SimpleNamespace as NS

import numpy as np
import pytest

from ros_ground.engine import EngineConfig
from ros_ground.errors import InputError
from ros_ground.regions import click_region
from ros_ground.requests import (
    BAD_INPUT,
    NO_IMAGE,
    Frame,
    Request,
    at_start,
    attach_region,
    camera_of,
    ground,
    precheck,
)

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


def test_a_command_leaving_the_queue_keeps_a_fresh_frame_and_swaps_a_stale_one():
    start = dict(now_ns=10_000_000_000, max_frame_age_s=1.0, topic="/l/image")
    fresh = Frame(None, RGB, received_ns=9_500_000_000)
    newest = Frame(None, RGB.copy(), received_ns=9_800_000_000)
    # a frame still fresh stays: proposals may have come for it while the command waited
    request = Request("1", "Describe.", "", fresh, camera="left")
    assert at_start(request, newest, **start) is None and request.frame is fresh
    # one that went stale in the queue (a 5 MP proposal run held SAM for two minutes) is the
    # scene of long ago: the newest frame is grounded instead
    queued = Frame(None, RGB, received_ns=1_000_000_000)
    request = Request("2", "Describe.", "", queued, camera="left")
    assert at_start(request, newest, **start) is None and request.frame is newest
    # the camera stopped while the command waited: the newest frame is too old as well
    request = Request("3", "Describe.", "", queued, camera="left")
    kind, error = at_start(request, queued, **start)
    assert kind == NO_IMAGE and "9.0 s ago" in error and "/l/image" in error
    # the response's header names the frame found too old: the newest, not the queued one
    stopped = Frame(None, RGB.copy(), received_ns=2_000_000_000)
    request = Request("3b", "Describe.", "", queued, camera="left")
    kind, error = at_start(request, stopped, **start)
    assert kind == NO_IMAGE and "8.0 s ago" in error and request.frame is stopped
    assert at_start(Request("4", "Describe.", "", queued), newest,
                    **{**start, "max_frame_age_s": 0}) is None  # 0: any age, the frame stays
    broken = Frame(None, None, "bad image: truncated", received_ns=9_900_000_000)
    request = Request("5", "Describe.", "", queued)
    assert at_start(request, broken, **start) == (
        NO_IMAGE, "the newest frame on '/l/image' does not decode: bad image: truncated")
    assert request.frame is broken
    # a region's pixels were given on its frame, and a goal's own image is its own
    region = Request("6", "What is this?", "", queued, region={"point": (1, 1)})
    own = Request("7", "Describe.", "", queued, camera_frame=False)
    for request in (region, own):
        assert at_start(request, newest, **start) is None and request.frame is queued


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

    assert check(Request("1", "Describe.", "magic", frame, camera="left"))[0] == BAD_INPUT


def _click(x, y, z=0.0, frame_id="cam"):
    return NS(header=NS(frame_id=frame_id), point=NS(x=x, y=y, z=z))


def test_a_click_goes_to_the_camera_whose_frame_it_is_in_and_its_region_is_attached():
    frames = {"left": Frame(NS(frame_id="left_optical"), RGB), "right": None,
              "top": Frame(NS(frame_id="top_optical"), RGB)}
    assert camera_of("top_optical", frames) == "top"
    assert camera_of("map", frames) == "left"  # refused by the region check, on the first
    request = Request("1", "What is this?", "", frames["top"], camera="top")
    click = _click(2.0, 3.0, frame_id="top_optical")
    assert attach_region(request, lambda frame: click_region(click, frame, None)) is None
    assert request.region == {"point": (2.0, 3.0)}
    kind, why = attach_region(request, lambda frame: click_region(_click(9.0, 3.0), frame, None))
    assert kind == BAD_INPUT and "in frame 'cam'" in why


class FakeEngine:
    """Records what the requests module asks of the engine."""

    def __init__(self):
        self.config, self.calls = EngineConfig(), []

    def requested_mode(self, mode=None):
        return mode or self.config.mode

    def ground(self, image, prompt, **kwargs):
        self.calls.append(("ground", prompt, kwargs))
        return NS(timing_ms={})

    def segment_point(self, image, point, image_key=None):
        mask = np.zeros(image.shape[:2], bool)
        mask[int(point[1]), int(point[0])] = True
        self.calls.append(("segment_point", point, image_key))
        return mask, 1.0

    def ground_region(self, image, prompt, region, proposals, image_key, config, **progress):
        self.calls.append(("ground_region", prompt, region, config.mode, progress))
        return NS(timing_ms={"total": 1.0})


def test_ground_answers_about_the_region_when_the_request_names_one():
    engine, rgb = FakeEngine(), np.zeros((8, 10, 3), np.uint8)
    request = Request("1", "Describe.", "point", Frame(None, rgb))
    ground(engine, request, request.frame, None, image_key="k", should_stop=bool)
    assert engine.calls == [("ground", "Describe.", dict(
        mode="point", proposals=None, image_key="k", accepted_at=None, should_stop=bool))]
    engine.calls = []
    request.region = {"point": (3.0, 4.0)}
    result = ground(engine, request, request.frame, None, image_key="k", accepted_at=0.0,
                    should_stop=bool)
    (segment, (kind, prompt, region, mode, progress)) = engine.calls
    assert segment == ("segment_point", (3.0, 4.0), "k")
    assert (kind, prompt, region.kind, mode) == ("ground_region", "Describe.", "point", "point")
    assert progress == {"should_stop": bool}  # a region goal streams and cancels too
    assert np.argwhere(region.mask).tolist() == [[4, 3]]
    assert result.timing_ms["total"] > 1.0  # counted from acceptance
    request.region = {"point": (30.0, 4.0)}
    with pytest.raises(InputError, match="outside"):
        ground(engine, request, request.frame, None)


def test_a_prompt_with_no_text_of_its_own_once_cleaned_is_bad_input_at_once():
    """'<image>' or zero-width characters pass the blank check but leave the model nothing: they
    were queued, took slots that valid commands were then refused for, and failed later."""
    from ros_ground.lmm import load_lmm

    clean = load_lmm("tiny", device="cpu").clean_prompt
    frame = Frame(None, RGB, received_ns=9_500_000_000)
    for prompt in ("<image>", "\u200b\u200b", "USER: <image>\nASSISTANT:"):
        kind, error = check(Request("1", prompt, "", frame, camera="left"), clean_prompt=clean)
        assert kind == BAD_INPUT and "no text of its own" in error, prompt
    assert check(Request("1", "<image> Describe.", "", frame, camera="left"),
                 clean_prompt=clean) is None


def test_a_senders_long_mode_or_camera_is_quoted_shortened_and_a_refused_prompt_too():
    # a 5 kB goal mode made a 5 kB log line, and a 10.8 MB command refused as too long went back
    # whole in its response's prompt (trial132 D7)
    from ros_ground.requests import echoed_prompt

    frame = Frame(None, RGB, received_ns=9_500_000_000)
    for field in ("mode", "camera"):
        request = Request("1", "Describe.", "", frame, camera="left")
        setattr(request, field, "q" * 5000)
        kind, error = check(request)
        assert kind == BAD_INPUT and len(error) < 400 and "... (5000 characters)'" in error, error
    kind, error = check(Request("1", "x" * 10_000_000, "", frame, camera="left"))
    assert kind == BAD_INPUT and len(error) < 100
    assert echoed_prompt("x" * 10_000_000, 100) == "x" * 200 + "... (10000000 characters)"
    assert echoed_prompt("y" * 100, 100) == "y" * 100  # what a grounded request could carry
