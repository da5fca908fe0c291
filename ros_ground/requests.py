"""A grounding request as the node queues it, the checks it must pass to be queued, and how
the engine answers it.

A request that fails a check is answered at once (BAD_INPUT or NO_IMAGE) instead of waiting in
the queue for an answer that is already known. A request may be about a region of its frame
(a goal's box, mask or pixel, a clicked point: ros_ground.regions), resolved to resolve_region
keywords when it is made. No ROS import: frames carry their message header untouched, and
times are integer nanoseconds of the node's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ros_ground.camera_watch import stale_frame_error
from ros_ground.errors import InputError, check_prompt, shorten
from ros_ground.regions import resolve_region
from ros_ground.settings import MODES

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
    """One request to a grounding node: a command, a `describe` call or an `ask` goal, with the
    camera frame (or the goal's own image) it is about; `precheck` and `at_start` judge it."""

    request_id: str
    prompt: str
    mode: str
    frame: Frame | None
    goal_handle: object = None
    camera_frame: bool = True  # False for a goal's own image: never swapped for another frame
    camera: str = ""  # one of the node's `cameras`; "" is the single default camera
    region: dict | None = None  # regions.resolve_region keywords: the prompt is about them


def precheck(request: Request, *, cameras: Sequence[str], topics: Mapping[str, str],
             now_ns: int, max_prompt_chars: int, max_frame_age_s: float,
             clean_prompt: Callable[[str], str] | None = None,
             why_stale: Callable[[str], str] | None = None) -> tuple[str, str] | None:
    """(BAD_INPUT or NO_IMAGE, why) when `request` cannot be grounded as it stands, else None.

    `topics` maps each camera to its resolved image topic (named in the errors); a frame
    received more than `max_frame_age_s` before `now_ns` is NO_IMAGE (0: any age).
    `clean_prompt`: the model's prompt clean-up (`LMMAdapter.clean_prompt`; ValueError when
    nothing is left), so a prompt of only chat markup or image placeholders takes no queue slot.
    `why_stale`: camera -> what a stale frame says of it (camera_watch.stale_reason).
    """
    try:
        check_prompt(request.prompt, max_prompt_chars)
        if clean_prompt is not None:
            clean_prompt(request.prompt)
    except ValueError as exc:  # InputError, prompts.EmptyPromptError
        return BAD_INPUT, str(exc)
    if request.mode and request.mode not in MODES:
        return BAD_INPUT, f"mode must be one of {MODES} or empty, got {shorten(request.mode)!r}"
    if request.camera not in cameras:
        return BAD_INPUT, (f"unknown camera {shorten(request.camera)!r}: this node's cameras are "
                           f"{list(cameras)}")
    topic = topics.get(request.camera, "image")
    frame = request.frame
    if frame is None:
        return NO_IMAGE, f"no image received yet on {topic!r}"
    if frame.received_ns is not None:
        stale = stale_frame_error((now_ns - frame.received_ns) / 1e9, max_frame_age_s, topic,
                                  _why(why_stale, request.camera))
        if stale:
            return NO_IMAGE, stale
    if frame.rgb is None:
        return BAD_INPUT, frame.error
    return None


def echoed_prompt(prompt: str, max_prompt_chars: int) -> str:
    """The prompt a response answering a request it did not ground (BAD_INPUT, busy, ...)
    carries: `prompt` itself up to `max_prompt_chars` (what a grounded one could carry), a
    longer one shortened (errors.shorten): a 10 MB command refused as too long was sent back
    whole to every `response` subscriber."""
    return prompt if len(prompt) <= max_prompt_chars else shorten(prompt)


def at_start(request: Request, newest: Frame | None, *, now_ns: int, max_frame_age_s: float,
             topic: str, why_stale: Callable[[str], str] | None = None) -> tuple[str, str] | None:
    """When `request` leaves the queue: a command about its camera (no own image, no region
    drawn on its frame) whose frame was received more than `max_frame_age_s` before `now_ns`
    while it waited takes the camera's `newest` frame, the scene as it is now; a frame still
    fresh stays, with the proposals that may have come for it. (NO_IMAGE, why) when the frame
    it would ground is stale too (the camera stopped) or does not decode, else None; either
    way `request.frame` is then that frame, the one its response's header names.
    `max_frame_age_s` 0 accepts any age, and keeps the frame. A region's frame stays: its
    pixels were given on it, and its age was checked when it came. `why_stale` as in precheck."""
    frame = request.frame
    if (not request.camera_frame or request.region is not None or frame is None
            or frame.received_ns is None):
        return None
    why = _why(why_stale, request.camera)
    stale = stale_frame_error((now_ns - frame.received_ns) / 1e9, max_frame_age_s, topic, why)
    if stale is None:
        return None
    if newest is None or newest.received_ns is None or newest is frame:
        return NO_IMAGE, stale
    # the frame it would ground, whose header its response carries even when it is NO_IMAGE
    request.frame = newest
    stale = stale_frame_error((now_ns - newest.received_ns) / 1e9, max_frame_age_s, topic, why)
    if stale:
        return NO_IMAGE, stale
    if newest.rgb is None:  # the camera's fault, not the request's: no frame to ground
        return NO_IMAGE, f"the newest frame on {topic!r} does not decode: {newest.error}"
    return None


def _why(why_stale: Callable[[str], str] | None, camera: str) -> Callable[[], str] | None:
    """`why_stale` of `camera`, to be asked only of a stale frame: it reads the ROS graph."""
    return None if why_stale is None else lambda: why_stale(camera)


def attach_region(request: Request, region: Callable) -> tuple[str, str] | None:
    """Set `request.region` to `region(request.frame)` (resolve_region keywords, None: the
    request names no region); (BAD_INPUT, why) when that raises InputError."""
    try:
        request.region = region(request.frame)
    except InputError as exc:
        return BAD_INPUT, str(exc)
    return None


def camera_of(frame_id: str, frames: Mapping[str, Frame | None]) -> str:
    """The first camera whose latest frame (`frames`: camera -> Frame or None) is in `frame_id`,
    e.g. a clicked point's; else the first camera, whose region check then says why not."""
    return next((camera for camera, frame in frames.items()
                 if frame is not None and frame.header.frame_id == frame_id), next(iter(frames)))


def ground(engine, request: Request, frame: Frame, proposals, *, image_key=None,
           accepted_at: float | None = None, **progress):
    """`engine`'s grounded answer to `request` on `frame` (decoded) with its `proposals`.

    A request about a region is answered about the region's entity (regions.resolve_region: a
    box's best proposal, a pixel's smallest proposal holding it, else SAM's mask at the pixel;
    engine.ground_region), any other by `engine.ground`; both with `progress` (on_progress,
    should_stop). timing_ms["total"] counts from `accepted_at` (time.perf_counter()) when given.
    Raises InputError for a region outside the image or with no entity under it.
    """
    if request.region is None:
        return engine.ground(frame.rgb, request.prompt, mode=request.mode or None,
                             proposals=proposals, image_key=image_key, accepted_at=accepted_at,
                             **progress)
    region = resolve_region(
        frame.rgb.shape[:2], proposals,
        lambda x, y: engine.segment_point(frame.rgb, (x, y), image_key)[0], **request.region)
    config = replace(engine.config, mode=engine.requested_mode(request.mode))
    result = engine.ground_region(frame.rgb, request.prompt, region, proposals, image_key, config,
                                  **progress)
    if accepted_at is not None:
        result.timing_ms["total"] = (time.perf_counter() - accepted_at) * 1e3
    return result
