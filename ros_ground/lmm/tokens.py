"""Entity tokens the language model can compare: masks pooled from the LMM's own image tokens.

Which layer: the embeddings the language model receives at the image-token positions, i.e. the
vision tower's selected layer (`vision_feature_layer`) after the multimodal projector. Why: those
vectors live in the LMM's input-embedding space, so a pooled one can be compared with the
phrase's word embeddings and placed in the context in place of a word (Groma's region token,
training-free for a LLaVA-style model); SAM's neck features share no space with the text.
Reading them at the language model's input (a pre-hook on its decoder) works for every model
family whose decoder takes `inputs_embeds`, whatever its projector is called.
"""

from __future__ import annotations

import contextlib
import math

import cv2
import numpy as np
import torch

from ros_ground.geometry import ImageGeometry
from ros_ground.masks import mask_bbox, pool_tokens

FEATURE_SOURCE = "lmm_projector"  # EntityProposals.feature_source of tokens pooled here


class _Captured(Exception):
    """Ends a forward pass once the decoder's input has been read (no language-model compute)."""


def token_grid_weights(mask: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """Fraction of each image-token cell that `mask` covers: float32 [grid_h, grid_w] in [0, 1].

    mask: HxW (bool or 0/1) of the original image (geometry.height x geometry.width). The mask
    is placed in the window the grid covers (pixels outside the image count as uncovered) and
    area-averaged onto the grid. Raises ValueError when the mask is not HxW.
    """
    mask = np.asarray(mask)
    h, w = geometry.height, geometry.width
    if mask.shape != (h, w):
        raise ValueError(f"mask shape {mask.shape} differs from the image's {(h, w)}")
    x0, y0, x1, y1 = geometry.window()
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 > ix0 and iy1 > iy0:
        canvas[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = mask[iy0:iy1, ix0:ix1]
    return cv2.resize(canvas, (geometry.grid_w, geometry.grid_h), interpolation=cv2.INTER_AREA)


@contextlib.contextmanager
def capture_image_embeddings(adapter, stop: bool = False):
    """Record the language model's input embeddings on its next forward call.

    Yields a dict that gains "embeds" (float32 [L, D] tensor on the CPU, the first call's
    `inputs_embeds`). `stop`: raise inside that call so no language-model layer runs (the
    caller catches `_Captured`, as `image_features` does).
    """
    box: dict = {}

    def hook(module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None and args:
            embeds = args[0] if args[0].is_floating_point() else None
        if "embeds" not in box and embeds is not None:
            box["embeds"] = embeds[0].detach().float().cpu()
            if stop:
                raise _Captured
        return None

    handle = adapter.model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield box
    finally:
        handle.remove()


def prefill_embeddings(adapter, inputs: dict) -> torch.Tensor:
    """float32 [L, D] (CPU): the language model's input embeddings for processor `inputs`
    (`adapter.prepare`'s), image tokens merged in. Runs the vision tower and the projector
    only. RuntimeError when the decoder is not called with input embeddings."""
    with torch.no_grad(), contextlib.suppress(_Captured), \
            capture_image_embeddings(adapter, stop=True) as box:
        adapter.model(**inputs, use_cache=False)
    if "embeds" not in box:
        raise RuntimeError(f"{adapter.name}: the decoder was not called with input embeddings")
    return box["embeds"]


def image_features(adapter, image: np.ndarray) -> tuple[np.ndarray, ImageGeometry]:
    """The LMM's image tokens for `image` (HxWx3 uint8 RGB) as the language model receives
    them: (float32 [grid_h * grid_w, D], the grid's geometry). Runs the vision tower and the
    projector only."""
    inputs, layout, geometry = adapter.prepare(image, "Describe the scene.")
    return prefill_embeddings(adapter, inputs)[layout.positions.cpu()].numpy(), geometry


def entity_tokens(features: np.ndarray, geometry: ImageGeometry,
                  masks: list[np.ndarray]) -> np.ndarray:
    """float32 [N, D] tokens of `masks` (each HxW of the image `geometry` describes), pooled
    from `features` ([grid_h * grid_w, D], from `image_features`)."""
    if not masks:
        return np.zeros((0, np.asarray(features).shape[-1]), dtype=np.float32)
    return pool_tokens(features, np.stack([token_grid_weights(m, geometry) for m in masks]))


MIN_WINDOW = (48, 36)  # px (w, h): below this a window holds too few pixels to resize up from


def entity_window(mask: np.ndarray, context: float) -> tuple[int, int, int, int]:
    """(x0, y0, w, h), px: the 4:3 window around `mask`'s box, `context` times the box's longer
    side tall (at least MIN_WINDOW), moved inside the image and clipped to it.

    mask: HxW (bool or 0/1); an empty mask gets the whole image. Each side is clipped to the
    image on its own, so the window always holds the box when `context` >= 1. Raises
    ValueError when `context` is not a finite positive number.
    """
    if not (math.isfinite(context) and context > 0):
        raise ValueError(f"window context must be a finite number > 0, got {context}")
    height, width = np.shape(mask)
    bx, by, bw, bh = mask_bbox(mask)
    if bw == 0:
        return 0, 0, width, height
    tall = context * max(bw, bh)
    h = min(height, max(MIN_WINDOW[1], round(tall)))
    w = min(width, max(MIN_WINDOW[0], round(tall * 4 / 3)))
    cx, cy = bx + bw / 2, by + bh / 2
    x0 = int(np.clip(round(cx - w / 2), 0, width - w))
    y0 = int(np.clip(round(cy - h / 2), 0, height - h))
    return x0, y0, int(w), int(h)


def window_entity_tokens(adapter, image: np.ndarray, masks: list[np.ndarray],
                         context: float) -> np.ndarray:
    """float32 [N, D]: each mask's token pooled from the LMM's image tokens of the window
    around it (`entity_window`) instead of the whole frame's.

    Why: the LMM's grid is coarse (the sim model's: 12x12 patches), so a far object in a wide
    frame covers a fraction of one patch and its frame-pooled token is mostly table. Seen
    through its window, every object covers about as many patches as a near one, so its token
    holds the object (docs/MEASUREMENTS.md: on ground-truth masks of ood scenes, the sim head
    picks the named object for 0.74 of them with windows 3 sides tall, 0.39 from the frame).
    Cost: one vision pass (tower and projector) per mask. image: HxWx3 uint8 RGB; masks: HxW each.
    """
    tokens = []
    for mask in masks:
        x0, y0, w, h = entity_window(mask, context)
        window = np.ascontiguousarray(image[y0:y0 + h, x0:x0 + w])
        features, geometry = image_features(adapter, window)
        tokens.append(entity_tokens(features, geometry, [np.asarray(mask)[y0:y0 + h, x0:x0 + w]])[0])
    if not tokens:
        return np.zeros((0, int(adapter.model.get_input_embeddings().weight.shape[1])), np.float32)
    return np.stack(tokens).astype(np.float32)
