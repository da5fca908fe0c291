"""Every setting of the nodes and the command line, declared once.

A `Setting` names one value: its type (that of its default), default, allowed range or
choices, description, and whether it may change while a node is active (`live`). The ROS
parameters (ros_ground.nodes.params), the `ros-ground ground` / `eval` flags (ros_ground.cli),
`EngineConfig`'s defaults and checks (ros_ground.engine) and the README's parameter tables
(scripts/param_table.py) are all derived from these tables, and every check of a value goes
through `Setting.check`. Adding a setting is one line in a table below. No ROS import here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ros_ground.camera_watch import camera_topics
from ros_ground.geometry import IMAGE_FITS
from ros_ground.results import MAX_PROPOSALS
from ros_ground.views import FLIPS, VIEWS, check_views

# segment-anything's own automatic-mask defaults, tuned for ViT-H on 1024 px images
# (proposal_zoom, max_zoom_crops and zoom_magnification are ours).
AMG_DEFAULTS: dict[str, Any] = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "min_mask_region_area": 0,
    "crop_n_layers": 0,
    "proposal_zoom": False,
    "max_zoom_crops": 16,
    "zoom_magnification": 1.0,
}
# The mask proposals' settings (mask_proposal_node, and the engine when it proposes for
# itself). Looser than SAM's stock filters: for entity selection a missed object costs more than
# an extra mask proposal, and small models' honest IoU predictions (~0.87 on the sim's objects)
# fail a 0.88 / 0.95 filter for nearly every object. Both live here, not in ros_ground.sam, so
# reading the settings (the command line's flags) does not import torch.
PROPOSAL_DEFAULTS: dict[str, Any] = {
    **{name: value for name, value in AMG_DEFAULTS.items() if name != "stability_score_offset"},
    "points_per_side": 16, "pred_iou_thresh": 0.7, "stability_score_thresh": 0.8}

QOS_NAMES = ("auto", "reliable", "sensor_data", "best_effort")
# min_target_score's "off": below every cosine (>= -1), so no proposal falls short of it
TARGET_SCORE_OFF = -2.0
TRANSPORTS = ("raw", "compressed")


def _mask_index(value) -> str | int:
    """multimask_choice is a string on the node ('iou', '0'..'2'), an index or 'iou' in the engine."""
    return int(value) if str(value).isdigit() else value


def _token_window(value):
    """entity_token_window: 0 (the frame) or at least 1 (a window smaller than its box would
    cut the entity)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        raise ValueError(f"entity_token_window must be 0 or at least 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting. `low`/`high` bound a number (inclusive); `choices` bound a string or each
    item of a list; `field` is the EngineConfig field it sets, when it is one; `cli` makes it a
    flag of `ros-ground ground` / `eval`; `convert` turns a value into the engine's form (and may
    reject it) before the other checks."""

    name: str
    default: Any
    description: str
    live: bool = False
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    field: str | None = None
    cli: bool = False
    convert: Callable[[Any], Any] | None = None

    def check(self, value):
        """`value` in the engine's form; ValueError naming the setting when it is not allowed."""
        if self.convert:
            value = self.convert(value)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, float) and math.isnan(v) for v in items):
            raise ValueError(f"{self.name} must be a number, got {value!r}")  # NaN passes every bound
        if isinstance(self.default, bool) and not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{self.name} must be true or false, got {value!r}")  # 'false' is truthy
        if self.choices:
            bad = [v for v in items if str(v) not in self.choices]
            if bad:
                raise ValueError(f"{self.name} must be {self._choices_text()}, got {value!r}")
        if self.low is not None or self.high is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{self.name} must be a number, got {value!r}")
            if (self.low is not None and value < self.low) or (
                    self.high is not None and value > self.high):
                raise ValueError(f"{self.name} must be {self.range_text()}, got {value!r}")
        return value

    def range_text(self) -> str:
        """The allowed values in words ('' when any value of the type is allowed)."""
        if self.choices:
            return self._choices_text()
        if self.low is not None and self.high is not None:
            return f"{self.low}..{self.high}"
        if self.low is not None:
            return f">= {self.low}"
        if self.high is not None:
            return f"<= {self.high}"
        return ""

    def _choices_text(self) -> str:
        many = isinstance(self.default, (list, tuple))
        return ("some of " if many else "one of ") + " / ".join(self.choices)


S = Setting
_MODEL = "LMM: Hugging Face id, local directory, 'sim' (embedded, trained in simulation) or 'tiny' (random, for tests)"
_SAM = "SAM: vit_h / vit_l / vit_b (needs sam_checkpoint), a directory, 'sim' (embedded) or 'tiny' (random, for tests)"
_QOS = ("QoS of the image subscription: auto follows the publishers' reliability (reliable "
        "until one is seen); a best-effort reader loses most large frames of a reliable camera")
_TRANSPORT = "raw: sensor_msgs/Image on `image`; compressed: sensor_msgs/CompressedImage on `image/compressed`"
_DEVICE = "auto / cpu / cuda / cuda:N (N: the GPU's index)"
_CAMERAS = ("camera names; each camera X has X/image, X/depth, X/camera_info, X/proposals, "
            "X/proposals_started, X/command, X/response, X/overlay, X/markers ('' = the single "
            "camera on image, command, ...)")


def _device(value) -> str:
    """Checked by its form, so a typo is refused at once rather than by torch after the load."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"device must be {_DEVICE}, got {value!r}")
    return value


def _named(name: str) -> Callable[[Any], str]:
    """A model setting's check: an empty or blank name would be read as a path, the current
    directory, and fail (or load) there."""
    def check(value) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must name a model, got {value!r} (empty is no model: "
                             f"leave {name} out for its default)")
        return value
    return check


def _cameras(value) -> list[str]:
    camera_topics(list(value), "image")  # raises ValueError naming a bad list
    return list(value)


def _prompt(name: str) -> Callable[[Any], str]:
    """A prompt setting's check: one without a word once chat markup is removed (blank,
    zero-width or control characters, "<image>") would fail every request that asks it."""
    def check(value) -> str:
        from ros_ground.prompts import strip_chat_markup

        if not isinstance(value, str) or not any(c.isalnum() for c in strip_chat_markup(value)):
            raise ValueError(f"{name} must be a prompt (text with a word, besides chat markup), "
                             f"got {value!r}")
        return value
    return check


def _frame_id(value) -> str:
    """A frame_id tf2 can look up: non-empty, no whitespace, no leading '/' (tf2 refuses those
    names in every lookup, so rviz and transforms would drop the messages)."""
    if not isinstance(value, str) or not value or value.startswith("/") \
            or any(c.isspace() for c in value):
        raise ValueError(f"frame_id must be a tf2 frame name (non-empty, no spaces, no leading "
                         f"'/'), got {value!r}")
    return value


def _torch_threads(value) -> int:
    from ros_ground.cores import check_torch_threads

    return check_torch_threads(int(value))  # more threads than cores only slow every op

GROUNDING = (
    S("model", "sim", _MODEL, cli=True, convert=_named("model")),
    S("sam_model", "sim", _SAM, cli=True, convert=_named("sam_model")),
    S("sam_checkpoint", "", "path to official SAM weights (.pth loaded with weights_only, or .safetensors)", cli=True),
    S("device", "auto", _DEVICE, cli=True, convert=_device),
    S("dtype", "auto", "dtype of the LMM's weights",
      choices=("auto", "float32", "float16", "bfloat16"), cli=True),
    S("compile", "auto", "decode with a static KV cache and a torch.compile'd step (CUDA graphs on CUDA), attention capture included, for LLaVA / LLaVA-NeXT (Qwen2-VL's M-RoPE positions are not passed: auto decodes it eagerly, on is refused); auto: on for CUDA. The node compiles it while it configures (~30-60 s on a 2-core CPU the first time, cached by inductor after), for the default prompt plus max_new_tokens; longer requests decode eagerly",
      choices=("off", "auto", "on"), cli=True),
    S("image_fit", "auto", "how the frame is fitted to the LMM's square input: pad (to a square "
      "of the processor's mean colour, as LLaVA-1.5 was trained: the whole frame, smaller) / "
      "processor (its own fit: llava-hf's LLaVA-1.5 resize + centre crop never shows the model "
      "a 640x480 frame's outer 80 px each side, a 1280x720 frame's outer 280 px) / auto: pad "
      "where the processor would centre-crop, else the processor's (which sees the whole frame)",
      choices=IMAGE_FITS, cli=True),
    S("torch_threads", 0, "torch's CPU threads for each grounding request, at most the CPUs the process may use (0: torch's default, nothing ahead); fewer (e.g. CPUs - 1 with the LMM on the CPU): the CPUs left free compute SAM's embedding and the attention views' prompt while the answer is generated, then join the grounding", low=0, cli=True, convert=_torch_threads),
    S("trust_remote_code", False, "let model repositories run their own code; off unless you trust the weights (warned when on); read-only: give it at start (launch file, params file, -p), so nobody on the graph can turn it on", cli=True),
    S("allow_download", False, "fetch a Hugging Face model missing from the local cache; off: load from the cache or a directory only. Without a network the Hub client retries each file 5 times, so the load fails only after about 2.5 minutes: set HF_HUB_OFFLINE=1 where the Hub cannot be reached; read-only: give it at start (launch file, params file, -p)", cli=True),
    S("spacy_model", "en_core_web_sm", "spaCy pipeline used for noun phrases", cli=True,
      convert=_named("spacy_model")),
    S("mode", "auto", "point / entities (the frame's proposals, else the engine's own) / auto (entities when proposals for the frame exist, see proposal_max_age_s, or with the engine's own for a command about an object; else point)",
      True, choices=("point", "entities", "auto"), field="mode", cli=True),
    S("max_new_tokens", 64, "maximum generated tokens per request", True, low=1, field="max_new_tokens", cli=True),
    S("default_prompt", "Describe the scene.", "prompt used by the `describe` service", True,
      convert=_prompt("default_prompt")),
    S("region_prompt", "What is this?", "prompt asked about the entity under a point on "
      "`clicked_point`", True, convert=_prompt("region_prompt")),
    S("queue_size", 4, "requests that may wait while one runs; beyond it REJECTED_BUSY", True, low=0),
    S("max_image_pixels", 4096 * 4096, "larger images are rejected with BAD_INPUT", True, low=1),
    S("max_prompt_chars", 2000, "longer prompts are rejected with BAD_INPUT", True, low=1),
    S("image_qos", "auto", _QOS, choices=QOS_NAMES),
    S("image_transport", "raw", _TRANSPORT, choices=TRANSPORTS),
    S("depth_transport", "raw", "raw: sensor_msgs/Image (16UC1 mm or 32FC1 m) on `depth`; "
      "compressedDepth: image_transport's sensor_msgs/CompressedImage (PNG) on "
      "`depth/compressedDepth`, as a driver sends depth over Wi-Fi", choices=("raw", "compressedDepth")),
    S("cameras", [""], _CAMERAS, convert=_cameras),
    S("max_frame_age_s", 1.0, "a command whose camera's newest frame was received longer ago "
      "is answered NO_IMAGE (0: any age)", True, low=0.0),
    S("publish_overlay", True, "publish the overlay image (one colour per phrase) for rviz", True),
    S("proposal_tolerance_s", 0.05, "max stamp difference between a frame and its proposals", True, low=0.0),
    S("command_words", True, "entities mode: pick the command's target among the proposals with "
      "its colour words, spatial relation and superlative as well as its attention "
      "(ros_ground/command/refer.py); false needs min_target_score -2",
      True, field="command_words", cli=True),
    S("min_target_score", TARGET_SCORE_OFF, "entities mode, with entity_scoring tokens and command_words: a "
      "command's target is absent (no target, `absent` names its phrase) when no proposal its "
      "words allow has a retrieval score (a cosine) of at least this (never applied to a "
      "landmark); -2: never. The scale is the model's: set it from commands about absent objects "
      "(`ros-ground eval --prompt absent`; config/sim.yaml: 0.15 for the sim model). Above -2 it "
      "needs entity_scoring tokens and command_words true: with any other, configure and a change "
      "are refused, saying which to set first", True,
      low=TARGET_SCORE_OFF, high=1.0, field="min_target_score", cli=True),
    S("depth_tolerance_s", 0.05, "max stamp difference between a frame and its registered depth", True, low=0.0),
    S("proposal_max_age_s", 0.0, "auto mode, command's frame without proposals: ground on the "
      "newest camera frame that has them if at most this much older, or at most twice its "
      "proposal run older while it was received within max_frame_age_s (runs counted up to 5 s, "
      "so at most 10 s old, within tf2's default buffer). 0: that run's frame only, so a run "
      "longer than max_frame_age_s never pairs (a CPU's: each command about an object then "
      "proposes on its own frame, 2-5 s on a 2-core CPU); more for scenes that hold still", True, low=0.0),
    S("normalise_maps", True, "subtract the mean attention map over the output (ablation switch)", True,
      field="normalise", cli=True),
    S("phrase_tokens", "chunk", "tokens whose attention forms a phrase's map: the whole noun chunk or its root noun", True,
      choices=("chunk", "root"), field="phrase_tokens", cli=True),
    S("phrase_contrast", 0.0, "this share of the mean of the answer's other phrase maps is "
      "subtracted from each phrase's map (0: off; helps lists of objects in point mode, "
      "hurts 'the X is left of the Y')", True, low=0.0, high=1.0, field="phrase_contrast", cli=True),
    S("attention_views", list(FLIPS), "views of the image whose attention maps are averaged "
      "(those but identity are re-read in one batched teacher-forced LMM pass, each costing "
      "about a prefill's compute per answer; [identity] for the lowest latency)", True,
      choices=VIEWS, field="attention_views", cli=True, convert=check_views),
    S("multimask_choice", "iou", "iou (best predicted IoU) or a fixed SAM output index", True,
      choices=("iou", "0", "1", "2"), field="multimask_choice", cli=True, convert=_mask_index),
    S("point_zoom", True, "point mode and a region prompt's click: in a frame whose longer side "
      "is more than 1.25 times SAM's input (1280 px for a released SAM, 400 for the sim's), "
      "prompt each phrase's point "
      "on a window of the frame at SAM's input scale around it (small or far objects keep their "
      "pixels; an encoder pass per window, and the frame's only for a point whose window "
      "cuts its mask) / false: on the whole frame, shrunk", True,
      field="point_zoom", cli=True),
    S("entity_assignment", "exclusive", "exclusive (one entity per phrase, 'two mugs' two, "
      "none shared, later definite mentions excepted) / independent (each phrase merges the "
      "entities within entity_margin of its best)", True,
      choices=("exclusive", "independent"), field="entity_assignment", cli=True),
    S("entity_margin", 0.1, "entities within this share of the score range of the best are "
      "merged: every phrase's when independent, a plural's without a number ('the mugs') "
      "when exclusive", True, low=0.0, field="entity_margin", cli=True),
    S("entity_scoring", "attention", "how entities are scored against a phrase: attention (its map's correlation with each mask) / tokens (retrieval: its word embeddings against the entities' LMM tokens) / combined (their sum); "
      "attention and combined need min_target_score -2", True,
      choices=("attention", "tokens", "combined"), field="entity_scoring", cli=True),
    S("entity_token_window", 3.0, "tokens / combined scoring: each entity's token is pooled from "
      "the LMM's tokens of a 4:3 window around it this many times its box's longer side tall "
      "(a far object then covers as many patches as a near one; one vision pass per entity) / 0: "
      "from the whole frame's (one pass per frame); the sim model's retrieval head was trained "
      "for 3 and warns at another value", True, low=0.0, high=20.0, field="entity_token_window", cli=True,
      convert=_token_window),
    S("region_token", "pooled", "the region's token in a region prompt: pooled (its mask pooled from the LMM's image tokens, training-free) / encoder (plus the trained region encoder's vector from the region's crop; the sim model ships one)", True,
      choices=("pooled", "encoder"), field="region_token", cli=True),
    S("autostart", True, "configure and activate on start; false leaves it unconfigured; "
      "read when the node starts, so read-only: give it at start (launch file, params file, -p)"),
)

_AMG = {
    "points_per_side": ("grid of point prompts per side", dict(low=1)),
    "points_per_batch": ("prompts decoded per batch, fewer on large frames so their mask logits "
                         "stay within 512 MiB", dict(low=1)),
    "pred_iou_thresh": ("minimum predicted IoU", dict(low=0.0, high=1.0)),
    "stability_score_thresh": ("minimum stability score", dict(low=0.0, high=1.0)),
    "box_nms_thresh": ("box NMS IoU threshold", dict(low=0.0, high=1.0)),
    "min_mask_region_area": ("remove small islands/holes below this area", dict(low=0)),
    "crop_n_layers": ("also run on 4^k crops at layer k = 1..N, each at SAM's full input: finds "
                      "objects too small in the whole frame (a far or wide camera); N costs 1 + 4 "
                      "+ ... + 4^N encoder passes and point grids per frame (N=1: 5), holding SAM "
                      "from commands meanwhile", dict(low=0, high=3)),
    "proposal_zoom": ("also run on square crops of SAM's input size s, which SAM reads unscaled, "
                      "when the frame's longer side exceeds 1.25 s: a far object keeps its "
                      "pixels; one encoder pass and point grid per crop, about "
                      "(1 + (W - s) / (0.75 s - 40)) x (1 + (H - s) / (0.75 s - 40)) rounded up "
                      "(800x450 on the sim SAM: 8; 1920x1080 on a released SAM: 6)", {}),
    "max_zoom_crops": ("with proposal_zoom, at most this many crops a frame: where crops of s "
                       "px would be more, they grow until their count fits and SAM reads them "
                       "shrunk (a 4096x4096 frame on the sim SAM: 400 crops of 320 px, or 16 of "
                       "1346 px)", dict(low=2)),
    "zoom_magnification": ("with proposal_zoom, the crops are s / this px, so SAM reads them "
                           "this many times enlarged: off its training camera a SAM outlines "
                           "small objects better larger (the sim SAM at 1.6 on 800x450 ood "
                           "frames: 28 crops instead of 8, given max_zoom_crops >= 28)",
                           dict(low=1.0)),
}

PROPOSAL = (
    S("sam_model", "sim", _SAM, convert=_named("sam_model")),
    S("sam_checkpoint", "", "path to official SAM weights"),
    S("device", "auto", _DEVICE, convert=_device),
    S("image_qos", "auto", _QOS, choices=QOS_NAMES),
    S("image_transport", "raw", _TRANSPORT, choices=TRANSPORTS),
    S("cameras", [""], "camera names; each camera X has X/image, X/proposals and X/proposals_started",
      convert=_cameras),
    S("min_period_s", 1.0, "rest between the end of one proposal run and the next (leaves SAM to commands)", True, low=0.0),
    S("every_n_frames", 1, "consider only every N-th frame", True, low=1),
    S("max_image_pixels", 4096 * 4096, "larger images are skipped with a warning", True, low=1),
    *(S(name, PROPOSAL_DEFAULTS[name], f"SAM automatic masks: {text}", True, **bounds)
      for name, (text, bounds) in _AMG.items()),
    S("max_entities", 64, "keep at most this many proposals (highest score first), and at most "
      "2^30 / (H x W) (64 of a 4096x4096 frame): the grounding node takes no more", True, low=1,
      high=MAX_PROPOSALS),
    S("autostart", True, "configure and activate on start; false leaves it unconfigured; "
      "read when the node starts, so read-only: give it at start (launch file, params file, -p)"),
)

SIM_CAMERA = (
    S("seed", 0, "scene seed; changing it loads a new scene", True, low=0),
    S("rate_hz", 5.0, "publish rate of image_raw, camera_info and ground_truth", True, low=0.01),
    S("scene_set", "in", "in: the classic setting (`width` x `height`); randomised: camera, image "
      "size, light, table and paint drawn over the training ranges; ood: outside them "
      "(ros_ground.sim.ranges)", True, choices=("in", "randomised", "ood")),
    S("width", 320, "image width in pixels (scene_set in)", True, low=1, high=4096),
    S("height", 240, "image height in pixels (scene_set in)", True, low=1, high=4096),
    S("num_objects", 4, "objects on the table", True, low=2, high=6),
    S("objects", "", "comma-separated objects to place, e.g. `red mug, duck` (empty = random); "
      "those the table has no room for are left out, with a warning", True),
    S("frame_id", "sim_camera_optical_frame", "frame_id of the published messages, an optical frame (REP 103: x right, y down, z forward; a tf2 frame name: non-empty, no leading '/')", True,
      convert=_frame_id),
    S("bag", "", "replay this bag (rosbag2 directory, .db3/.mcap file, directory of .mcap files, or ROS 1 .bag) instead of simulating; read when the node starts"),
    S("bag_topic", "", "image topic to replay from `bag` (empty = the busiest Image or CompressedImage topic whose encoding carries colour (rgb, bgr, yuv, bayer), a mono one (IR, republished as mono8) only when there is none; depth and camera_info are replayed too); read when the node starts"),
    S("bag_depth_topic", "", "depth topic (16UC1, 32FC1, compressedDepth) to replay from `bag` with the image (empty = the one registered to it: the same frame_id, or `aligned` / `registered` in its name; else the busiest, which the grounding node refuses (no positions) when the bag says it is in another frame than the image); read when the node starts"),
)

ENGINE = tuple(s for s in GROUNDING if s.field)
AMG_NAMES = tuple(PROPOSAL_DEFAULTS)
MODES = next(s.choices for s in ENGINE if s.name == "mode")


def by_name(table: Iterable[Setting]) -> dict[str, Setting]:
    """The settings of `table` keyed by their names."""
    return {s.name: s for s in table}


def check(table: Iterable[Setting], values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every value of `values` that `table` declares; returns them in the engine's form.
    Raises ValueError naming the first setting whose value is not allowed."""
    declared = by_name(table)
    checked = {name: declared[name].check(value) for name, value in values.items()
               if name in declared}
    check_combination(checked)
    return checked


def check_combination(values: Mapping[str, Any]) -> None:
    """The rules between settings, for those of `values` (engine form) that hold both; ValueError
    naming both, and which to set first either way. min_target_score is a retrieval cosine:
    attention scores (and their sum with the cosine) tell no absent object from a present one
    (docs/MEASUREMENTS.md); it is read only where the command's words choose its target."""
    threshold = values.get("min_target_score", TARGET_SCORE_OFF)
    if threshold <= TARGET_SCORE_OFF:
        return
    scoring = values.get("entity_scoring", "tokens")
    if scoring != "tokens":
        raise ValueError(f"min_target_score {threshold} needs entity_scoring tokens (a retrieval "
                         f"cosine), not {scoring}: to use the threshold, set entity_scoring to "
                         "tokens first; to score otherwise, set min_target_score to "
                         f"{TARGET_SCORE_OFF} (off) first")
    if values.get("command_words") is False:
        raise ValueError(f"min_target_score {threshold} needs command_words true (the threshold is "
                         "part of the command's choice of target): set command_words to true "
                         f"first, or min_target_score to {TARGET_SCORE_OFF} (off) before turning it off")


def engine_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """EngineConfig keyword arguments from setting values keyed by setting name (missing ones
    keep their defaults)."""
    return {s.field: values[s.name] for s in ENGINE if s.name in values}
