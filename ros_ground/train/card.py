"""MODEL_CARD.md for the embedded models, from their training summaries and evaluation results."""

from __future__ import annotations

import json
from pathlib import Path

METRICS = ("mask_recall", "miou", "ap50", "point_accuracy")


def _read(path: Path) -> dict:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


def _files(directory: Path) -> str:
    rows = []
    for f in sorted(Path(directory).iterdir()):
        if f.is_file() and f.name != "MODEL_CARD.md":
            rows.append(f"| `{f.name}` | {f.stat().st_size / 1e6:.2f} MB |")
    return "| file | size |\n|---|---|\n" + "\n".join(rows)


def data_ranges(scene_set: str | None) -> str:
    """One line on the settings the training scenes were drawn from (sim.ranges), for a card."""
    from ros_ground.sim.ranges import CLASSIC_RANGES, TRAINING_RANGES

    classic = "the classic setting (sim.ranges.CLASSIC_RANGES: 320x240, 2-6 objects)"
    if scene_set not in ("randomised", "mixed"):
        return classic
    r, c = TRAINING_RANGES, CLASSIC_RANGES
    lead = "" if scene_set == "randomised" else f"even seeds {classic}, odd seeds "

    def span(pair, unit="", digits=3):
        return f"{pair[0]:.{digits}g} to {pair[1]:.{digits}g}{unit}"

    return (f"{lead}domain-randomised over sim.ranges.TRAINING_RANGES (the classic setting lies inside "
            f"them): camera {span(r.distance, ' m')} away (classic {span(c.distance, ' m')}), "
            f"{span(r.elevation_deg, ' deg')} up, azimuth {span(r.azimuth_deg, ' deg')}, "
            f"look-at offset up to {r.target_offset[1]:g} m, vertical FOV "
            f"{span(r.fov_deg, ' deg')}; images {r.width[0]}-{r.width[1]} px wide, aspect "
            f"{span(r.aspect)} (resized to the cache's 320x240 for SAM, by the processor "
            f"for the LMM); light direction and ambient {span(r.light_ambient)} / diffuse "
            f"{span(r.light_diffuse)}; table texture one of {len(r.table_textures)} "
            f"({', '.join(r.table_textures)}), tint {span(r.table_tint)}; "
            f"{r.num_objects[0]}-{r.num_objects[1]} objects, scale {span(r.object_scale)}, "
            f"paint channels jittered by up to {r.color_jitter:g}")


def _metric_table(table: dict) -> str:
    lines = ["| setting | mask recall | mIoU | AP50 | point accuracy | phrases predicted |",
             "|---|---|---|---|---|---|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in METRICS)
                     + f" | {row.get('pred_phrases', '')} |")
    return "\n".join(lines)


def _history(history: list[dict], key: str = "loss", every: int = 6) -> str:
    if not history:
        return "n/a"
    picked = history[::every] + ([history[-1]] if (len(history) - 1) % every else [])
    return ", ".join(f"{h['step']}: {h[key]:.3f}" for h in picked)


def lmm_card(model_dir: Path, results: dict) -> str:
    """Markdown for the LMM; `results` holds 'train' (train_lmm's summary), 'ablation',
    'referring', 'attention' and 'eval_cli' entries where available."""
    train = results.get("train", {})
    cfg = _read(Path(model_dir) / "training.json").get("config", {})
    arch = cfg.get("arch", {})
    params = train.get("parameters", {})
    ground = results.get("ground", {})
    defaults = results.get("ground_amg_defaults", {})
    attention = results.get("attention", {})
    grid = arch.get("image_size", 0) // max(1, arch.get("patch_size", 1))
    vision = train.get("vision") or {}
    len_tags = vision.get("tags", "n/a")
    lines = [
        "# sim_lmm: a small LLaVA trained from scratch on simulated tabletop scenes, text only",
        "",
        "The embedded default LMM of `ros_ground` (`--model sim`, `model: sim`). A real "
        "`LlavaForConditionalGeneration` (CLIP-ViT vision tower, 2-layer GELU projector, Llama "
        "decoder), loaded by `load_lmm(\"sim\")` through the same `from_pretrained` path as any "
        "local checkpoint directory. It exists so that the package runs end to end without "
        "downloading weights, and as a small reproduction of attend-and-segment's claim: "
        "**pixel grounding emerges in an LMM trained without grounding supervision**.",
        "",
        "## No grounding supervision",
        "",
        "Training used images and texts only, in two stages like LLaVA's (a text-supervised "
        "vision tower, then the language model on top of it, tower frozen):",
        "",
        "1. **vision tower** (stage 1): which words of the caption the image contains (colours, "
        "categories, coloured objects such as \"red mug\"; multi-label), scored per patch and "
        "pooled to one image-level score per word by a smooth maximum over the patches "
        "(multiple-instance learning: the caption says *that* a red mug is in the image, never "
        "*where*). The scoring head is discarded.",
        "2. **projector + language model** (stage 2): the simulator's scene descriptions "
        "(their object list in alphabetical order rather than the simulator's left-to-right "
        "order, so that word order carries no position; relation sentences left to the "
        "\"Where is X?\" answers), its "
        "questions with answers, \"Where is X?\" answers composed from its referring expressions "
        "(\"The red mug is left of the blue cube.\") and which-colours / which-objects / "
        "how-many answers; next-token cross-entropy on the answer tokens only.",
        "",
        "No mask, box, point, position or depth of any object is read by the LMM training code "
        "(`ros_ground/train/data.py: text_record` is all it sees besides the pixels; checked by "
        "`tests/test_train.py` with objects whose geometry raises on access). Masks are used "
        "only to *evaluate* grounding, below.",
        "",
        "## Architecture",
        "",
        f"- vision tower: CLIP ViT, {arch.get('image_size')} px input (the whole 320x240 frame "
        f"squash-resized, no centre crop: geometry fit `resize`), patch {arch.get('patch_size')}"
        f" -> {grid}x{grid} image tokens, {arch.get('vision_layers')} layers x "
        f"{arch.get('vision_hidden')} wide, {arch.get('vision_heads')} heads; features of layer "
        f"{arch.get('vision_feature_layer')}",
        f"- language model: Llama, {arch.get('text_layers')} layers x {arch.get('text_hidden')} "
        f"wide, {arch.get('text_heads')} heads ({arch.get('text_kv_heads')} KV heads), MLP "
        f"{arch.get('text_mlp')}",
        "- tokenizer: word-level (`tokenizers` WordLevel, lower-cased); colour and category are "
        "separate tokens (\"red\", \"mug\"), a multi-word category (\"soccer ball\", "
        "\"teddy bears\") is one token, every other word or punctuation run one token; "
        "LLaVA-1.5 chat format",
        f"- parameters: {params.get('total', 0):,} (vision {params.get('vision_tower', 0):,}, "
        f"projector {params.get('multi_modal_projector', 0):,}, language model "
        f"{params.get('language_model', 0):,}, head {params.get('lm_head', 0):,})",
        "- weights stored as float16 safetensors; `load_lmm` upcasts to float32 on the CPU",
        "",
        "## Training",
        "",
        f"- data: simulator scenes with seeds {cfg.get('seed_start')} .. "
        f"{cfg.get('seed_start', 0) + cfg.get('scenes', 0) - 1} ({cfg.get('scenes')} scenes), "
        f"{data_ranges(cfg.get('scene_set'))}; evaluation seeds are 0 .. 199, never trained on",
        f"- stage 1: {vision.get('steps')} steps x batch "
        f"{vision.get('config', {}).get('batch_size')} images, AdamW lr "
        f"{vision.get('config', {}).get('lr')}, {len_tags} caption words; "
        f"{_minutes(vision.get('wall_s'))}",
        f"- stage 2: {train.get('steps')} steps x batch {cfg.get('batch_size')} = "
        f"{train.get('sequences')} sequences (one image + up to {cfg.get('max_turns')} turns: in "
        f"{cfg.get('describe_share')} of them the description first, under a random describe "
        "prompt, then sampled questions; otherwise questions only); vision tower frozen",
        f"- AdamW, lr {cfg.get('lr')} (warm-up {cfg.get('warmup')}, cosine to "
        f"{cfg.get('min_lr_ratio')}x), weight decay {cfg.get('weight_decay')}, clip "
        f"{cfg.get('grad_clip')}, seed {cfg.get('seed')}, {cfg.get('threads')} CPU thread(s)",
        f"- wall time, both stages: **{_minutes(train.get('wall_s'))}** on the project's 2-core "
        "CPU machine (shared with other jobs)" + (" - stopped early at the time limit" if
                                                  train.get("stopped_early") else ""),
        f"- stage-2 loss (smoothed) by step: {_history(train.get('history', []))}",
        f"- command: `{results.get('command', 'ros-ground train lmm')}`",
        "",
    ]
    if results.get("eval_cli"):
        lines += ["## `ros-ground eval` (held-out)", "", "```", results["eval_cli"].strip(),
                  "```", ""]
    if ground:
        amg = ", ".join(f"{k}={v}" for k, v in ground.get("amg_params", {}).items())
        lines += [
            f"## Grounding on {ground['scenes']} held-out scenes (seeds {ground['seeds'][0]}.."
            f"{ground['seeds'][1]}), prompt \"Describe the scene.\", SAM: sim_sam",
            "",
            "GCG metrics as GLaMM computes them (ros_ground.metrics: mask recall at IoU 0.5 and "
            "text similarity 0.5, mIoU, AP50) and point accuracy (the phrase's point inside the "
            "object it names: the map's peak in `point` mode, the hottest pixel of the selected "
            "mask in `auto`). Every row grounds the same generated text. `auto` selects "
            f"among automatic-mask-generator proposals ({amg}: the proposal node's defaults in "
            "the sim graph); `point` prompts SAM at the map's peak. The random-point baseline "
            "keeps the model's phrases but prompts SAM at a uniformly random point.",
            "",
            _metric_table(ground["table"]),
            "",
        ]
    if defaults:
        lines += [
            f"With SAM's stock automatic-mask-generator settings (32x32 points, predicted IoU >= "
            f"0.88, stability >= 0.95; {defaults['scenes']} scenes) this small SAM's object "
            "masks do not pass the filters (see sim_sam's card), so `auto` selects among "
            "table/background proposals; hence the package's own proposal settings "
            "(`ros_ground.sam.PROPOSAL_DEFAULTS`):",
            "",
            _metric_table(defaults["table"]),
            "",
        ]
    refer = ground.get("referring", {}) if ground else {}
    if refer:
        lines += [
            f"## Referring expressions ({refer['questions']} scenes, \"Where is X?\" with the "
            "scene's first referring expression, as `ros-ground eval --prompt refer` asks)",
            "",
            "| mode | a phrase's mask has IoU >= 0.5 with X | the phrase naming X has IoU >= 0.5 "
            "| answer names X | GCG recall / mIoU / point acc. against X |",
            "|---|---|---|---|---|",
        ]
        for mode in ("auto", "point"):
            row = refer[mode]
            g = row["gcg"]
            lines.append(f"| {mode} | {row['any_phrase_iou_ge_0.5']:.3f} | "
                         f"{row['named_phrase_iou_ge_0.5']:.3f} | {row['answer_names_target']:.3f} "
                         f"| {g['mask_recall']:.3f} / {g['miou']:.3f} / {g['point_accuracy']:.3f} |")
        lines += ["", "By kind of expression (auto, the phrase naming X has IoU >= 0.5):", ""]
        for kind, row in refer.get("auto_by_expression_kind", {}).items():
            lines.append(f"- {kind}: {row['named_phrase_iou_ge_0.5']:.3f} (n={row['n']})")
        lines.append("")
    if ground and ground.get("samples"):
        lines += ["## Sample outputs (held-out seeds)", ""]
        for sample in ground["samples"][:4]:
            lines += [f"- seed {sample['seed']}: \"{sample['text']}\"  ",
                      f"  simulator's description: \"{sample['gt']}\""]
        for sample in refer.get("samples", [])[:3]:
            lines += [f"- seed {sample['seed']}: \"{sample['prompt']}\" -> \"{sample['text']}\""
                      f" (X = {sample['target']})"]
        lines.append("")
    if attention:
        rates = attention["hit_rate"]
        lines += [
            f"## Which tokens and layers localise ({attention['scenes']} scenes)",
            "",
            "Share of normalised attention maps whose peak falls inside the object the phrase "
            "names (eager attention on the generated description).",
            "",
            "| map | n | hit rate |", "|---|---|---|",
        ]
        for key, row in rates.items():
            if key.startswith(("token:", "phrase:", "layer")):
                lines.append(f"| {key} | {row['n']} | {row['rate']:.3f} |")
        heads = {k: v for k, v in rates.items() if k.startswith("L") and "H" in k}
        if heads:
            best = sorted(heads.items(), key=lambda kv: -kv[1]["rate"])[:5]
            lines += ["", "Best single heads for the root noun: "
                      + ", ".join(f"{k.split(':')[0]} {v['rate']:.3f}" for k, v in best)]
        lines.append("")
    if results.get("notes"):
        lines += ["## Notes", "", results["notes"].strip(), ""]
    lines += ["## Files", "", _files(model_dir), ""]
    return "\n".join(lines)


def sam_card(model_dir: Path, results: dict) -> str:
    train = results.get("train", {})
    info = _read(Path(model_dir) / "training.json")
    cfg = info.get("config", {})
    arch = cfg.get("sam_config", _read(Path(model_dir) / "sam_config.json"))
    quality = results.get("quality", {})
    grid = arch.get("img_size", 0) // max(1, arch.get("patch_size", 1))
    lines = [
        "# sim_sam: a small Segment-Anything model trained on simulated tabletop scenes",
        "",
        "The embedded default SAM of `ros_ground` (`--sam-model sim`, `sam_model: sim`): "
        "segment-anything's own `Sam` (ImageEncoderViT, PromptEncoder, MaskDecoder with a "
        "TwoWayTransformer), small, loaded by `load_sam(\"sim\")` from `model.safetensors` + "
        "`sam_config.json` and run through the same `SamPredictor` / "
        "`SamAutomaticMaskGenerator` code as the released checkpoints.",
        "",
        "## Architecture",
        "",
        f"- image encoder: ViT, {arch.get('img_size')} px (a 320x240 frame is not rescaled, only "
        f"padded), patch {arch.get('patch_size')} -> {grid}x{grid} embedding, "
        f"{arch.get('encoder_depth')} layers x {arch.get('encoder_embed_dim')} wide, "
        f"{arch.get('encoder_num_heads')} heads, window {arch.get('window_size')}, global "
        f"attention in layers {arch.get('encoder_global_attn_indexes')}",
        f"- prompt encoder / mask decoder: {arch.get('prompt_embed_dim')}-d, two-way transformer "
        f"depth {arch.get('decoder_depth')}, 3 multimask outputs + IoU head; low-res masks "
        f"{4 * grid}x{4 * grid}",
        f"- parameters: {train.get('parameters', 0):,} (float32 safetensors)",
        "",
        "## Training",
        "",
        f"- data: simulator scenes with seeds {cfg.get('seed_start')} .. "
        f"{cfg.get('seed_start', 0) + cfg.get('scenes', 0) - 1}, "
        f"{data_ranges(cfg.get('scene_set'))}; segments = each visible object, "
        "the table, the empty background (from the simulator's segmentation); horizontal flips",
        f"- prompts: {cfg.get('prompts')} single foreground points per image "
        f"({cfg.get('object_share')} on objects), uniform inside the segment",
        f"- loss: {cfg.get('focal_weight')} x focal + dice on the best of the 3 masks "
        "(at half resolution), MSE of the IoU head against each mask's actual IoU",
        f"- {train.get('steps')} steps x {cfg.get('batch_size')} images = {train.get('images')} "
        f"images; AdamW lr {cfg.get('lr')} (warm-up {cfg.get('warmup')}, cosine), seed "
        f"{cfg.get('seed')}, {cfg.get('threads')} CPU thread(s)",
        f"- wall time: **{_minutes(train.get('wall_s'))}** on the project's 2-core CPU machine "
        "(shared with other jobs)" + (" - stopped early at the time limit" if
                                      train.get("stopped_early") else ""),
        f"- loss (smoothed) by step: {_history(train.get('history', []))}",
        f"- command: `{results.get('command', 'ros-ground train sam')}`",
        "",
    ]
    if quality:
        pi, pr = quality["point_inner"], quality["point_random_inside"]
        lines += [
            f"## Held-out quality ({quality['scenes']} scenes, seeds {quality['seeds'][0]}.."
            f"{quality['seeds'][1]}, {quality['objects']} objects, median area "
            f"{quality['median_object_area_px']:.0f} px)",
            "",
            "| prompt | mIoU | IoU >= 0.5 |", "|---|---|---|",
            f"| one point at the object's innermost pixel | {pi['miou']:.3f} | "
            f"{pi['iou_ge_0.5']:.3f} |",
            f"| one random point inside the object | {pr['miou']:.3f} | {pr['iou_ge_0.5']:.3f} |",
            "",
            f"{quality['point_ms_per_prompt']:.1f} ms per point prompt (embedding cached).",
            "",
            "Automatic mask generator: share of objects with a proposal of IoU >= 0.5.",
            "",
            "| settings | recall | mean best IoU | proposals / scene | s / scene |",
            "|---|---|---|---|---|",
        ]
        for name, row in quality["amg"].items():
            lines.append(f"| {name} | {row['recall_iou_0.5']:.3f} | {row['mean_best_iou']:.3f} | "
                         f"{row['proposals_per_scene']:.1f} | {row['seconds_per_scene']:.2f} |")
        lines.append("")
    if results.get("notes"):
        lines += ["## Notes", "", results["notes"].strip(), ""]
    lines += ["## Files", "", _files(model_dir), ""]
    return "\n".join(lines)


NOTES_DIR = Path(__file__).resolve().parent / "notes"


def write_cards(lmm_dir: Path, sam_dir: Path, results: dict) -> None:
    """Write the cards of the models evaluated in `results` (a card without evaluation numbers
    would replace a complete one); `notes/<lmm|sam>.md` beside this module adds a findings
    section."""
    evaluated = {"lmm": "ground", "sam": "quality"}
    for name, directory, render in (("lmm", lmm_dir, lmm_card), ("sam", sam_dir, sam_card)):
        if not Path(directory).is_dir() or evaluated[name] not in results.get(name, {}):
            continue
        part = dict(results.get(name, {}))
        notes = NOTES_DIR / f"{name}.md"
        if notes.is_file():
            part["notes"] = notes.read_text()
        (Path(directory) / "MODEL_CARD.md").write_text(render(directory, part))
