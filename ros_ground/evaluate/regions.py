"""`ros-ground eval --prompt region`: does the model name the region it is asked about?

For every ground-truth object of a scene, the region prompt ("What is this?") is asked with
the object's mask as the region (`GroundingEngine.generate_region`) and once per scene without
any region (the baseline: what the model says unprompted by a region). An answer names the
region when the first category word it says (`Vocabulary.parse`) is the object's category;
`region_naming_color_accuracy` also needs the colour word before it to be the object's.
`region_mask_accuracy` is the share of region answers whose first grounded phrase (the one
naming what "this" is) has a mask of IoU >= 0.5 with the object's: where the answer says the
region is, as a robot or rviz reads it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from ros_ground.evaluate.metrics import IOU_HIT, Vocabulary
from ros_ground.evaluate.progress import scene_progress
from ros_ground.masks import iou
from ros_ground.regions import Region

REGION_PROMPT = "What is this?"


def names(text: str, obj, vocabulary: Vocabulary) -> tuple[bool, bool]:
    """(category named, category and colour named) by `text` for a simulated object."""
    categories, color = vocabulary.parse(text)
    category = obj.category in categories
    return category, category and (obj.color is None or color == obj.color)


def evaluate_regions(engine, scenes: int, seed: int, vocabulary: Vocabulary,
                     prompt: str = REGION_PROMPT, progress: bool | None = None,
                     width: int = 320, height: int = 240, scene_set: str = "in",
                     dump: str | Path | None = None) -> dict:
    """Region naming accuracy (category, and with colour) on scenes seed .. seed+scenes-1 of
    `scene_set` (sim.ranges.scene_set_ranges; `width` x `height` for "in" only), beside the
    no-region baseline, and the seconds per answer of each. `dump`: a directory (created) for
    each scene's picture, every object's region outlined and labelled with the answer about it,
    and its record (`_dump`). ValueError for seeds outside the held-out evaluation seeds
    (train.data.check_eval_seeds)."""
    from ros_ground.sim.scene import scene_in_set
    from ros_ground.train.data import check_eval_seeds

    check_eval_seeds(seed, scenes)
    counts = {"region": [0, 0], "region_color": [0, 0], "region_mask": [0, 0], "baseline": [0, 0],
              "baseline_color": [0, 0]}
    seconds = {"region": 0.0, "baseline": 0.0}
    samples = []
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
    for scene_seed in scene_progress(range(seed, seed + scenes), "eval regions", progress):
        scene = scene_in_set(scene_seed, scene_set, width, height)
        key = ("eval-region", scene_set, scene_seed)  # seeds repeat across scene sets
        t0 = time.perf_counter()
        plain = engine.generate(scene.rgb, prompt, views=False).text
        seconds["baseline"] += time.perf_counter() - t0
        said = []  # (object, its region's answer, what that answer names of it)
        for obj in scene.objects:
            t0 = time.perf_counter()
            result = engine.ground_region(scene.rgb, prompt, Region(obj.mask, "mask"), image_key=key)
            seconds["region"] += time.perf_counter() - t0
            text = result.text
            grounded = [p for p in result.phrases if p.mask is not None and p.mask.any()]
            counts["region_mask"][0] += bool(grounded) and iou(grounded[0].mask, obj.mask) >= IOU_HIT
            counts["region_mask"][1] += 1
            said.append((obj, text, names(text, obj, vocabulary)))
            for name, (category, color) in (("region", said[-1][2]),
                                            ("baseline", names(plain, obj, vocabulary))):
                counts[name][0] += category
                counts[name][1] += 1
                counts[name + "_color"][0] += color
                counts[name + "_color"][1] += 1
            if len(samples) < 20:
                samples.append({"seed": scene_seed, "object": obj.name, "answer": text,
                                "baseline": plain})
        if dump:
            _dump(Path(dump), scene, scene_set, prompt, plain, said)
    rate = {k: round(c / n, 4) if n else None for k, (c, n) in counts.items()}
    answers = counts["region"][1]
    return {
        "scenes": scenes, "regions": answers, "prompt": prompt, "seed": seed, "scene_set": scene_set,
        "region_naming_accuracy": rate["region"],
        "region_naming_color_accuracy": rate["region_color"],
        "region_mask_accuracy": rate["region_mask"],
        "region_naming_baseline": rate["baseline"],
        "region_naming_color_baseline": rate["baseline_color"],
        "seconds_per_answer": {"region": round(seconds["region"] / max(answers, 1), 4),
                               "baseline": round(seconds["baseline"] / max(scenes, 1), 4)},
        "samples": samples,
    }


def _dump(out_dir: Path, scene, scene_set: str, prompt: str, baseline: str, said: list) -> None:
    """scene{seed}_regions.png (each region outlined, labelled with the answer about it) and
    scene{seed}_regions.json (the prompt, the baseline answer, and per object its name, box,
    answer and whether the answer names it)."""
    from ros_ground.image_files import save_png
    from ros_ground.overlay import draw_overlay

    stem = f"scene{scene.seed:06d}_regions"
    shown = [SimpleNamespace(mask=obj.mask, point=None, text=text) for obj, text, _ in said]
    save_png(out_dir / f"{stem}.png", draw_overlay(scene.rgb, shown))
    regions = [{"object": obj.name, "bbox": [int(v) for v in obj.bbox], "answer": text,
                "names_category": bool(category), "names_color": bool(color)}
               for obj, text, (category, color) in said]
    record = {"seed": int(scene.seed), "scene_set": scene_set, "prompt": prompt,
              "baseline": baseline, "regions": regions}
    (out_dir / f"{stem}.json").write_text(json.dumps(record))
