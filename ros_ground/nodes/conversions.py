"""Core results <-> ros_ground_msgs / sensor_msgs messages.

The only module that knows both the core's dataclasses and the message layouts, so every node
and the CLI convert the same way.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Vector3
from ros_ground_msgs.msg import EntityProposal, EntityProposals, GroundedResponse, MaskRLE
from ros_ground_msgs.msg import GroundedPhrase as GroundedPhraseMsg
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from ros_ground.command.intent import INTENTS
from ros_ground.image_encode import encode_depth_32fc1, encode_mono8, encode_rgb8
from ros_ground.masks import mask_bbox
from ros_ground.results import (
    MAX_PROPOSAL_PIXELS,
    MAX_PROPOSALS,
    GroundedPhrase,
    GroundingResult,
    Proposal,
    proposals_allowed,
)
from ros_ground.rle import RLEError, counts_to_mask, mask_to_counts


class ProposalError(ValueError):
    """An EntityProposals message that cannot describe the frame it claims to."""


def mask_to_msg(mask: np.ndarray) -> MaskRLE:
    """MaskRLE of a bool HxW mask: COCO uncompressed RLE, column-major (rle.mask_to_counts)."""
    msg = MaskRLE()
    msg.height, msg.width = int(mask.shape[0]), int(mask.shape[1])
    msg.counts = mask_to_counts(mask)
    return msg


def msg_to_mask(msg: MaskRLE) -> np.ndarray:
    """The bool HxW mask of a MaskRLE; raises rle.RLEError when its counts do not fill HxW."""
    return counts_to_mask(msg.height, msg.width, np.asarray(msg.counts, dtype=np.int64))


def bbox_to_roi(bbox: tuple[int, int, int, int]) -> RegionOfInterest:
    """sensor_msgs/RegionOfInterest of an (x, y, w, h) box in pixels."""
    x, y, w, h = bbox
    return RegionOfInterest(x_offset=int(x), y_offset=int(y), width=int(w), height=int(h))


def phrase_to_msg(phrase: GroundedPhrase) -> GroundedPhraseMsg:
    """The GroundedPhrase message of a phrase: its score as a confidence (in [0, 1]), no point
    as NaN, NaN."""
    msg = GroundedPhraseMsg()
    msg.text = phrase.text
    msg.char_start, msg.char_end = int(phrase.char_start), int(phrase.char_end)
    msg.score = phrase.confidence
    msg.mask = mask_to_msg(phrase.mask)
    msg.bbox = bbox_to_roi(phrase.bbox)
    msg.point_x, msg.point_y = (
        (float(phrase.point[0]), float(phrase.point[1])) if phrase.point else (math.nan, math.nan)
    )
    msg.entity_ids = [int(i) for i in phrase.entity_ids]
    x, y, z = (float(v) for v in phrase.position)
    msg.position = Point(x=x, y=y, z=z)
    sx, sy, sz = (float(v) for v in phrase.size)
    msg.size = Vector3(x=sx, y=sy, z=sz)
    msg.depth_points = int(phrase.depth_points)
    return msg


def msg_to_phrase(msg: GroundedPhraseMsg) -> GroundedPhrase:
    point = None if math.isnan(msg.point_x) else (float(msg.point_x), float(msg.point_y))
    return GroundedPhrase(
        text=msg.text,
        char_start=int(msg.char_start),
        char_end=int(msg.char_end),
        score=float(msg.score),
        mask=msg_to_mask(msg.mask),
        point=point,
        entity_ids=list(msg.entity_ids),
        position=np.array([msg.position.x, msg.position.y, msg.position.z], dtype=np.float64),
        size=np.array([msg.size.x, msg.size.y, msg.size.z], dtype=np.float64),
        depth_points=int(msg.depth_points),
    )


def result_to_msg(
    result: GroundingResult, header: Header, request_id: str, prompt: str
) -> GroundedResponse:
    """The response for `result`; its `prompt` is the cleaned prompt the prompt phrases' char
    spans index (`result.prompt`), or the request's `prompt` when the result has none."""
    msg = GroundedResponse()
    msg.header = header
    msg.request_id = request_id
    msg.prompt = result.prompt or prompt
    msg.text = result.text
    msg.phrases = [phrase_to_msg(p) for p in result.phrases]
    msg.prompt_phrases = [phrase_to_msg(p) for p in result.prompt_phrases]
    msg.target = int(result.target)
    msg.landmark = int(result.landmark)
    msg.relation = result.relation
    msg.destination = bool(result.destination)
    msg.absent = int(result.absent)
    msg.second_landmark = int(result.second_landmark)
    msg.intent = INTENTS.index(result.intent)
    msg.more_targets = [int(k) for k in result.more_targets]
    msg.status = GroundedResponse.STATUS_OK
    msg.model = result.model
    msg.mode = result.mode
    msg.generation_ms = float(result.timing_ms.get("generation", 0.0))
    msg.grounding_ms = float(result.timing_ms.get("grounding", 0.0))
    msg.total_ms = float(result.timing_ms.get("total", msg.generation_ms + msg.grounding_ms))
    return msg


def msg_to_result_json(msg: GroundedResponse) -> dict:
    """The CLI's JSON schema from a response message: `ros-ground ground --json`'s (the result's
    fields and `position_error`), with the response's `status`, `error`, `request_id` and
    `header` ({"frame_id", "stamp": {"sec", "nanosec"}}: the frame the positions are in, and the
    image's time to look its transform up at)."""
    phrases = [msg_to_phrase(p).to_json() for p in msg.phrases]
    return {
        "text": msg.text,
        "phrases": phrases,
        "prompt": msg.prompt,
        "prompt_phrases": [msg_to_phrase(p).to_json() for p in msg.prompt_phrases],
        "target": int(msg.target),
        "landmark": int(msg.landmark),
        "relation": msg.relation,
        "destination": bool(msg.destination),
        "absent": int(msg.absent),
        "second_landmark": int(msg.second_landmark),
        "intent": INTENTS[msg.intent] if msg.intent < len(INTENTS) else str(msg.intent),
        "more_targets": [int(k) for k in msg.more_targets],
        "timing_ms": {
            "total": round(float(msg.total_ms), 3),
            "generation": round(float(msg.generation_ms), 3),
            "grounding": round(float(msg.grounding_ms), 3),
        },
        "model": msg.model,
        "mode": msg.mode,
        "status": int(msg.status),
        "error": msg.error,
        "request_id": msg.request_id,
        "position_error": msg.position_error,
        "header": {"frame_id": msg.header.frame_id,
                   "stamp": {"sec": int(msg.header.stamp.sec), "nanosec": int(msg.header.stamp.nanosec)}},
    }


def error_response(
    status: int, error: str, request_id: str, prompt: str, header: Header | None = None,
    model: str = "",
) -> GroundedResponse:
    """A response that answers a request with `status` (a GroundedResponse.STATUS_*) and the
    `error` text, no phrases: every rejected or failed request still gets its one response."""
    msg = GroundedResponse()
    if header is not None:
        msg.header = header
    msg.request_id = request_id
    msg.prompt = prompt
    msg.status = status
    msg.error = error
    msg.model = model
    return msg


def rgb_to_image_msg(image: np.ndarray, header: Header | None = None) -> Image:
    """An rgb8 sensor_msgs/Image of an HxWx3 uint8 RGB array."""
    return _image_msg("rgb8", encode_rgb8(image), header)


def mono_to_image_msg(image: np.ndarray, header: Header | None = None) -> Image:
    """A mono8 sensor_msgs/Image of an HxW uint8 grey array."""
    return _image_msg("mono8", encode_mono8(image), header)


def depth_to_image_msg(depth: np.ndarray, header: Header | None = None) -> Image:
    """A 32FC1 sensor_msgs/Image (metres, NaN = no return) of an HxW float32 array."""
    return _image_msg("32FC1", encode_depth_32fc1(depth), header)


def _image_msg(encoding: str, fields: tuple, header: Header | None) -> Image:
    height, width, step, data = fields  # image_encode's (height, width, step, data)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=step)
    msg.data = data
    if header is not None:
        msg.header = header
    return msg


def proposals_to_msg(
    proposals: list[Proposal], header: Header, feature_source: str = ""
) -> EntityProposals:
    """EntityProposals for a frame (`header`); the entity tokens go in `features` (row-major
    entities x feature_dim, from `feature_source`) only when every proposal has one."""
    msg = EntityProposals()
    msg.header = header
    msg.entities = [
        EntityProposal(
            id=int(p.id),
            mask=mask_to_msg(p.mask),
            bbox=bbox_to_roi(mask_bbox(p.mask)),
            score=float(p.score),
            stability=float(p.stability),
        )
        for p in proposals
    ]
    features = [p.feature for p in proposals if p.feature is not None]
    if proposals and len(features) == len(proposals):
        stacked = np.stack([np.asarray(f, dtype=np.float32).ravel() for f in features])
        msg.feature_dim = int(stacked.shape[1])
        msg.features = stacked.ravel().tolist()
        msg.feature_source = feature_source
    return msg


def msg_to_proposals(msg: EntityProposals, height: int, width: int) -> list[Proposal]:
    """Validated proposals for a frame of height x width; raises ProposalError on bad input,
    and before any mask is decoded on more than results.MAX_PROPOSALS proposals or
    MAX_PROPOSAL_PIXELS mask pixels (proposals x height x width)."""
    count = len(msg.entities)
    if count > MAX_PROPOSALS:
        raise ProposalError(f"{count} proposals, above the limit of {MAX_PROPOSALS} a message")
    if count * height * width > MAX_PROPOSAL_PIXELS:
        raise ProposalError(f"{count} proposals of {width}x{height} masks are {count * height * width} "
                            f"mask pixels, above the limit of {MAX_PROPOSAL_PIXELS} a message "
                            f"({proposals_allowed(height, width)} proposals of this frame)")
    features = np.asarray(msg.features, dtype=np.float32)
    if msg.feature_dim and features.size != count * msg.feature_dim:
        raise ProposalError(
            f"features has {features.size} values, expected entities x feature_dim = "
            f"{count} x {msg.feature_dim}"
        )
    if not msg.feature_dim and features.size:
        raise ProposalError("features given with feature_dim 0")
    rows = features.reshape(count, msg.feature_dim) if msg.feature_dim else [None] * count
    proposals = []
    seen = set()
    for entity, feature in zip(msg.entities, rows):
        if (entity.mask.height, entity.mask.width) != (height, width):
            raise ProposalError(
                f"entity {entity.id} mask is {entity.mask.width}x{entity.mask.height}, "
                f"the frame is {width}x{height}"
            )
        if entity.id in seen:
            raise ProposalError(f"duplicate entity id {entity.id}")
        seen.add(entity.id)
        if not (np.isfinite(entity.score) and 0.0 <= entity.stability <= 1.0):
            raise ProposalError(f"entity {entity.id}: score must be finite and stability in "
                                f"[0, 1] (SAM's), got {entity.score} and {entity.stability}")
        try:
            mask = msg_to_mask(entity.mask)
        except RLEError as exc:
            raise ProposalError(f"entity {entity.id}: {exc}") from exc
        proposals.append(
            Proposal(
                id=int(entity.id), mask=mask, score=float(entity.score),
                stability=float(entity.stability), feature=feature,
            )
        )
    return proposals


def msg_to_intrinsics(msg):
    """The ros_ground.spatial.CameraInfo of a sensor_msgs/CameraInfo, its binning and ROI
    included (its `image_size` and `rectified_k` are the published image's). Raises
    ValueError when its width or height is 0 (CameraInfo()'s defaults, which a hand-written
    publisher may leave): K could not be checked against the image's resolution, and one for
    another resolution puts every position off by the ratio; and when its ROI (unless all 0) is
    empty or reaches past width x height, or the binning leaves no pixel of it."""
    from ros_ground.spatial import CameraInfo as Intrinsics

    width, height = int(msg.width), int(msg.height)
    if not (width and height):
        raise ValueError(f"its width x height is {width}x{height}: set width and height to the "
                         "image's resolution (the one its K is for)")
    roi = (int(msg.roi.x_offset), int(msg.roi.y_offset), int(msg.roi.width), int(msg.roi.height))
    x, y, w, h = roi
    if any(roi) and not (w and h and x + w <= width and y + h <= height):
        raise ValueError(f"its roi (x_offset {x}, y_offset {y}, width {w}, height {h}) is not a "
                         f"window of its {width}x{height}: give the published image's window, "
                         "or all 0 for the full image")
    info = Intrinsics(width=width, height=height,
                      k=np.asarray(msg.k, dtype=np.float64).reshape(3, 3),
                      d=np.asarray(msg.d, dtype=np.float64),
                      p=np.asarray(msg.p, dtype=np.float64).reshape(3, 4),
                      binning_x=int(msg.binning_x), binning_y=int(msg.binning_y), roi=roi)
    if min(info.image_size) == 0:
        raise ValueError(f"its binning ({msg.binning_x}, {msg.binning_y}) leaves no pixel of its "
                         f"{w or width}x{h or height} image")
    return info


def camera_info_to_k(msg) -> np.ndarray:
    """3x3 K of the image a sensor_msgs/CameraInfo describes, for a rectified (or undistorted)
    image: the left 3x3 of P when the camera has distortion and P is set, else K, divided by
    its binning and moved to its ROI (spatial.CameraInfo.rectified_k; see ros_ground.spatial
    for what is assumed). Raises ValueError for an unset or invalid K, or an unset width or
    height (`msg_to_intrinsics`)."""
    from ros_ground.spatial import check_intrinsics

    return check_intrinsics(msg_to_intrinsics(msg).rectified_k)


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))
