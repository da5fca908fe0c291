"""Held-out measurements of the embedded models, for their model cards.

* `sam_quality`: point-prompt IoU per object and automatic-mask-generator recall.
* `grounding_eval`: ros_ground.evaluate's GCG metrics (mask recall, mIoU, AP50, point accuracy)
  for several engine settings from one generation per prompt, beside the random-point baseline
  (modes point / auto, flipped attention views or the image alone, attention normalisation on /
  off, phrase contrast, exclusive vs independent entity choice, whole-chunk vs root-noun maps),
  plus the referring-expression table.
* `attention_analysis`: which tokens and which layers/heads carry localised attention (eager
  attention on the generated sequence; the hit rate is the share of maps whose peak falls inside
  the object the phrase names).

Seeds are evaluation seeds (default 0..199), disjoint from training (>= 100000).
"""

from __future__ import annotations

import time

import numpy as np
from tqdm import tqdm

from ros_ground.evaluate.metrics import IOU_HIT, aggregate
from ros_ground.sam import PROPOSAL_DEFAULTS
from ros_ground.train.data import check_eval_seeds


def _inner_point(mask: np.ndarray) -> tuple[float, float]:
    """The mask pixel farthest from its boundary, as SAM (x, y) pixel coordinates."""
    import cv2

    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(col), float(row)


NODE_AMG = {"node (16 pts, iou 0.7, stability 0.8)": {
    "points_per_side": 16, "pred_iou_thresh": 0.7, "stability_score_thresh": 0.8}}


def sam_quality(segmenter, scenes: int = 100, seed: int = 0, amg_settings: dict | None = None,
                progress: bool | None = None, scene_set: str = "in") -> dict:
    """Point-prompt IoU per object (inner point and a random inside point) and, per AMG
    setting, the share of objects with a proposal of IoU >= 0.5 (and the mean best IoU), on
    the evaluation scenes of `scene_set` (evaluate.SCENE_SETS)."""
    from ros_ground.evaluate.scenes import scene_for
    from ros_ground.masks import iou

    check_eval_seeds(seed, scenes)
    amg_settings = amg_settings if amg_settings is not None else {
        "AMG_DEFAULTS (32 pts, iou 0.88, stability 0.95)": {}, **NODE_AMG}
    rng = np.random.default_rng(seed)
    inner, random_in, areas = [], [], []
    amg = {name: {"best": [], "count": [], "seconds": 0.0} for name in amg_settings}
    t_point = 0.0
    for s in tqdm(range(seed, seed + scenes), desc="sam eval", unit="scene",
                  disable=None if progress is None else not progress):
        scene = scene_for(s, scene_set)
        key = ("sam-eval", scene_set, s)
        t0 = time.perf_counter()
        for obj in scene.objects:
            mask = np.asarray(obj.mask, dtype=bool)
            areas.append(int(mask.sum()))
            pred, _ = segmenter.segment_point(scene.rgb, _inner_point(mask), key=key)
            inner.append(iou(pred, mask))
            rows, cols = np.nonzero(mask)
            j = int(rng.integers(len(rows)))
            pred, _ = segmenter.segment_point(scene.rgb, (float(cols[j]), float(rows[j])), key=key)
            random_in.append(iou(pred, mask))
        t_point += time.perf_counter() - t0
        for name, params in amg_settings.items():
            t0 = time.perf_counter()
            proposals = segmenter.propose(scene.rgb, key=key, **params)
            amg[name]["seconds"] += time.perf_counter() - t0
            amg[name]["count"].append(len(proposals))
            for obj in scene.objects:
                best = max((iou(p.mask, obj.mask) for p in proposals), default=0.0)
                amg[name]["best"].append(best)
    inner, random_in = np.array(inner), np.array(random_in)
    out = {
        "scenes": scenes, "scene_set": scene_set, "seeds": [seed, seed + scenes - 1],
        "objects": len(inner),
        "median_object_area_px": float(np.median(areas)) if areas else 0.0,
        "point_inner": {"miou": float(inner.mean()), "iou_ge_0.5": float((inner >= IOU_HIT).mean()),
                        "iou_ge_0.75": float((inner >= 0.75).mean())},
        "point_random_inside": {"miou": float(random_in.mean()),
                                "iou_ge_0.5": float((random_in >= IOU_HIT).mean())},
        "point_ms_per_prompt": 1e3 * t_point / max(1, 2 * len(inner)),
        "amg": {},
    }
    for name, record in amg.items():
        best = np.array(record["best"])
        out["amg"][name] = {"recall_iou_0.5": float((best >= IOU_HIT).mean()),
                            "mean_best_iou": float(best.mean()),
                            "proposals_per_scene": float(np.mean(record["count"])),
                            "seconds_per_scene": record["seconds"] / scenes}
    return out


# --------------------------------------------------------------------------- grounding

ABLATIONS: dict[str, dict] = {
    "auto (entities from proposals), whole-chunk maps": {},
    "point, whole-chunk maps": {"mode": "point"},
    "auto, each phrase chooses alone, margin 0.1": {
        "entity_assignment": "independent"},
    "auto, phrase contrast 0.5": {"phrase_contrast": 0.5},
    "point, phrase contrast 0.5": {"mode": "point", "phrase_contrast": 0.5},
    "auto, phrase contrast 1.0": {"phrase_contrast": 1.0},
    "auto, the image alone (no flipped views)": {"attention_views": ("identity",)},
    "point, the image alone (no flipped views)": {"mode": "point",
                                                  "attention_views": ("identity",)},
    "auto, no normalisation": {"normalise": False},
    "point, no normalisation": {"mode": "point", "normalise": False},
    "auto, root-noun maps": {"phrase_tokens": "root"},
    "point, root-noun maps": {"mode": "point", "phrase_tokens": "root"},
}


def grounding_eval(engine, scenes: int = 200, seed: int = 0, variants: dict | None = None,
                   amg_params: dict | None = None, refer: bool = True,
                   progress: bool | None = None) -> dict:
    """GCG metrics for each engine variant beside the random-point baseline, and the
    referring-expression table: ros_ground.evaluate's protocol, one generation per prompt.

    Proposals come from SAM's automatic mask generator with `amg_params` (default
    PROPOSAL_DEFAULTS, as the proposal node uses). `entities` equals `auto` whenever proposals
    exist, so it has no row of its own.
    """
    from ros_ground.evaluate import evaluate

    check_eval_seeds(seed, scenes)
    variants = variants or ABLATIONS
    amg_params = dict(PROPOSAL_DEFAULTS if amg_params is None else amg_params)
    first = next(iter(variants))
    samples = []

    def keep_sample(answer) -> None:
        if answer.variant == first:
            samples.append({"seed": answer.scene.seed, "text": answer.result.text,
                            "gt": answer.scene.description, "proposals": len(answer.proposals or [])})

    run = evaluate(engine, scenes, seed, variants, "describe", amg_params, progress=progress,
                   on_answer=keep_sample)
    table = {name: aggregate(records).to_json(extended=True)
             for name, records in run.records.items()}
    table["random point baseline"] = aggregate(run.baseline).to_json(extended=True)
    out = {"scenes": scenes, "seeds": [seed, seed + scenes - 1], "amg_params": amg_params,
           "table": table,
           "seconds_per_scene": {k: v / max(1, scenes) for k, v in run.seconds.items()},
           "samples": samples[:12]}
    if refer:
        out["referring"] = _referring(engine, scenes, seed, amg_params, progress)
    return out


def _referring(engine, scenes: int, seed: int, amg_params: dict, progress: bool | None) -> dict:
    """"Where is X?" in modes auto and point: does a phrase, and the phrase naming X, find X?"""
    from ros_ground.evaluate import SIM_VOCABULARY, evaluate
    from ros_ground.evaluate.metrics import match_phrase
    from ros_ground.masks import iou

    rows: dict[str, list] = {"auto": [], "point": []}
    kinds: dict[str, list] = {}
    samples = []

    def measure(answer) -> None:
        expression, index = answer.scene.referring[0]
        target = answer.scene.objects[index]
        names = [o.name for o in answer.scene.objects]
        phrases = answer.result.phrases
        ious = [iou(p.mask, target.mask) for p in phrases]
        named = [iou(p.mask, target.mask) for p in phrases
                 if index in match_phrase(p.text, names, SIM_VOCABULARY)]
        row = (bool(ious) and max(ious) >= IOU_HIT, bool(named) and named[0] >= IOU_HIT, bool(named))
        rows[answer.variant].append(row)
        if answer.variant == "auto":
            kinds.setdefault(_expression_kind(expression), []).append(row[1])
            samples.append({"seed": answer.scene.seed, "prompt": answer.prompt,
                            "text": answer.result.text, "target": target.name})

    run = evaluate(engine, scenes, seed, {mode: {"mode": mode} for mode in rows}, "refer",
                   amg_params, progress=progress, on_answer=measure)
    out = {"questions": len(rows["auto"])}
    for mode, mode_rows in rows.items():
        arr = np.array(mode_rows, dtype=float).reshape(-1, 3)
        out[mode] = {"any_phrase_iou_ge_0.5": float(arr[:, 0].mean()),
                     "named_phrase_iou_ge_0.5": float(arr[:, 1].mean()),
                     "answer_names_target": float(arr[:, 2].mean()),
                     "gcg": aggregate(run.records[mode]).to_json()}
    out["auto_by_expression_kind"] = {
        k: {"n": len(v), "named_phrase_iou_ge_0.5": float(np.mean(v))}
        for k, v in sorted(kinds.items())}
    out["samples"] = samples[:8]
    return out


def _expression_kind(expression: str) -> str:
    words = expression.split()
    if any(w in words for w in ("leftmost", "rightmost", "closest", "farthest")):
        return "superlative"
    if any(r in expression for r in (" left of ", " right of ", " in front of ", " behind ")):
        return "relation"
    return "name"


# --------------------------------------------------------------------------- attention

def attention_analysis(model_dir: str, scenes: int = 60, seed: int = 0,
                       progress: bool | None = None) -> dict:
    """Where the localised attention is: per token role, per layer and per head.

    For each generated token inside a noun chunk that names exactly one GT object, the attention
    row of the query that emitted it (eager attention, teacher-forced on the generated sequence)
    is cut to the image tokens, normalised like the engine does (minus the mean over the output
    steps), upsampled, and scored by whether its peak lies inside the object's mask.
    """
    import torch

    from ros_ground.evaluate import SIM_VOCABULARY
    from ros_ground.evaluate.metrics import match_phrase, point_in_mask
    from ros_ground.geometry import upsample_map
    from ros_ground.lmm import load_lmm
    from ros_ground.maps import contrast_phrase_maps, peak_point
    from ros_ground.phrases import load_spacy, noun_phrases, token_char_spans, tokens_in_span
    from ros_ground.sim.language import COLORS
    from ros_ground.sim.scene import generate_scene

    check_eval_seeds(seed, scenes)
    adapter = load_lmm(model_dir, device="cpu", dtype="float32")
    model = adapter.model
    nlp = load_spacy()
    layers = model.config.text_config.num_hidden_layers
    heads = model.config.text_config.num_attention_heads
    hits: dict[str, list[bool]] = {}

    def add(name: str, value: bool) -> None:
        hits.setdefault(name, []).append(bool(value))

    for s in tqdm(range(seed, seed + scenes), desc="attention", unit="scene",
                  disable=None if progress is None else not progress):
        scene = generate_scene(s)
        gen = adapter.generate(scene.rgb, "Describe the scene.", max_new_tokens=64)
        if not gen.token_ids:
            continue
        inputs, layout, geometry = adapter.prepare(scene.rgb, "Describe the scene.")
        prompt_len = int(inputs["input_ids"].shape[1])
        ids = torch.cat([inputs["input_ids"], torch.tensor([gen.token_ids])], dim=1)
        model.set_attn_implementation({"text_config": "eager"})
        try:
            with torch.no_grad():
                out = model(input_ids=ids, pixel_values=inputs["pixel_values"],
                            attention_mask=torch.ones_like(ids), output_attentions=True)
        finally:
            from ros_ground.lmm.attention import install_capture

            install_capture(model)
        positions = layout.positions
        steps = len(gen.token_ids)
        # [layers, heads, steps, image tokens]: row prompt_len-1+t emits generated token t
        rows = torch.stack([a[0][:, prompt_len - 1: prompt_len - 1 + steps][..., positions]
                            for a in out.attentions]).float().numpy()
        rows = rows.reshape(layers, heads, steps, layout.grid_h, layout.grid_w)
        rows = rows - rows.mean(axis=2, keepdims=True)  # the engine's normalisation
        mean_map = rows.mean(axis=(0, 1))
        spans = token_char_spans(adapter.decode, gen.token_ids)
        names = [o.name for o in scene.objects]
        chunks = [(chunk, tokens_in_span(spans, chunk.char_start, chunk.char_end))
                  for chunk in noun_phrases(nlp, gen.text)]
        chunks = [(chunk, toks) for chunk, toks in chunks if toks]
        chunk_maps = np.stack([mean_map[t].mean(0) for _, t in chunks]) if chunks else []
        contrasted = contrast_phrase_maps(chunk_maps, 0.5) if chunks else []
        for (chunk, toks), chunk_map, contrasted_map in zip(chunks, chunk_maps, contrasted):
            target = match_phrase(chunk.text, names, SIM_VOCABULARY)
            if len(target) != 1:
                continue
            mask = scene.objects[target[0]].mask
            for i in toks:
                a, b = spans[i]
                word = gen.text[a:b].strip().lower()
                if a < chunk.root_end and b > chunk.root_start:
                    role = "root noun"
                elif word in COLORS:
                    role = "colour"
                elif word in ("a", "an", "the"):
                    role = "article"
                elif word.isdigit() or word in ("two", "three", "four", "five", "six"):
                    role = "number"
                else:
                    role = "other noun word"  # e.g. 'teddy' of 'teddy bear'

                def hit(grid: np.ndarray, geometry=geometry, mask=mask) -> bool:
                    return point_in_mask(peak_point(upsample_map(grid, geometry)), mask)

                add(f"token:{role}", hit(mean_map[i]))
                for layer in range(layers):
                    add(f"layer{layer}:{role}", hit(rows[layer, :, i].mean(axis=0)))
                    if role == "root noun":
                        for head in range(heads):
                            add(f"L{layer}H{head}:root noun", hit(rows[layer, head, i]))
            root = [i for i in toks if spans[i][0] < chunk.root_end
                    and spans[i][1] > chunk.root_start]
            if root:
                add("phrase:root",
                    point_in_mask(peak_point(upsample_map(mean_map[root].mean(0), geometry)), mask))
            add("phrase:chunk (engine default)",
                point_in_mask(peak_point(upsample_map(chunk_map, geometry)), mask))
            add("phrase:chunk, less half the other phrases' mean",
                point_in_mask(peak_point(upsample_map(contrasted_map, geometry)), mask))
            for layer in range(layers):
                if root:
                    add(f"phrase:root, layer {layer} only", point_in_mask(peak_point(
                        upsample_map(rows[layer][:, root].mean(axis=(0, 1)), geometry)), mask))
    return {"scenes": scenes, "seeds": [seed, seed + scenes - 1],
            "hit_rate": {k: {"n": len(v), "rate": float(np.mean(v))} for k, v in sorted(hits.items())}}
