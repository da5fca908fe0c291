"""Stage 1 of the embedded LMM: pretrain its CLIP vision tower on caption words, image-level.

LLaVA starts from a CLIP vision tower that was pretrained with text supervision (image-caption
contrast) and keeps it frozen. A randomly initialised tower trained only through the language
model's next-token loss learns far too slowly for a CPU budget (measured: after 1200 steps the
loss with shuffled images equals the loss with the right ones). So, like CLIP, the tower is
first trained on text alone: from the caption's words, which colours, categories and coloured
objects ("red mug") the image contains, as multi-label targets of an image-level score.

The image-level score of a word is a smooth maximum (log-mean-exp) over the patch tokens of a
per-patch linear score: the caption never says *where* a word is, only *that* it is in the
image (multiple-instance learning). Nothing here reads a mask, box, point or position: the
targets come from `data.text_record`'s object names. The head is discarded afterwards; only the
vision tower is kept, frozen, for stage 2 (`ros_ground.train.lmm`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_cosine_schedule_with_warmup

from ros_ground.train.configs import VisionPretrainConfig
from ros_ground.train.data import batches
from ros_ground.train.loop import LoopState, resume_schedule, train_steps


def tag_vocabulary() -> list[str]:
    """Image-level words: colours, categories and coloured objects ("red mug")."""
    from ros_ground.sim.assets import ASSETS, CATEGORIES
    from ros_ground.sim.language import COLORS

    tags = [*sorted(COLORS), *CATEGORIES]
    for category in CATEGORIES:
        asset = ASSETS[category]
        if asset.recolor:
            tags += [f"{colour} {category}" for colour in sorted(COLORS)]
        elif asset.own_color:
            tags.append(f"{asset.own_color} {category}")
    return tags


def tags_of(record: dict, vocabulary: list[str]) -> np.ndarray:
    """Multi-hot targets of one scene from its object names (text only)."""
    from ros_ground.sim.assets import CATEGORIES

    index = {t: i for i, t in enumerate(vocabulary)}
    target = np.zeros(len(vocabulary), dtype=np.float32)
    for name in record["names"]:
        target[index[name]] = 1.0
        category = next(c for c in sorted(CATEGORIES, key=len, reverse=True)
                        if name == c or name.endswith(" " + c))
        target[index[category]] = 1.0
        colour = name[: -len(category)].strip()
        if colour:
            target[index[colour]] = 1.0
    return target


class TagHead(torch.nn.Module):
    """Per-patch word scores, pooled to image level by log-mean-exp."""

    def __init__(self, width: int, tags: int, sharpness: float):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.score = torch.nn.Linear(width, tags)
        self.sharpness = sharpness

    def forward(self, patches: torch.Tensor) -> torch.Tensor:  # [B, N, C] -> [B, tags]
        s = self.score(self.norm(patches)) * self.sharpness
        return (torch.logsumexp(s, dim=1) - math.log(patches.shape[1])) / self.sharpness


def patch_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """The patch tokens LLaVA hands to its projector (same layer, CLS dropped)."""
    layer = model.config.vision_feature_layer
    out = model.model.vision_tower(pixel_values, output_hidden_states=True)
    return out.hidden_states[layer][:, 1:]


def pretrain_vision(model, processor, store, cfg: VisionPretrainConfig,
                    progress: bool | None = None, time_limit_s: float | None = None) -> dict:
    """Train `model`'s vision tower in place on caption words; returns a summary."""
    vocabulary = tag_vocabulary()
    tower = model.model.vision_tower
    head = TagHead(model.config.vision_config.hidden_size, len(vocabulary), cfg.pool_sharpness)
    params = list(tower.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    # warm-up, then a cosine to zero; step k uses the schedule's value at k + 1
    scheduler = resume_schedule(get_cosine_schedule_with_warmup, optimizer, cfg.lr, 1,
                                num_warmup_steps=cfg.warmup, num_training_steps=cfg.steps)
    tower.train()
    batch_iter = batches(len(store), cfg.batch_size, cfg.seed + 2)

    def step_fn(step: int) -> tuple[torch.Tensor, dict]:
        indices = next(batch_iter)
        images = [store.rgb(i) for i in indices]
        targets = torch.from_numpy(np.stack([tags_of(store.texts(i), vocabulary)
                                             for i in indices]))
        pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        logits = head(patch_features(model, pixels))
        with torch.no_grad():
            hit = ((logits > 0).float() == targets).all(dim=1).float().mean()
        return F.binary_cross_entropy_with_logits(logits, targets), {"exact_match": float(hit)}

    loop = train_steps(step_fn, optimizer, scheduler, params, LoopState(), cfg.steps,
                       time_limit_s=time_limit_s, smoothing=0.95, history_every=25,
                       desc="pretrain vision", progress=progress)
    tower.eval()
    return {"steps": loop.step, "wall_s": round(loop.elapsed_s, 1), "history": loop.history,
            "tags": len(vocabulary), "config": cfg.to_dict(), "stopped_early": loop.stopped_early}
