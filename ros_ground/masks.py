"""Operations on dense masks that the pipeline, the evaluation and both token sources share.

`iou` / `iou_matrix` compare boolean masks (the runtime uses them to pick a proposal and to
merge duplicates, the evaluation to score), `overlap_matrix` says how much of one lies in
another; `mask_bbox` gives a mask's box; `pool_tokens` averages grid features under mask
weights (entity tokens from the LMM's image tokens and from SAM's image embedding alike).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


# IoU in numpy rather than pycocotools.mask.iou: that one takes RLE, and every mask here is dense
def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two HxW boolean (or 0/1) masks, in [0, 1].

    0 when both are empty (GLaMM's evaluation would give NaN). Raises ValueError when the two
    shapes differ.
    """
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = int(np.logical_or(a, b).sum())
    return int(np.logical_and(a, b).sum()) / union if union else 0.0


def iou_matrix(rows: Sequence[np.ndarray], cols: Sequence[np.ndarray]) -> np.ndarray:
    """IoU of every (row, col) pair of HxW masks: float64 [len(rows), len(cols)] in [0, 1].

    A pair of empty masks scores 0. Raises ValueError when the rows' masks and the columns'
    masks differ in size (masks within `rows`, or within `cols`, must share one shape).
    """
    out = np.zeros((len(rows), len(cols)))
    if not len(rows) or not len(cols):
        return out
    flat_r = np.stack([np.asarray(m, dtype=bool).ravel() for m in rows]).astype(np.float32)
    flat_c = np.stack([np.asarray(m, dtype=bool).ravel() for m in cols]).astype(np.float32)
    if flat_r.shape[1] != flat_c.shape[1]:
        raise ValueError("mask shapes differ between predictions and ground truth")
    inter = flat_r @ flat_c.T
    union = flat_r.sum(1)[:, None] + flat_c.sum(1)[None, :] - inter
    np.divide(inter, union, out=out, where=union > 0)
    return out


def overlap_matrix(masks: Sequence[np.ndarray]) -> np.ndarray:
    """How much of the smaller of every pair of HxW masks lies in the other: float64 [N, N] in
    [0, 1], their intersection over the smaller one's area (0 where either is empty). IoU hides
    a small piece inside a large mask (a piece of a cube merged with a duck: IoU 0.1 with the
    cube, half of it inside); this does not. Raises ValueError when the masks differ in size."""
    out = np.zeros((len(masks), len(masks)))
    if not len(masks):
        return out
    if len({np.shape(m) for m in masks}) > 1:
        raise ValueError("mask shapes differ")
    flat = np.stack([np.asarray(m, dtype=bool).ravel() for m in masks]).astype(np.float32)
    area = flat.sum(1)
    smaller = np.minimum.outer(area, area)
    np.divide(flat @ flat.T, smaller, out=out, where=smaller > 0)
    return out


def pool_tokens(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of token features per mask.

    features: [grid_h * grid_w, D] (row-major grid); weights: [N, grid_h, grid_w] (or flat
    [N, grid_h * grid_w]), each cell's share covered by the mask. Returns float32 [N, D]; a mask
    covering no cell gets zeros. Raises ValueError when the weights' cell count is not the
    features' token count.
    """
    features = np.asarray(features, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float32).reshape(len(weights), -1)
    if weights.shape[1] != features.shape[0]:
        raise ValueError(f"{weights.shape[1]} weight cells for {features.shape[0]} tokens")
    totals = weights.sum(axis=1, keepdims=True)
    pooled = weights @ features
    return np.divide(pooled, totals, out=np.zeros_like(pooled), where=totals > 0)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) in pixels of the set pixels of an HxW mask (the inverse of regions.box_mask);
    (0, 0, 0, 0) for an empty mask. OpenCV's boundingRect of the non-zero pixels."""
    return tuple(int(v) for v in cv2.boundingRect(np.asarray(mask, dtype=bool).astype(np.uint8)))
