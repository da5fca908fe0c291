"""The embedded engine on a GPU against the CPU (hand-run; docs/MEASUREMENTS.md, "On a GPU").

    .venv/bin/python -m bench.gpu_engine reference DIR   # on the CPU machine
    python -m bench.gpu_engine compare DIR               # on the GPU machine, DIR copied there

`reference` renders three scenes (one in-distribution, two ood; the GPU host needs no pybullet),
grounds three prompts in point and entities modes with config/sim.yaml's engine on the CPU
(float32) and saves the scenes, answers and masks in DIR. `compare` grounds the same with
device, dtype and compile `auto`, as config/default.yaml loads a robot's models (on CUDA:
bfloat16, CUDA graphs, SAM's embedding computed during generation), and prints how many
answers keep the CPU's text, target and landmark, the masks' IoU with the CPU's where the
text is the same, and the response times.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.breakdown import sim_params
from bench.common import log, median
from ros_ground.masks import iou

PROMPTS = ("Describe the scene.", "Pick up the red mug left of the tray.",
           "Where is the blue cube?")
SCENES = (("in", 9001), ("ood", 9002), ("ood", 9003))


def _scenes(out: Path) -> list[np.ndarray]:
    path = out / "scenes.npz"
    if not path.exists():
        from ros_ground.sim.scene import scene_in_set

        np.savez_compressed(path, *[scene_in_set(seed, name).rgb for name, seed in SCENES])
    data = np.load(path)
    return [data[f"arr_{i}"] for i in range(len(SCENES))]


def ground_all(engine, images: list[np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Every image x prompt x mode: the answers (text, phrases, target, landmark, ms) and the
    masks of answer and prompt phrases, keyed image_prompt_mode_phrase."""
    rows, masks = [], {}
    for i, image in enumerate(images):
        for j, prompt in enumerate(PROMPTS):
            for mode in ("point", "entities"):
                t0 = time.perf_counter()
                r = engine.ground(image, prompt, mode=mode, image_key=("scene", i))
                rows.append({"key": f"{i}_{j}_{mode}", "prompt": prompt, "mode": mode,
                             "text": r.text, "target": r.target, "landmark": r.landmark,
                             "ms": 1e3 * (time.perf_counter() - t0)})
                for k, p in enumerate([*r.phrases, *r.prompt_phrases]):
                    masks[f"{i}_{j}_{mode}_{k}"] = np.asarray(p.mask, bool)
    return rows, masks


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """masks.iou, except that two empty masks agree (1, where the metric scores 0)."""
    return 1.0 if not (a.any() or b.any()) else iou(a, b)


def compare(rows: list[dict], masks: dict, ref_rows: list[dict], ref_masks: dict) -> dict:
    """How far `ground_all`'s answers and masks are from the reference's: answers with the same
    text, with the same target and landmark, and the IoU of the masks of same-text answers (an
    answer with other words has other phrases, so its masks are not comparable)."""
    ref = {r["key"]: r for r in ref_rows}
    same_text = {r["key"] for r in rows if r["text"] == ref[r["key"]]["text"]}
    same_ref = sum((r["target"], r["landmark"]) == (ref[r["key"]]["target"],
                                                    ref[r["key"]]["landmark"]) for r in rows)
    ious = [_iou(mask, ref_masks[k]) for k, mask in masks.items()
            if k.rsplit("_", 1)[0] in same_text and k in ref_masks]
    return {"answers": len(rows), "same_text": len(same_text),
            "same_target_landmark": same_ref, "masks_compared": len(ious),
            "masks_iou_at_least_0.5": sum(iou >= 0.5 for iou in ious),
            "mask_iou_mean": float(np.mean(ious)) if ious else float("nan"),
            "response_ms_median": median([r["ms"] for r in rows[1:]]),
            "differs": [(r["prompt"], r["mode"], r["text"], ref[r["key"]]["text"])
                        for r in rows if r["key"] not in same_text]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("reference", "compare"))
    parser.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    from ros_ground.engine import build_engine_from_settings

    args.dir.mkdir(parents=True, exist_ok=True)
    images = _scenes(args.dir)
    values = sim_params()
    if args.what == "compare":
        values.update(device="auto", dtype="auto", compile="auto", torch_threads=0)
    t0 = time.perf_counter()
    engine = build_engine_from_settings(values)
    if engine.lmm.decoder is not None:  # as the node does while it configures
        engine.warm_up(values["default_prompt"], int(values["max_new_tokens"]))
    log(f"LMM on {engine.lmm.device} ({next(engine.lmm.model.parameters()).dtype}), SAM on "
        f"{engine.sam.device}, compiled {engine.lmm.decoder is not None}: loaded and warmed up "
        f"in {time.perf_counter() - t0:.1f} s")
    rows, masks = ground_all(engine, images)
    if args.what == "reference":
        (args.dir / "reference.json").write_text(json.dumps(rows, indent=1))
        np.savez_compressed(args.dir / "reference_masks.npz", **masks)
        return 0
    ref_rows = json.loads((args.dir / "reference.json").read_text())
    result = compare(rows, masks, ref_rows, dict(np.load(args.dir / "reference_masks.npz")))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
