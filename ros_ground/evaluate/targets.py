"""Prompts about one object X scored as commands: is the target right, and where is it in 3-D?

`TargetRecord` per command: `target_accuracy`, the share whose target phrase
(GroundingResult.target) has a mask with IoU >= 0.5 with X; `answer_route_accuracy`, the share
where an answer phrase naming X has one (today's route: the model must say X);
`target_accuracy_shared_answer`, the target taking the mask of an answer phrase with the same
words when there is one; `target_position_error_m`, the median distance of the target's 3-D
position (spatial.locate on the scene's depth) from X's visible-surface centroid on commands
whose target mask is right, and `target_position_error_gt_m` the same from X's true mask (the
geometry alone); `answer_position_error_m`, the same for answer phrases with IoU >= 0.5 with an
object. The random-point baseline's target is SAM's mask at a random point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ros_ground.evaluate.metrics import IOU_HIT
from ros_ground.masks import iou
from ros_ground.results import GroundingResult

DETERMINERS = frozenset(("the", "a", "an"))


@dataclass
class TargetRecord:
    """How one command about object X was grounded (see the module docstring); errors in
    metres, NaN when not measured."""

    target_hit: bool
    answer_hit: bool
    shared_hit: bool
    position_error: float = float("nan")
    position_error_gt: float = float("nan")
    answer_position_errors: list[float] = field(default_factory=list)


def _error(mask: np.ndarray, depth: np.ndarray, k: np.ndarray, centroid) -> float:
    from ros_ground.spatial import locate

    found = locate(mask, depth, k)
    if not found.depth_points:
        return float("nan")
    return float(np.linalg.norm(found.position - np.asarray(centroid, dtype=np.float64)))


def _words(text: str) -> set[str]:
    return set(text.lower().split()) - DETERMINERS


def target_record(scene, obj, result: GroundingResult, answer_hit: bool) -> TargetRecord:
    """Score one command's result against X (`obj`, a SimObject of `scene`)."""
    depth = scene.sensor_depth()  # as sim_camera_node sends it
    target = (result.prompt_phrases[result.target]
              if 0 <= result.target < len(result.prompt_phrases) else None)
    hit = target is not None and iou(target.mask, obj.mask) >= IOU_HIT
    shared = target
    if target is not None:
        same = [p for p in result.phrases if _words(p.text) == _words(target.text) and p.mask.any()]
        shared = same[0] if same else target
    record = TargetRecord(
        target_hit=hit, answer_hit=answer_hit,
        shared_hit=shared is not None and iou(shared.mask, obj.mask) >= IOU_HIT,
        position_error=_error(target.mask, depth, scene.k, obj.centroid) if hit else float("nan"),
        position_error_gt=_error(obj.mask, depth, scene.k, obj.centroid))
    for phrase in result.phrases:
        ious = [iou(phrase.mask, o.mask) for o in scene.objects]
        if ious and max(ious) >= IOU_HIT:
            best = scene.objects[int(np.argmax(ious))]
            record.answer_position_errors.append(_error(phrase.mask, depth, scene.k, best.centroid))
    return record


def target_metrics(records: Sequence[TargetRecord]) -> dict:
    """The command metrics of the module docstring over `records` (empty: {})."""
    if not records:
        return {}

    def median(values) -> float | None:
        values = [v for v in values if np.isfinite(v)]
        return round(float(np.median(values)), 5) if values else None

    return {
        "commands": len(records),
        "target_accuracy": float(np.mean([r.target_hit for r in records])),
        "answer_route_accuracy": float(np.mean([r.answer_hit for r in records])),
        "target_accuracy_shared_answer": float(np.mean([r.shared_hit for r in records])),
        "target_position_error_m": median(r.position_error for r in records),
        "target_position_error_gt_m": median(r.position_error_gt for r in records),
        "answer_position_error_m": median(e for r in records for e in r.answer_position_errors),
    }
