"""Train the embedded LMM from scratch on simulated scenes, with text supervision only.

Each training sequence is one image followed by a multi-turn conversation about it: the scene
description (for "Describe the scene." and similar prompts), the simulator's questions with their
answers, and "Where is X?" questions answered with a relation ("The red mug is left of the blue
cube."). The loss is next-token cross-entropy on the assistant's answer tokens only. Nothing here
reads a mask, a box, a point or a position: the data come from `data.text_record`, which only
holds texts and object names.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from ros_ground.train.configs import LMMTrainConfig, VisionPretrainConfig
from ros_ground.train.data import (
    SceneStore,
    batches,
    check_train_seeds,
    default_cache_dir,
)
from ros_ground.train.lmm_model import DESCRIBE_PROMPTS, build_lmm, count_parameters
from ros_ground.train.loop import (
    LoopState,
    base_record,
    check_resumable,
    resume_schedule,
    resumed_init_from,
    resumes,
    run_record,
    stop_message,
    train_steps,
)

RELATION_RE = re.compile(r"^the (.+?) (left of|right of|in front of|behind) (the .+)$")
SUPERLATIVE_RE = re.compile(
    r"^the (?:(leftmost|rightmost) (.+)|(.+) (closest to|farthest from) the camera)$")
IGNORE = -100


# --------------------------------------------------------------------------- conversations

def where_answer(record: dict, index: int, rng: np.random.Generator, asked: str = "") -> str:
    """An answer to "Where is <object index>?" composed from the scene's own referring texts.

    The object is named in full ("The red mug"), then placed by a relation the simulator stated
    for it ("is left of the blue cube"), preferably another than the question `asked` used; a
    superlative ("is the leftmost object") otherwise.
    """
    name = record["names"][index]
    relations, superlatives = [], []
    for expr, i in record["referring"]:
        if i != index:
            continue
        found = RELATION_RE.match(expr)
        if found:
            relations.append(f"{found.group(2)} {found.group(3)}")
            continue
        found = SUPERLATIVE_RE.match(expr)
        if found:
            if found.group(1):
                superlatives.append(f"the {found.group(1)} {found.group(2)}")
            else:
                superlatives.append(f"the {found.group(3)} {found.group(4)} the camera")
    other = [r for r in relations if not asked.endswith(r)]
    relations = other or relations
    if relations:
        return f"The {name} is {relations[int(rng.integers(len(relations)))]}."
    if superlatives:
        return f"The {name} is {superlatives[int(rng.integers(len(superlatives)))]}."
    return f"The {name} is on the table."


def listed_description(record: dict) -> str:
    """The simulator's object list in alphabetical order of the names, without its relation
    sentences: "A blue cube, a red mug and two yellow ducks on a wooden table."

    The simulator lists objects left to right, so its word order alone would teach positions;
    alphabetical order teaches none, and makes the list a question of *which* objects the image
    holds. Relation sentences are left to the "Where is X?" answers: in a description a model
    tends to repeat one of them instead of learning them, adding phrases that name no object it
    has found.
    """
    from ros_ground.sim.language import indefinite, join_list

    _, sep, _ = record["description"].partition(" on a wooden table.")
    if not sep or not record["names"]:
        return record["description"]
    counts = Counter(record["names"])
    text = join_list([indefinite(name, counts[name]) for name in sorted(counts)])
    return text[:1].upper() + text[1:] + sep


def global_questions(record: dict) -> list[tuple[str, str]]:
    """Questions about the whole image answered from the object names alone: which colours,
    which objects, how many. They need the image but no location, so they teach the vision
    tower colour and shape before the descriptions teach it where to look."""
    from ros_ground.sim.assets import CATEGORIES
    from ros_ground.sim.language import NUMBER_WORDS, indefinite, join_list

    names = record["names"]
    if not names:
        return [("How many objects are there?", "None.")]
    colours = sorted({n[: -len(c) - 1] for n in names for c in CATEGORIES
                      if n.endswith(" " + c) and len(n) > len(c)})
    categories: dict[str, int] = {}
    for n in names:
        category = next(c for c in sorted(CATEGORIES, key=len, reverse=True) if n.endswith(c))
        categories[category] = categories.get(category, 0) + 1
    objects = join_list([indefinite(c, k) for c, k in sorted(categories.items())])
    count = NUMBER_WORDS[len(names)] if len(names) < len(NUMBER_WORDS) else str(len(names))
    qa = [("Which objects do you see?", objects[:1].upper() + objects[1:] + "."),
          ("How many objects are there?", count[:1].upper() + count[1:] + ".")]
    if colours:
        text = join_list(colours)
        qa.append(("What colours do you see?", text[:1].upper() + text[1:] + "."))
    return qa


def conversation(record: dict, rng: np.random.Generator, max_turns: int = 3,
                 describe_share: float = 0.6) -> list[tuple[str, str]]:
    """(prompt, answer) turns about one scene.

    With probability `describe_share` the description comes first (its colour and category
    words can only come from the image), followed by up to max_turns-1 sampled questions;
    otherwise 1..max_turns questions alone. Later turns could copy earlier answers instead of
    looking, so the description never comes after a question.
    """
    pool = [tuple(qa) for qa in record["questions"]]
    for expr, i in record["referring"]:
        pool.append((f"Where is {expr}?", where_answer(record, i, rng, expr)))
    pool += global_questions(record)
    order = [pool[int(k)] for k in rng.permutation(len(pool))]
    if rng.random() < describe_share:
        prompt = DESCRIBE_PROMPTS[int(rng.integers(len(DESCRIBE_PROMPTS)))]
        take = int(rng.integers(0, max_turns))
        return [(prompt, listed_description(record)), *order[:take]]
    take = int(rng.integers(1, max_turns + 1))
    return order[:take]


class ConversationEncoder:
    """Token ids and labels of an image + multi-turn conversation, as the chat template lays it
    out: `<s>USER: <image>*N p1 ASSISTANT: a1</s>USER: p2 ASSISTANT: a2</s>...`.

    Labels keep the answers and their `</s>`; everything else is IGNORE.
    """

    def __init__(self, processor, num_image_tokens: int):
        self.tok = processor.tokenizer
        self.image_id = self.tok.convert_tokens_to_ids(processor.image_token)
        self.n_image = num_image_tokens
        self.user = self._ids("USER:")
        self.assistant = self._ids("ASSISTANT:")

    def _ids(self, text: str) -> list[int]:
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        if self.tok.unk_token_id in ids:
            unknown = [w for w, i in zip(text.split(), ids) if i == self.tok.unk_token_id]
            raise ValueError(f"training text has words outside the vocabulary: {text!r} {unknown}")
        return ids

    def encode(self, turns: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
        ids = [self.tok.bos_token_id]
        labels = [IGNORE]
        for k, (prompt, answer) in enumerate(turns):
            prefix = self.user + ([self.image_id] * self.n_image if k == 0 else [])
            prefix = prefix + self._ids(prompt) + self.assistant
            reply = self._ids(answer) + [self.tok.eos_token_id]
            ids += prefix + reply
            labels += [IGNORE] * len(prefix) + reply
        return ids, labels


def collate(encoded: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), length), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), length), dtype=torch.long)
    for b, (ids, lab) in enumerate(encoded):
        input_ids[b, : len(ids)] = torch.tensor(ids)
        labels[b, : len(lab)] = torch.tensor(lab)
        mask[b, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def make_batch(store: SceneStore, indices: list[int], processor, encoder: ConversationEncoder,
               step: int, cfg: LMMTrainConfig) -> dict[str, torch.Tensor]:
    """Images + conversations for scene indices; sampling depends only on (seed, step, scene)."""
    encoded, images = [], []
    for i in indices:
        rng = np.random.default_rng([cfg.seed, step, store.seed(i)])
        encoded.append(encoder.encode(conversation(store.texts(i), rng, cfg.max_turns,
                                                   cfg.describe_share)))
        images.append(store.rgb(i))
    batch = collate(encoded, processor.tokenizer.pad_token_id)
    batch["pixel_values"] = processor.image_processor(images=images, return_tensors="pt")[
        "pixel_values"]
    return batch


# --------------------------------------------------------------------------- training

def save_lmm(model, processor, out_dir: Path, extra: dict | None = None) -> Path:
    """save_pretrained (weights stored as float16; load_lmm upcasts on the CPU) + processor."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    model.save_pretrained(out_dir, state_dict=state, safe_serialization=True)
    processor.save_pretrained(out_dir)
    if extra is not None:
        (out_dir / "training.json").write_text(json.dumps(extra, indent=1) + "\n")
    return out_dir


def train_lmm(cfg: LMMTrainConfig, out_dir: Path, cache_dir: Path | None = None,
              state_path: Path | None = None, progress: bool | None = None,
              log_path: Path | None = None
              ) -> dict:
    """Train; returns a summary (losses, wall time, parameters). Resumes from `state_path`."""
    check_train_seeds(cfg.seed_start, cfg.scenes)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    store = SceneStore(cfg.seed_start, cfg.scenes, cache_dir or default_cache_dir(),
                       scene_set=cfg.scene_set)
    model, processor = build_lmm(cfg.arch, seed=cfg.seed)
    grid = cfg.arch.image_size // cfg.arch.patch_size
    encoder = ConversationEncoder(processor, grid * grid)
    state = None
    if state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)  # tensors and plain data
        cfg = replace(cfg, init_from=resumed_init_from(state, cfg.init_from, state_path))
        check_resumable(state, cfg.to_dict(), out_dir, state_path)
        model.load_state_dict(state["model"])
    elif cfg.init_from:
        from transformers import LlavaForConditionalGeneration

        start = LlavaForConditionalGeneration.from_pretrained(cfg.init_from, dtype=torch.float32)
        model.load_state_dict(start.state_dict())  # strict: the same architecture or an error
    resumed = resumes(state, cfg.to_dict())  # each resume's step and --steps, for training.json
    # a resumed run's base was read when it started (its --out may be its --init-from)
    base = state.get("base") if state else base_record(cfg.init_from)
    t_stage1 = time.perf_counter()
    vision_summary = state.get("vision") if state else None
    if cfg.vision_steps and vision_summary is None:
        from ros_ground.train.vision import pretrain_vision

        vision_cfg = VisionPretrainConfig(steps=cfg.vision_steps, seed=cfg.seed, lr=cfg.vision_lr)
        vision_summary = pretrain_vision(model, processor, store, vision_cfg, progress,
                                         time_limit_s=cfg.time_limit_min * 60)
    stage1_s = time.perf_counter() - t_stage1 if state is None else 0.0
    if cfg.freeze_vision:
        for p in model.model.vision_tower.parameters():
            p.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in trainable if not (p.ndim >= 2 and "embed" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)
    loop = LoopState(elapsed_s=stage1_s)
    if state is not None:
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        loop = LoopState(step=state["step"], elapsed_s=state["elapsed"], history=state["history"])
    # warm-up to cfg.lr, then a cosine down to cfg.min_lr_ratio of it at cfg.steps
    scheduler = resume_schedule(get_cosine_with_min_lr_schedule_with_warmup, optimizer, cfg.lr,
                                loop.step, num_warmup_steps=cfg.warmup,
                                num_training_steps=cfg.steps, min_lr_rate=cfg.min_lr_ratio)
    model.train()
    if cfg.freeze_vision:
        model.model.vision_tower.eval()
    batch_iter = batches(cfg.scenes, cfg.batch_size, cfg.seed)
    for _ in range(loop.step):  # deterministic data order: skip what was already trained on
        next(batch_iter)

    def step_fn(step: int) -> tuple[torch.Tensor, dict]:
        batch = make_batch(store, next(batch_iter), processor, encoder, step, cfg)
        return model(**batch).loss, {}

    def checkpoint(loop: LoopState, final: bool = False) -> None:
        # final: every step of both stages ran, not a stop at the time limit
        done = final and not loop.stopped_early and not (vision_summary or {}).get("stopped_early")
        summary = {"step": loop.step, "elapsed_s": round(loop.elapsed_s, 1), "final": done,
                   "stopped_early": final and not done, "config": cfg.to_dict(),
                   "history": loop.history, "vision": vision_summary, "base": base,
                   "resumed": resumed}
        save_lmm(model, processor, out_dir, summary)
        if state_path is not None:
            Path(state_path).parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": loop.step, "elapsed": loop.elapsed_s, "history": loop.history,
                        "vision": vision_summary, "base": base,
                        **run_record(cfg.to_dict(), out_dir, cfg.init_from, resumed)}, state_path)

    if state is None and cfg.vision_steps:
        checkpoint(loop)  # stage 1 done: an interruption resumes in stage 2
    train_steps(step_fn, optimizer, scheduler, model.parameters(), loop, cfg.steps,
                grad_clip=cfg.grad_clip, time_limit_s=cfg.time_limit_min * 60,
                checkpoint=checkpoint, checkpoint_every=cfg.checkpoint_every,
                log_path=log_path, desc="train lmm", progress=progress)
    model.eval()
    stage1_cut = bool((vision_summary or {}).get("stopped_early"))
    if stage1_cut:
        loop.stopped_early = True  # stage 1 ran out of time: stage 2 never started
    stop_message("train lmm" + (" (stage 1)" if stage1_cut else ""), loop, cfg.time_limit_min,
                 resumable=not stage1_cut)
    checkpoint(loop, final=True)
    return {"steps": loop.step, "wall_s": round(loop.elapsed_s, 1),
            "stopped_early": loop.stopped_early, "final_loss": loop.running.get("loss"),
            "parameters": count_parameters(model), "sequences": loop.step * cfg.batch_size,
            "history": loop.history, "vision": vision_summary}
