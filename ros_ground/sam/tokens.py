"""Entity tokens: one feature vector per mask, pooled from SAM's image embedding.

A token is the mask's area-weighted mean of the embedding (the image encoder's neck output,
C=256 for released models, on an (img_size/16)^2 grid). The mask is mapped onto the grid the way
SAM maps the image: longest side resized to img_size, padded bottom/right, then each cell
weighted by the fraction of it the mask covers.
"""

from __future__ import annotations

import cv2
import numpy as np
from segment_anything import SamPredictor

from ros_ground.masks import pool_tokens


def mask_grid_weights(
    mask: np.ndarray,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    img_size: int,
    grid: tuple[int, int],
) -> np.ndarray:
    """Fraction of each embedding cell covered by `mask`, after SAM's resize-and-pad.

    mask: HxW (bool or 0/1) of the image, `original_size` = (H, W); `input_size` is the resized
    image's (h, w) inside the img_size square; `grid` = (rows, cols) of the embedding.
    Returns float32 [rows, cols] in [0, 1]. Raises ValueError when the mask is not HxW.
    """
    mask = np.asarray(mask)
    if mask.shape != tuple(original_size):
        raise ValueError(
            f"mask shape {mask.shape} differs from the current image's {tuple(original_size)}"
        )
    in_h, in_w = input_size
    canvas = np.zeros((img_size, img_size), dtype=np.float32)
    canvas[:in_h, :in_w] = cv2.resize(
        mask.astype(np.float32), (in_w, in_h), interpolation=cv2.INTER_AREA
    )
    gh, gw = grid
    # each cell's exact mean (what INTER_AREA gives at a whole factor): img_size is a whole
    # number of patches, as build_sam_from_config checks
    return canvas.reshape(gh, img_size // gh, gw, img_size // gw).mean(axis=(1, 3))


def entity_tokens(predictor: SamPredictor, masks: list[np.ndarray]) -> np.ndarray:
    """float32 [N, C] entity tokens of `masks` (each HxW of the predictor's current image).

    Empty masks get zeros. Raises RuntimeError when the predictor holds no image, ValueError
    when a mask is not the current image's size.
    """
    if not predictor.is_image_set:
        raise RuntimeError("entity_tokens needs set_image first")
    features = predictor.get_image_embedding()[0]  # [C, gh, gw]
    channels, gh, gw = features.shape
    if not masks:
        return np.zeros((0, channels), dtype=np.float32)
    img_size = int(predictor.model.image_encoder.img_size)
    weights = np.stack([
        mask_grid_weights(
            m, tuple(predictor.original_size), tuple(predictor.input_size), img_size, (gh, gw)
        )
        for m in masks
    ]).reshape(len(masks), gh * gw)
    return pool_tokens(features.reshape(channels, gh * gw).float().cpu().numpy().T, weights)
