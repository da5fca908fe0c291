"""Plain result types shared by the engine, the CLI and the ROS shells.

Kept free of torch and rclpy so every layer can build and read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ros_ground.masks import mask_bbox
from ros_ground.rle import mask_to_rle


@dataclass
class Proposal:
    """One entity mask proposed for a frame (GROUNDHOG's entity), with its token."""

    id: int
    mask: np.ndarray  # bool HxW
    score: float = 1.0  # SAM's predicted IoU of the mask: nominally 0..1, a regression (may exceed 1)
    stability: float = 1.0
    feature: np.ndarray | None = None  # entity token, float32 [D]

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        return mask_bbox(self.mask)


# The most proposals one EntityProposals message may hold, and the most mask pixels (proposals x
# H x W), refused before any mask is decoded (nodes/conversions.msg_to_proposals): each mask
# decodes to a full-frame bool array, and the masks are compared pairwise (masks.pair_intersections,
# N^2 pairs in Python): without a cap, 20000 masks of a 320x240 frame, 1.2 MB on the wire, take a
# grounding node from 1.3 to 2.4 GB.
# MAX_PROPOSALS: the mask-proposal node sends at most max_entities (64 by default, at most this)
# of SAM's automatic masks left after box NMS: about 100 on a cluttered photograph (SA-1B's
# average), a few hundred at the generator's densest settings (32x32 points, crop layers); 1024
# is 16 times the default and several times SAM's densest output.
MAX_PROPOSALS = 1024
# MAX_PROPOSAL_PIXELS: 1 GiB of decoded masks, the most a default proposal node sends (64 masks of
# a 4096x4096 frame, the default max_image_pixels); 517 masks at 1920x1080, and below 1024x1024
# the count binds first (315 MB for 1024 masks at 640x480). A pixel budget bounds memory
# whatever the frame's size, which a count alone does not (1024 masks of 4096x4096: 17 GB).
# Decoding is per command, one message at a time; the 16 messages kept per camera are kept
# encoded (RLE).
MAX_PROPOSAL_PIXELS = 1 << 30


def proposals_allowed(height: int, width: int) -> int:
    """The most proposals one message may hold for a height x width frame (both bounds above).

    An empty frame (0 pixels) gets MAX_PROPOSALS: its masks hold no pixels, so the pixel budget
    never binds, as in the grounding node's check of a message. Raises ValueError for a negative
    size."""
    if height < 0 or width < 0:
        raise ValueError(f"a frame of {width}x{height} pixels has a negative size")
    pixels = height * width
    return min(MAX_PROPOSALS, MAX_PROPOSAL_PIXELS // pixels) if pixels else MAX_PROPOSALS


@dataclass
class GroundedPhrase:
    """A span of the generated text and the pixels it refers to."""

    text: str
    char_start: int
    char_end: int
    # SAM's predicted IoU of the mask (nominally 0..1; `confidence` clips it): the point
    # prompt's, or the mean of the chosen proposals' in entities mode; 0 when ungrounded
    score: float
    mask: np.ndarray  # bool HxW, the input image's size
    point: tuple[float, float] | None = None  # (x, y) prompt point in pixels
    entity_ids: list[int] = field(default_factory=list)
    entity_scores: dict[int, float] = field(default_factory=dict)
    token_indices: list[int] = field(default_factory=list)
    # where the mask is in 3-D (spatial.locate), camera optical frame, metres: robust centre
    # (NaN without depth), extent along x, y, z, and how many depth points gave them
    position: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    size: np.ndarray = field(default_factory=lambda: np.zeros(3))
    depth_points: int = 0

    @property
    def confidence(self) -> float:
        """`score` as a confidence in [0, 1] (0 when not finite): SAM's predicted IoU is a
        regression and can come out a little above 1."""
        return min(max(float(self.score), 0.0), 1.0) if math.isfinite(self.score) else 0.0

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the mask; zeros for an empty mask."""
        return mask_bbox(self.mask)

    def to_json(self) -> dict:
        """The phrase as `ros-ground ground --json` prints it (README, "Command line"): the
        mask as COCO uncompressed RLE, bbox [x, y, w, h] and point [x, y] in pixels, position
        and size in metres (without depth: position null, size 0)."""
        return {
            "text": self.text,
            "char_start": self.char_start,
            "char_end": self.char_end,
            "score": self.confidence,
            "bbox": list(self.bbox),
            "point": None if self.point is None else [float(self.point[0]), float(self.point[1])],
            "mask_rle": mask_to_rle(self.mask),
            "entity_ids": [int(i) for i in self.entity_ids],
            "position": [_finite(v) for v in self.position],
            "size": [float(v) for v in self.size],
            "depth_points": int(self.depth_points),
        }


@dataclass
class Reference:
    """What a command's words make of its grounded phrases (indices into them, -1: none).

    `target`: the phrase the command is about; `landmark`: the phrase its spatial relation
    relates the target to ("the tray" of "the mug left of the tray"); `relation`: that relation
    as command.spatial_words.RELATION_NAMES names it ("left of"), "" without one; `destination`: whether
    the relation says where to put the target ("put the mug behind the tray", "on the shelf":
    command/relations.py) rather than which one it is (with no target, where to put what the
    robot holds: "put *it* on the tray"); `second_landmark`: with relation "between", the other
    landmark ("the duck" of "between the mug and the duck"), or `landmark` itself when one phrase
    names both ("between the two mugs": its mask holds the two), -1 otherwise; `absent`: the
    phrase the command is
    about, or its landmark or destination, when the frame holds nothing it can be ("the purple
    mug" with nothing purple in view, "the mug left of the duck" with no duck: command.refer.absent), or
    the target whose nouns the model cannot read ("the giraffe" for the sim model); the command
    then has no target. `intent`: what the words ask of the robot, one of command.intent.INTENTS
    ("act", "locate", "none"). `more_targets`: the other phrases the command is about, joined to
    the target by "and" ("the blue cube" of "pick up the red mug and the blue cube":
    command/conjoined.py), in the order said; () without a target."""

    target: int = -1
    landmark: int = -1
    relation: str = ""
    destination: bool = False
    absent: int = -1
    second_landmark: int = -1
    intent: str = "none"
    more_targets: tuple[int, ...] = ()


@dataclass
class GroundingResult:
    """What one grounded response holds; `timing_ms` is keyed by pipeline stage (ms).

    "sam_embedding" is the time the response spent encoding images for SAM wherever a stage
    needed it (the frame, point windows, proposal crops; 0 when none was encoded, as with
    given proposals); "proposals", "segment" and "prompt_grounding" exclude it. An embedding
    computed ahead on the worker thread is not in it: waiting for it is "sam_wait"."""

    text: str
    phrases: list[GroundedPhrase]
    model: str
    image_size: tuple[int, int]  # (height, width)
    timing_ms: dict[str, float] = field(default_factory=dict)
    token_ids: list[int] = field(default_factory=list)
    mode: str = ""
    canceled: bool = False
    # the command's own phrases, char spans into `prompt` (the prompt as cleaned of chat
    # markup), and what its words make of them (Reference): the index of the phrase
    # the command is about and of its landmark (-1: none), the relation between the two
    # ("left of", "" none), whether it says where to put the target, the phrase (the target,
    # its landmark or destination) the frame holds none of what it names (-1: none), and the
    # other landmark of "between" (Reference.second_landmark), what the words ask of the robot
    # (Reference.intent), and the other objects joined to the target (Reference.more_targets)
    prompt: str = ""
    prompt_phrases: list[GroundedPhrase] = field(default_factory=list)
    target: int = -1
    landmark: int = -1
    relation: str = ""
    destination: bool = False
    absent: int = -1
    second_landmark: int = -1
    intent: str = "none"
    more_targets: tuple[int, ...] = ()

    def to_json(self) -> dict:
        """The result as `ros-ground ground --json` prints it (README, "Command line")."""
        return {
            "text": self.text,
            "phrases": [p.to_json() for p in self.phrases],
            "prompt": self.prompt,
            "prompt_phrases": [p.to_json() for p in self.prompt_phrases],
            "target": int(self.target),
            "landmark": int(self.landmark),
            "relation": self.relation,
            "destination": bool(self.destination),
            "absent": int(self.absent),
            "second_landmark": int(self.second_landmark),
            "intent": self.intent,
            "more_targets": [int(k) for k in self.more_targets],
            "timing_ms": {k: round(float(v), 3) for k, v in self.timing_ms.items()},
            "model": self.model,
            "mode": self.mode,
        }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
