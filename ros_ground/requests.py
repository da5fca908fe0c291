"""A grounding request as the node queues it, and the checks it must pass to be queued.

A request that fails a check is answered at once (BAD_INPUT or NO_IMAGE) instead of waiting in
the queue for an answer that is already known. No ROS import: frames carry their message
header untouched, and times are integer nanoseconds of the node's clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ros_ground.camera_watch import stale_frame_error
from ros_ground.errors import InputError, check_prompt

BAD_INPUT, NO_IMAGE = "bad_input", "no_image"


@dataclass
class Frame:
    """A camera frame, decoded once on arrival (or the reason it could not be)."""

    header: object
    rgb: object = None  # HxWx3 uint8, or None when decoding failed
    error: str = ""
    received_ns: int | None = None  # node clock at arrival; None: a goal's own image


@dataclass
class Request:
    request_id: str
    prompt: str
    mode: str
    frame: Frame | None
    goal_handle: object = None
    camera_frame: bool = True  # False for a goal's own image: never swapped for another frame
    camera: str = ""  # one of the node's `cameras`; "" is the single default camera


def precheck(request: Request, *, cameras: Sequence[str], topics: Mapping[str, str],
             now_ns: int, max_prompt_chars: int, max_frame_age_s: float) -> tuple[str, str] | None:
    """(BAD_INPUT or NO_IMAGE, why) when `request` cannot be grounded as it stands, else None.

    `topics` maps each camera to its resolved image topic (named in the errors); a frame
    received more than `max_frame_age_s` before `now_ns` is NO_IMAGE (0: any age).
    """
    try:
        check_prompt(request.prompt, max_prompt_chars)
    except InputError as exc:
        return BAD_INPUT, str(exc)
    if request.camera not in cameras:
        return BAD_INPUT, f"unknown camera {request.camera!r}: this node's cameras are {list(cameras)}"
    topic = topics.get(request.camera, "image")
    frame = request.frame
    if frame is None:
        return NO_IMAGE, f"no image received yet on {topic!r}"
    if frame.received_ns is not None:
        stale = stale_frame_error((now_ns - frame.received_ns) / 1e9, max_frame_age_s, topic)
        if stale:
            return NO_IMAGE, stale
    if frame.rgb is None:
        return BAD_INPUT, frame.error
    return None
