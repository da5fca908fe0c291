"""MODEL_CARD.md for the embedded models, from their training summaries and evaluation results."""

from __future__ import annotations

from pathlib import Path

from ros_ground.train.card_format import (
    base_line,
    data_ranges,
    files_table,
    loss_history,
    metric_table,
    minutes,
    read_json,
    scene_set_table,
    schedule_lines,
    seed_range,
    wall_time_line,
)


def lmm_card(model_dir: Path, results: dict) -> str:
    """Markdown for the LMM; `results` holds 'train' (train_lmm's summary), 'ablation',
    'referring', 'attention' and 'eval_cli' entries where available."""
    train = results.get("train", {})
    info = read_json(Path(model_dir) / "training.json")
    cfg, base = info.get("config", {}), info.get("base")
    arch = cfg.get("arch", {})
    params = train.get("parameters", {})
    ground = results.get("ground", {})
    defaults = results.get("ground_amg_defaults", {})
    attention = results.get("attention", {})
    grid = arch.get("image_size", 0) // max(1, arch.get("patch_size", 1))
    vision = train.get("vision") or {}
    len_tags = vision.get("tags", "n/a")
    lines = [
        "# sim_lmm: a small LLaVA trained on simulated tabletop scenes, text only",
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
    ]
    if base:
        bvision, bcfg = base.get("vision") or {}, base.get("config", {})
        lines.append(base_line(base, cfg.get("init_from"), (
            f"stage 1 {bvision.get('steps')} steps x batch "
            f"{bvision.get('config', {}).get('batch_size')} images at AdamW lr "
            f"{bvision.get('config', {}).get('lr')}, stage 2 {base.get('step')} steps x batch "
            f"{bcfg.get('batch_size')} at lr {bcfg.get('lr')}")))
    lines += [
        "- " + ("fine-tune " if base else "") + f"data: simulator scenes with {seed_range(cfg)}, "
        f"{data_ranges(cfg.get('scene_set'))}; evaluation seeds are 0 .. 199, never trained on",
        (f"- stage 1: {vision.get('steps')} steps x batch "
         f"{vision.get('config', {}).get('batch_size')} images, AdamW lr "
         f"{vision.get('config', {}).get('lr')}, {len_tags} caption words; "
         f"{minutes(vision.get('wall_s'))}") if vision or not base else
        "- stage 1: none in the fine-tune (the base's vision tower, frozen)",
        f"- stage 2: {train.get('steps')} steps x batch {cfg.get('batch_size')} = "
        f"{train.get('sequences')} sequences (one image + up to {cfg.get('max_turns')} turns: in "
        f"{cfg.get('describe_share')} of them the description first, under a random describe "
        "prompt, then sampled questions; otherwise questions only); vision tower frozen",
        f"- AdamW, lr {cfg.get('lr')} (warm-up {cfg.get('warmup')}, cosine to "
        f"{cfg.get('min_lr_ratio')}x), weight decay {cfg.get('weight_decay')}, clip "
        f"{cfg.get('grad_clip')}, seed {cfg.get('seed')}, {cfg.get('threads')} CPU thread(s)",
        *schedule_lines(info),
        wall_time_line(train, base, "both stages"),
        f"- stage-2 loss (smoothed) by step: {loss_history(train.get('history', []))}",
        f"- command: `{results.get('command', 'ros-ground train lmm')}`",
        "",
    ]
    if results.get("eval_cli"):
        lines += ["## `ros-ground eval` (held-out)", "", "```", results["eval_cli"].strip(),
                  "```", ""]
    if results.get("scene_set_runs"):
        lines += scene_set_table(results["scene_set_runs"])
    if ground:
        amg = ", ".join(f"{k}={v}" for k, v in ground.get("amg_params", {}).items())
        lines += [
            f"## Grounding on {ground['scenes']} held-out scenes (seeds {ground['seeds'][0]}.."
            f"{ground['seeds'][1]}), prompt \"Describe the scene.\", SAM: sim_sam",
            "",
            "GCG metrics as GLaMM computes them (ros_ground.evaluate.metrics: mask recall at IoU 0.5 and "
            "text similarity 0.5, mIoU, AP50) and point accuracy (the phrase's point inside the "
            "object it names: the map's peak in `point` mode, the hottest pixel of the selected "
            "mask in `auto`). Every row grounds the same generated text. `auto` selects "
            f"among automatic-mask-generator proposals ({amg}: the proposal node's defaults in "
            "the sim graph); `point` prompts SAM at the map's peak. The random-point baseline "
            "keeps the model's phrases but prompts SAM at a uniformly random point.",
            "",
            metric_table(ground["table"]),
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
            metric_table(defaults["table"]),
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
    lines += ["## Files", "", files_table(model_dir), ""]
    return "\n".join(lines)


def sam_card(model_dir: Path, results: dict) -> str:
    train = results.get("train", {})
    info = read_json(Path(model_dir) / "training.json")
    cfg, base = info.get("config", {}), info.get("base")
    arch = cfg.get("sam_config", read_json(Path(model_dir) / "sam_config.json"))
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
    ]
    if base:
        bcfg = base.get("config", {})
        lines.append(base_line(base, cfg.get("init_from"), (
            f"{base.get('step')} steps x {bcfg.get('batch_size')} images at AdamW lr "
            f"{bcfg.get('lr')} ({bcfg.get('refine_steps')} of them refining at lr "
            f"{bcfg.get('refine_lr')})")))
    lines += [
        "- " + ("fine-tune " if base else "") + f"data: simulator scenes with {seed_range(cfg)}, "
        f"{data_ranges(cfg.get('scene_set'))}; segments = each visible object, "
        "the table, the empty background (from the simulator's segmentation); horizontal flips",
        f"- prompts: {cfg.get('prompts')} single foreground points per image "
        f"({cfg.get('object_share')} on objects), uniform inside the segment",
        f"- loss: {cfg.get('focal_weight')} x focal + dice on the best of the 3 masks "
        "(at half resolution), MSE of the IoU head against each mask's actual IoU",
        f"- {train.get('steps')} steps x {cfg.get('batch_size')} images = {train.get('images')} "
        f"images; AdamW lr {cfg.get('lr')} (warm-up {cfg.get('warmup')}, cosine), seed "
        f"{cfg.get('seed')}, {cfg.get('threads')} CPU thread(s)",
        *schedule_lines(info),
        wall_time_line(train, base, "both phases"),
        f"- loss (smoothed) by step: {loss_history(train.get('history', []))}",
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
    if results.get("quality_by_set"):
        lines += ["By scene set (the same seeds; proposals with the node's settings; `ood` frames "
                  "are 800x450, shrunk 2.5 times to SAM's 320-px input):", "",
                  "| scene set | objects | median area | mIoU, innermost point | IoU >= 0.5 | "
                  "mIoU, random inside point | proposal recall |", "|---|---|---|---|---|---|---|"]
        for name, q in {"in": quality, **results["quality_by_set"]}.items():
            amg = next((row for key, row in q["amg"].items() if key.startswith("node")), {})
            lines.append(f"| {name} | {q['objects']} | {q['median_object_area_px']:.0f} px | "
                         f"{q['point_inner']['miou']:.3f} | {q['point_inner']['iou_ge_0.5']:.3f} | "
                         f"{q['point_random_inside']['miou']:.3f} | "
                         f"{amg.get('recall_iou_0.5', float('nan')):.3f} |")
        lines.append("")
    if results.get("notes"):
        lines += ["## Notes", "", results["notes"].strip(), ""]
    lines += ["## Files", "", files_table(model_dir), ""]
    return "\n".join(lines)


NOTES_DIR = Path(__file__).resolve().parent / "notes"


def write_cards(lmm_dir: Path, sam_dir: Path, results: dict) -> None:
    """Write the cards of the models evaluated in `results` (a card without evaluation numbers
    would replace a complete one); `notes/<lmm|sam>.md` beside this module adds a findings
    section."""
    evaluated = {"lmm": ("ground", "scene_set_runs"), "sam": ("quality",)}
    for name, directory, render in (("lmm", lmm_dir, lmm_card), ("sam", sam_dir, sam_card)):
        if not Path(directory).is_dir() or not set(evaluated[name]) & set(results.get(name, {})):
            continue
        part = dict(results.get(name, {}))
        notes = NOTES_DIR / f"{name}.md"
        if notes.is_file():
            part["notes"] = notes.read_text()
        (Path(directory) / "MODEL_CARD.md").write_text(render(directory, part))
