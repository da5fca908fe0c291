"""The evaluation loop: render each scene, answer each prompt once, ground the answer under
every variant of the engine's settings, and score it beside the baselines.

The engine answers each prompt once (`generate`) and grounds that answer under every variant
(`ground_generation`); the phrases are scored with GLaMM's GCG metrics (mask recall, mIoU),
AP50 and point accuracy (ros_ground.evaluate.metrics). Both baselines keep the first variant's phrases.
The random-point baseline prompts SAM at a uniformly random point instead of the attention
peak. Where the first variant chooses among SAM's whole-object proposals (mode entities, or
auto on a frame with proposals), where it looks is not all that differs: any proposal is a
whole object, and GLaMM's mIoU does not count unmatched masks, so a random choice already
scores a high mIoU. The random-proposal baseline gives each phrase a uniformly random
proposal of the same frame instead, so it differs from the model only in which proposal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ros_ground import ahead
from ros_ground.engine import GroundingEngine
from ros_ground.evaluate.metrics import (
    IOU_HIT,
    GTPhrase,
    ImageRecord,
    PredPhrase,
    TextSimilarity,
    evaluate_image,
)
from ros_ground.evaluate.naming import Naming, naming
from ros_ground.evaluate.progress import scene_progress
from ros_ground.evaluate.scenes import SIM_VOCABULARY, scene_for, scene_prompts, target_object
from ros_ground.evaluate.selection_metrics import selection_counts
from ros_ground.evaluate.targets import TargetRecord, target_record
from ros_ground.masks import iou
from ros_ground.results import GroundedPhrase, GroundingResult, Proposal
from ros_ground.sim.ranges import scene_set_ranges
from ros_ground.train.data import check_eval_seeds


@dataclass
class Answer:
    """One prompt's answer grounded under one variant, for callers that measure more."""

    scene: object  # ros_ground.sim.scene.Scene
    prompt: str
    gt: list[GTPhrase]
    variant: str
    result: GroundingResult
    record: ImageRecord
    proposals: list[Proposal] | None


@dataclass
class EvalRun:
    """Everything one evaluation produced, for the CLI and for model cards."""

    # variant name -> one record per answer, in scene and prompt order
    records: dict[str, list[ImageRecord]] = field(default_factory=dict)
    baseline: list[ImageRecord] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"render": 0.0, "engine": 0.0,
                                                                "metrics": 0.0})
    samples: list[dict] = field(default_factory=list)  # the first variant's answers
    # prompts about one object: variant name -> one TargetRecord per such prompt
    targets: dict[str, list[TargetRecord]] = field(default_factory=dict)
    baseline_targets: list[TargetRecord] = field(default_factory=list)
    # variant name -> one Naming per answer, in the order of `records`
    naming: dict[str, list[Naming]] = field(default_factory=dict)
    baseline_naming: list[Naming] = field(default_factory=list)
    # the random-proposal baseline, where the first variant's mode is entities or auto: one
    # record per answer (a random point's where the model did not choose among proposals)
    baseline_proposal: list[ImageRecord] = field(default_factory=list)
    baseline_proposal_targets: list[TargetRecord] = field(default_factory=list)
    baseline_proposal_naming: list[Naming] = field(default_factory=list)
    proposal_answers: int = 0  # answers the first variant grounded among proposals
    # variant name -> [correct, counted] entity choices (selection_metrics.selection_counts)
    selection: dict[str, list[int]] = field(default_factory=dict)

    @property
    def model(self) -> list[ImageRecord]:
        """The first variant's records."""
        return next(iter(self.records.values()), [])


def random_point_baseline(engine: GroundingEngine, image: np.ndarray,
                          phrases: Sequence[GroundedPhrase], rng: np.random.Generator,
                          image_key=None, zoom: bool | None = None) -> list[PredPhrase]:
    """The phrases, each segmented by SAM from a point drawn uniformly over `image` (HxWx3):
    the baseline a grounding method must beat, a point that ignores the text. `zoom`: SAM
    prompted as the model's point mode is (GroundingEngine.segment_point; None: the engine
    config's `point_zoom`), so on a large frame the two differ only in where the point is."""
    height, width = image.shape[:2]
    out = []
    for phrase in phrases:
        point = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        mask, _ = engine.segment_point(image, point, image_key=image_key, zoom=zoom)
        out.append(PredPhrase(phrase.text, mask, point))
    return out


def random_proposal_baseline(phrases: Sequence[GroundedPhrase], proposals: Sequence[Proposal],
                             rng: np.random.Generator) -> list[PredPhrase]:
    """The phrases, each given a proposal drawn uniformly from `proposals` (the frame's, which
    the model chose among), its point a uniformly drawn pixel centre (x, y) of that mask: the
    baseline for grounding among proposals, a choice that ignores the text. ValueError when
    `proposals` is empty."""
    if not proposals:
        raise ValueError("the random-proposal baseline needs at least one proposal")
    out = []
    for phrase in phrases:
        mask = proposals[int(rng.integers(len(proposals)))].mask
        ys, xs = np.nonzero(mask)
        pick = int(rng.integers(len(xs))) if len(xs) else None
        point = None if pick is None else (float(xs[pick]) + 0.5, float(ys[pick]) + 0.5)
        out.append(PredPhrase(phrase.text, mask, point))
    return out


def evaluate(engine: GroundingEngine, scenes: int, seed: int,
             variants: Mapping[str, dict] | None = None, prompt: str = "describe",
             amg_params: dict | None = None, dump: str | None = None, progress: bool | None = None,
             on_answer: Callable[[Answer], None] | None = None, width: int = 320,
             height: int = 240, scene_set: str = "in") -> EvalRun:
    """Evaluate `engine` on scenes with seeds seed .. seed+scenes-1, held-out evaluation seeds
    (ValueError otherwise: train.data.check_eval_seeds).

    `variants`: name -> changes to `engine.config` (EngineConfig fields); default one variant,
    "model", with the config as it is. `prompt`: "describe", "refer" or "both". Proposals come
    from SAM's automatic mask generator with `amg_params` (default the config's), once per
    scene, for variants in mode auto or entities. `dump`: a directory for an overlay and a
    record per answer. `progress`: a bar on stderr (None: a bar on a TTY, else a line a
    minute; evaluate.progress). `on_answer` sees every answer under every variant.
    `scene_set`: which scenes (SCENE_SETS, or `SET:AXIS,...`: sim.ranges.scene_set_ranges;
    `width` and `height` size the "in" set's images).
    """
    scene_set_ranges(scene_set)  # ValueError naming the sets before any work
    check_eval_seeds(seed, scenes)
    variants = dict(variants or {"model": {}})
    configs = {name: replace(engine.config, **change).validate()
               for name, change in variants.items()}
    amg_params = dict(engine.config.amg_params if amg_params is None else amg_params)
    needs_proposals = any(cfg.mode in ("entities", "auto") for cfg in configs.values())
    text_sim = TextSimilarity()
    rng = np.random.default_rng(seed)
    # its own stream, so the random-point baseline draws the same points with or without it
    proposal_rng = np.random.default_rng([seed, 1])
    picks = next(iter(configs.values())).mode in ("entities", "auto")
    zoom = next(iter(configs.values())).point_zoom  # the baseline's SAM prompted as the model's
    run = EvalRun(records={name: [] for name in variants},
                  targets={name: [] for name in variants},
                  naming={name: [] for name in variants})
    out_dir = Path(dump) if dump else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    # the torch threads an engine request holds (`torch_threads`; 0: torch's default), and every
    # usable core for the grounding stages when it leaves some spare, as `ground` does
    with ahead.threads(engine.torch_threads):
        for scene_seed in scene_progress(range(seed, seed + scenes), "eval", progress):
            t0 = time.perf_counter()
            scene = scene_for(scene_seed, scene_set, width, height)
            run.seconds["render"] += time.perf_counter() - t0
            key = ("eval", scene_set, scene_seed)  # seeds repeat across scene sets
            proposals = None
            for text, gt in scene_prompts(scene, prompt):
                t0 = time.perf_counter()
                if needs_proposals and proposals is None:
                    proposals = engine.sam.propose(scene.rgb, key=key, **amg_params)
                gen = engine.generate(scene.rgb, text, views=False)
                viewed = {}  # the answer's maps per set of attention views
                results = {}
                with ahead.joined(engine.torch_threads):  # as `ground` after its answer
                    for name, cfg in configs.items():
                        if cfg.attention_views not in viewed:
                            viewed[cfg.attention_views] = engine.read_views(scene.rgb, gen, cfg)
                        results[name] = engine.ground_generation(
                            scene.rgb, viewed[cfg.attention_views], cfg, image_key=key,
                            proposals=proposals if cfg.mode in ("entities", "auto") else None)
                first = next(iter(results.values()))
                baseline = random_point_baseline(engine, scene.rgb, first.phrases, rng, key, zoom)
                obj = target_object(scene, prompt)
                named = [GTPhrase(obj.name, obj.mask)] if obj is not None else []
                if obj is not None:  # the baseline's target: SAM at a random point
                    point = random_point_baseline(engine, scene.rgb, named, rng, key, zoom)[0]
                    run.baseline_targets.append(TargetRecord(
                        target_hit=iou(point.mask, obj.mask) >= IOU_HIT, answer_hit=False,
                        shared_hit=False))
                among = picks and first.mode == "entities" and bool(proposals)
                chosen = (random_proposal_baseline(first.phrases, proposals, proposal_rng)
                          if among else baseline)
                if picks and obj is not None:  # its target: a random proposal, as the model's
                    mask = (random_proposal_baseline(named, proposals, proposal_rng)[0].mask
                            if among else point.mask)
                    run.baseline_proposal_targets.append(TargetRecord(
                        target_hit=iou(mask, obj.mask) >= IOU_HIT, answer_hit=False,
                        shared_hit=False))
                run.seconds["engine"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                for name, result in results.items():
                    preds = [PredPhrase(p.text, p.mask, p.point) for p in result.phrases]
                    record = evaluate_image(preds, gt, text_sim, SIM_VOCABULARY)
                    run.records[name].append(record)
                    if obj is not None:
                        run.targets[name].append(
                            target_record(scene, obj, result, record.matches > 0))
                    run.naming[name].append(naming(preds, gt))
                    counts = selection_counts(result.phrases, gt, SIM_VOCABULARY)
                    total = run.selection.setdefault(name, [0, 0])
                    total[0], total[1] = total[0] + counts[0], total[1] + counts[1]
                    if on_answer:
                        on_answer(Answer(scene, text, gt, name, result, record, proposals))
                run.baseline.append(evaluate_image(baseline, gt, text_sim, SIM_VOCABULARY))
                run.baseline_naming.append(naming(baseline, gt))
                if picks:
                    run.proposal_answers += among
                    run.baseline_proposal.append(evaluate_image(chosen, gt, text_sim, SIM_VOCABULARY))
                    run.baseline_proposal_naming.append(naming(chosen, gt))
                run.seconds["metrics"] += time.perf_counter() - t0
                sample = {"seed": scene_seed, "prompt": text, "text": first.text,
                          "phrases": [p.text for p in first.phrases],
                          "gt": [g.text for g in gt], "matches": run.model[-1].matches}
                run.samples.append(sample)
                if out_dir:
                    _dump(out_dir, scene, first, sample, len(run.samples))
    return run


def _dump(out_dir: Path, scene, result, sample: dict, index: int) -> None:
    from ros_ground.image_files import save_png
    from ros_ground.overlay import draw_overlay

    stem = f"scene{sample['seed']:06d}_{index:04d}"
    save_png(out_dir / f"{stem}.png", draw_overlay(scene.rgb, result.phrases))
    (out_dir / f"{stem}.json").write_text(json.dumps({**sample, "result": result.to_json()}))
