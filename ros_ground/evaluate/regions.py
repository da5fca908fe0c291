"""`ros-ground eval --prompt region`: does the model name the region it is asked about?

For every ground-truth object of a scene, the region prompt ("What is this?") is asked with
the object's mask as the region (`GroundingEngine.generate_region`) and once per scene without
any region (the baseline: what the model says unprompted by a region). An answer names the
region when the first category word it says (`Vocabulary.parse`) is the object's category;
`region_naming_color_accuracy` also needs the colour word before it to be the object's.
"""

from __future__ import annotations

import time

from ros_ground.evaluate.progress import scene_progress
from ros_ground.metrics import Vocabulary
from ros_ground.regions import Region

REGION_PROMPT = "What is this?"


def names(text: str, obj, vocabulary: Vocabulary) -> tuple[bool, bool]:
    """(category named, category and colour named) by `text` for a simulated object."""
    categories, color = vocabulary.parse(text)
    category = obj.category in categories
    return category, category and (obj.color is None or color == obj.color)


def evaluate_regions(engine, scenes: int, seed: int, vocabulary: Vocabulary,
                     prompt: str = REGION_PROMPT, progress: bool | None = None,
                     width: int = 320, height: int = 240, scene_set: str = "in") -> dict:
    """Region naming accuracy (category, and with colour) on scenes seed .. seed+scenes-1 of
    `scene_set` (sim.ranges.scene_set_ranges; `width` x `height` for "in" only), beside the
    no-region baseline, and the seconds per answer of each. ValueError for seeds outside the
    held-out evaluation seeds (train.data.check_eval_seeds)."""
    from ros_ground.sim.scene import scene_in_set
    from ros_ground.train.data import check_eval_seeds

    check_eval_seeds(seed, scenes)
    counts = {"region": [0, 0], "region_color": [0, 0], "baseline": [0, 0],
              "baseline_color": [0, 0]}
    seconds = {"region": 0.0, "baseline": 0.0}
    samples = []
    for scene_seed in scene_progress(range(seed, seed + scenes), "eval regions", progress):
        scene = scene_in_set(scene_seed, scene_set, width, height)
        key = ("eval-region", scene_set, scene_seed)  # seeds repeat across scene sets
        t0 = time.perf_counter()
        plain = engine.generate(scene.rgb, prompt, views=False).text
        seconds["baseline"] += time.perf_counter() - t0
        for obj in scene.objects:
            t0 = time.perf_counter()
            text = engine.generate_region(scene.rgb, prompt, Region(obj.mask, "mask"), key).text
            seconds["region"] += time.perf_counter() - t0
            for name, answer in (("region", text), ("baseline", plain)):
                category, color = names(answer, obj, vocabulary)
                counts[name][0] += category
                counts[name][1] += 1
                counts[name + "_color"][0] += color
                counts[name + "_color"][1] += 1
            if len(samples) < 20:
                samples.append({"seed": scene_seed, "object": obj.name, "answer": text,
                                "baseline": plain})
    rate = {k: round(c / n, 4) if n else None for k, (c, n) in counts.items()}
    answers = counts["region"][1]
    return {
        "scenes": scenes, "regions": answers, "prompt": prompt, "seed": seed, "scene_set": scene_set,
        "region_naming_accuracy": rate["region"],
        "region_naming_color_accuracy": rate["region_color"],
        "region_naming_baseline": rate["baseline"],
        "region_naming_color_baseline": rate["baseline_color"],
        "seconds_per_answer": {"region": round(seconds["region"] / max(answers, 1), 4),
                               "baseline": round(seconds["baseline"] / max(scenes, 1), 4)},
        "samples": samples,
    }
