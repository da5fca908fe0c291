"""Where a model family puts the image tokens in its input, and what grid they form.

LLaVA-1.5 style: one square grid (a CLS token first when the vision features keep it);
LLaVA-NeXT: the base (whole-image) grid, before the any-resolution tiles; Qwen2-VL: the merged
temporal-height-width grid the processor reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ros_ground.errors import InputError
from ros_ground.lmm.errors import BadPromptError, ModelLoadError


@dataclass
class ImageLayout:
    """The image tokens that form the grid of attention maps, and how the image was fitted."""

    positions: torch.Tensor  # sequence indices of the image tokens that form the grid
    grid_h: int
    grid_w: int
    fit: str  # "processor" (use the processor's config) or a geometry fit


def find_image_token_id(config, tokenizer, image_token: str) -> int:
    """The id of the image placeholder token `image_token`: the model config's
    (`image_token_id` / `image_token_index`), else the tokenizer's. Raises ModelLoadError when
    the tokenizer does not know the token, or gives it another id than the config: the
    processor would then write prompts the model cannot place the image in, and every request
    would fail with a token-count error that blames the prompt."""
    known = tokenizer.convert_tokens_to_ids(image_token)
    if known == getattr(tokenizer, "unk_token_id", None):
        known = None
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if value is None:
            continue
        if known is not None and int(known) == int(value):
            return int(value)
        raise ModelLoadError(
            f"the model config's {name} is {int(value)}, but the tokenizer "
            + (f"gives {image_token!r} the id {int(known)}" if known is not None
               else f"has no {image_token!r} token")
            + ": the tokenizer and the model come from different checkpoints, or the tokenizer "
            "was saved without the processor's added tokens")
    if known is None:
        raise ModelLoadError(f"cannot find the image token id ({image_token!r})")
    return int(known)


def image_layout(inputs, *, config, model_type: str, processor, image_token: str,
                 image_token_id: int) -> ImageLayout:
    """Find the image tokens of `inputs` (the processor's, one image and one prompt), check
    their count, and shape them into the base grid. `config` is the model's config."""
    ids = inputs["input_ids"]
    if ids.shape[0] != 1:
        raise ValueError("one image and one prompt per request")
    positions = (ids[0] == image_token_id).nonzero().flatten()
    expected = expected_image_tokens(inputs, config=config, processor=processor,
                                     image_token=image_token)
    if positions.numel() != expected:
        raise BadPromptError(
            f"prompt produced {positions.numel()} image tokens, expected {expected}: "
            f"remove image/special tokens from the prompt"
        )
    cfg = config
    vision = getattr(cfg, "vision_config", None)
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        t, h, w = (int(x) for x in inputs["image_grid_thw"][0])
        merge = int(getattr(vision, "spatial_merge_size", 2))
        gh, gw = h // merge, w // merge
        if t != 1:
            raise NotImplementedError("video inputs (temporal grid > 1) are not supported")
        return ImageLayout(positions, gh, gw, "resize")
    has_cls = getattr(cfg, "vision_feature_select_strategy", "default") == "full"
    if model_type == "llava_next":
        # base (whole-image) grid only; the any-resolution tiles and newlines follow it
        side = vision.image_size // vision.patch_size
        base = positions[: side * side + int(has_cls)]
        return ImageLayout(base[int(has_cls):], side, side, "resize")
    if has_cls:
        positions = positions[1:]
    side = math.isqrt(positions.numel())
    if side * side != positions.numel():
        raise NotImplementedError(
            f"{model_type}: {positions.numel()} image tokens do not form a square grid")
    return ImageLayout(positions, side, side, "processor")


def expected_image_tokens(inputs, *, config, processor, image_token: str) -> int:
    """How many image tokens the processor should have put in `inputs` for one image."""
    replace = getattr(processor, "replace_image_token", None)
    if replace is not None:
        try:
            return len(replace(inputs, 0)) // len(image_token)
        except NotImplementedError:
            pass
    vision = config.vision_config
    full = getattr(config, "vision_feature_select_strategy", "default") == "full"
    return (vision.image_size // vision.patch_size) ** 2 + int(full)


def answer_room(config, prompt_len: int, max_new_tokens: int) -> int:
    """`max_new_tokens`, capped at the tokens the text model's context (its config's
    `max_position_embeddings`; no cap where it gives none) leaves after `prompt_len` prompt
    tokens. Raises InputError when the prompt alone fills the context, ValueError for
    `max_new_tokens` < 1."""
    if max_new_tokens < 1:
        raise ValueError("max_new_tokens must be >= 1")
    limit = getattr(getattr(config, "text_config", config), "max_position_embeddings", None)
    if not isinstance(limit, int):
        return max_new_tokens
    if prompt_len >= limit:
        raise InputError(f"the prompt takes {prompt_len} tokens, image included; the model's "
                         f"context holds {limit}")
    return min(max_new_tokens, limit - prompt_len)
