"""Every node parameter in one table: name, default, description, and whether it can change live.

The nodes declare from these tables, the launch files and config/*.yaml are checked against them,
and the README's parameter table is checked against them, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import ParameterDescriptor

from ros_ground.sam import PROPOSAL_DEFAULTS
from ros_ground.views import FLIPS


@dataclass(frozen=True)
class Param:
    name: str
    default: object
    description: str
    dynamic: bool = False  # may change while active (thresholds); others need a reconfigure

    def descriptor(self) -> ParameterDescriptor:
        suffix = "" if self.dynamic else " (read at configure)"
        return ParameterDescriptor(description=self.description + suffix)


GROUNDING_PARAMS = (
    Param("model", "sim", "LMM: Hugging Face id, local directory, 'sim' (embedded, trained in simulation) or 'tiny' (random, for tests)"),
    Param("sam_model", "sim", "SAM: vit_h / vit_l / vit_b (needs sam_checkpoint), a directory, 'sim' (embedded) or 'tiny' (random, for tests)"),
    Param("sam_checkpoint", "", "path to official SAM weights (.pth loaded with weights_only, or .safetensors)"),
    Param("device", "auto", "auto / cpu / cuda / cuda:N"),
    Param("dtype", "auto", "auto / float32 / float16 / bfloat16"),
    Param("trust_remote_code", False, "let model repositories run their own code; off unless you trust the weights"),
    Param("allow_download", False, "fetch a Hugging Face model missing from the local cache; off: load from the cache or a directory only"),
    Param("spacy_model", "en_core_web_sm", "spaCy pipeline used for noun phrases"),
    Param("mode", "auto", "point / entities (the frame's proposals, else the engine's own) / auto (entities when proposals for the frame exist, see proposal_max_age_s, else point)", True),
    Param("max_new_tokens", 64, "maximum generated tokens per request", True),
    Param("default_prompt", "Describe the scene.", "prompt used by the `describe` service", True),
    Param("queue_size", 4, "requests that may wait while one runs; beyond it REJECTED_BUSY "
          "(each waiting `ask` goal holds one of the executor's 16 threads: keep it under 11)", True),
    Param("max_image_pixels", 4096 * 4096, "larger images are rejected with BAD_INPUT", True),
    Param("max_prompt_chars", 2000, "longer prompts are rejected with BAD_INPUT", True),
    Param("image_qos", "sensor_data", "QoS of the image subscription: sensor_data / reliable / best_effort"),
    Param("publish_overlay", True, "publish the overlay image (one colour per phrase) for rviz", True),
    Param("proposal_tolerance_s", 0.05, "max stamp difference between a frame and its proposals", True),
    Param("proposal_max_age_s", 0.0, "auto mode, command's frame without proposals: ground on the "
          "newest camera frame that has them if at most this much older (0: never; for scenes "
          "that hold still)", True),
    Param("normalise_maps", True, "subtract the mean attention map over the output (ablation switch)", True),
    Param("phrase_tokens", "chunk", "chunk / root: tokens whose attention forms a phrase's map", True),
    Param("phrase_contrast", 0.0, "0..1: this share of the mean of the answer's other phrase maps "
          "is subtracted from each phrase's map (0: off; helps lists of objects in point mode, "
          "hurts 'the X is left of the Y')", True),
    Param("attention_views", list(FLIPS), "views of the image whose attention maps are averaged: "
          "identity / hflip / vflip / rot180 (those but identity are re-read in one batched "
          "teacher-forced LMM pass, each costing about a prefill's compute per answer; "
          "[identity] for the lowest latency)", True),
    Param("multimask_choice", "iou", "iou (best predicted IoU) or 0 / 1 / 2 (fixed SAM output index)", True),
    Param("entity_assignment", "exclusive", "exclusive (one entity per phrase, 'two mugs' two, "
          "none shared, later definite mentions excepted) / independent (each phrase merges the "
          "entities within entity_margin of its best)", True),
    Param("entity_margin", 0.1, "entities within this share of the score range of the best are "
          "merged: every phrase's when independent, a plural's without a number ('the mugs') "
          "when exclusive", True),
    Param("autostart", True, "configure and activate on start; false leaves it unconfigured"),
)

PROPOSAL_PARAMS = (
    Param("sam_model", "sim", "SAM: vit_h / vit_l / vit_b (needs sam_checkpoint), a directory, 'sim' (embedded) or 'tiny' (random, for tests)"),
    Param("sam_checkpoint", "", "path to official SAM weights"),
    Param("device", "auto", "auto / cpu / cuda / cuda:N"),
    Param("image_qos", "sensor_data", "QoS of the image subscription: sensor_data / reliable / best_effort"),
    Param("min_period_s", 1.0, "rest between the end of one proposal run and the next (leaves SAM to commands)", True),
    Param("every_n_frames", 1, "consider only every N-th frame", True),
    Param("max_image_pixels", 4096 * 4096, "larger images are skipped with a warning", True),
    Param("points_per_side", PROPOSAL_DEFAULTS["points_per_side"], "SAM automatic masks: grid of point prompts per side", True),
    Param("points_per_batch", PROPOSAL_DEFAULTS["points_per_batch"], "SAM automatic masks: prompts decoded per batch", True),
    Param("pred_iou_thresh", PROPOSAL_DEFAULTS["pred_iou_thresh"], "SAM automatic masks: minimum predicted IoU", True),
    Param("stability_score_thresh", PROPOSAL_DEFAULTS["stability_score_thresh"], "SAM automatic masks: minimum stability score", True),
    Param("box_nms_thresh", PROPOSAL_DEFAULTS["box_nms_thresh"], "SAM automatic masks: box NMS IoU threshold", True),
    Param("min_mask_region_area", PROPOSAL_DEFAULTS["min_mask_region_area"], "SAM automatic masks: remove small islands/holes below this area", True),
    Param("max_entities", 64, "keep at most this many proposals (highest score first)", True),
    Param("autostart", True, "configure and activate on start; false leaves it unconfigured"),
)

SIM_CAMERA_PARAMS = (
    Param("seed", 0, "scene seed; changing it loads a new scene", True),
    Param("rate_hz", 5.0, "publish rate of image_raw, camera_info and ground_truth"),
    Param("width", 320, "image width in pixels", True),
    Param("height", 240, "image height in pixels", True),
    Param("num_objects", 4, "objects on the table (2-6)", True),
    Param("objects", "", "comma-separated categories to place (empty = random)", True),
    Param("frame_id", "sim_camera", "frame_id of the published messages"),
    Param("bag", "", "replay this rosbag2 file's image topic instead of simulating"),
    Param("bag_topic", "", "image topic to replay from `bag` (empty = the first sensor_msgs/Image topic)"),
)

AMG_PARAM_NAMES = ("points_per_side", "points_per_batch", "pred_iou_thresh",
                   "stability_score_thresh", "box_nms_thresh", "min_mask_region_area")


def declare(node, table) -> None:
    for p in table:
        node.declare_parameter(p.name, p.default, p.descriptor())


def values(node, table) -> dict:
    return {p.name: node.get_parameter(p.name).value for p in table}
