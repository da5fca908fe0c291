"""Arithmetic on per-step attention maps over the image-token grid.

Kept apart from model code so the method's choices (normalisation, pooling, peak) are
testable on plain arrays.
"""

from __future__ import annotations

import numpy as np


def normalise_maps(maps: np.ndarray, enabled: bool = True) -> np.ndarray:
    """Subtract the mean map over all T output steps from each step's map ([T, h, w]).

    Attention sinks and position biases show up in every step; removing the sequence mean leaves
    what is specific to each token (attend-and-segment's ablation: GCG mask recall 44.1 -> 46.6;
    Cao, Gui and Wang, "Emerging Pixel Grounding in Large Multimodal Models Without Grounding
    Supervision", arXiv:2410.08209, Table 4 and appendix B). With
    `enabled=False` (or T = 0) the maps are returned unchanged; otherwise float32 [T, h, w].
    Raises ValueError when `maps` is not 3-D.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be [T, h, w], got shape {maps.shape}")
    if not enabled or maps.shape[0] == 0:
        return maps
    maps = maps.astype(np.float32, copy=False)
    return maps - maps.mean(axis=0, keepdims=True)


def phrase_map(maps: np.ndarray, token_indices: list[int]) -> np.ndarray:
    """Mean of the listed steps' maps: [T, h, w] -> float32 [h, w]; a phrase's attention is that
    of its tokens. `token_indices` index the T steps (negative from the end). Raises ValueError
    when `maps` is not 3-D or no index is given, IndexError when an index is outside [-T, T).
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be [T, h, w], got shape {maps.shape}")
    indices = list(token_indices)
    if not indices:
        raise ValueError("phrase_map needs at least one token index")
    bad = [i for i in indices if not -maps.shape[0] <= i < maps.shape[0]]
    if bad:
        raise IndexError(f"token indices {bad} out of range for {maps.shape[0]} steps")
    return maps[indices].astype(np.float32, copy=False).mean(axis=0)


def contrast_phrase_maps(phrase_maps: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """Subtract from each phrase's map ([P, h, w]) `weight` times the mean of the other phrases'.

    The sequence-mean normalisation removes what every token attends to; this removes what the
    answer's other phrases attend to, so an object that draws some attention from every phrase
    stops winning them all. It is weighted, and off in the engine by default, because in "the
    mug is left of the tray" the second phrase's map also looks at the mug. One phrase alone,
    or weight 0, is returned unchanged; otherwise float32 [P, h, w]. Raises ValueError when
    `phrase_maps` is not 3-D.
    """
    maps = np.asarray(phrase_maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"phrase maps must be [P, h, w], got shape {maps.shape}")
    count = maps.shape[0]
    if count < 2 or weight == 0:
        return maps
    others = (maps.sum(axis=0, keepdims=True) - maps) / (count - 1)
    return maps - np.float32(weight) * others


def peak_point(heatmap: np.ndarray) -> tuple[float, float]:
    """(x=col, y=row) of the maximum of a 2-D [h, w] heatmap, in its own pixels; first on ties,
    NaN and inf ignored. Raises ValueError when the heatmap is not 2-D, is empty, or holds no
    finite value (all NaN / inf)."""
    heatmap = np.asarray(heatmap)
    if heatmap.ndim != 2 or heatmap.size == 0:
        raise ValueError(f"heatmap must be a non-empty 2-D array, got shape {heatmap.shape}")
    finite = np.where(np.isfinite(heatmap), heatmap, -np.inf)
    if not np.isfinite(finite).any():
        raise ValueError("heatmap has no finite values")
    row, col = np.unravel_index(int(np.argmax(finite)), heatmap.shape)
    return float(col), float(row)


def no_peak_reason(heatmap: np.ndarray, rtol: float = 1e-5) -> str | None:
    """Why `heatmap` (2-D) points nowhere, or None when it has a peak. It has none when it holds
    no finite value (an fp16 overflow in the LMM's attention) or is flat: its finite values
    spread over at most `rtol` of their largest magnitude (a one-token answer's map, normalised
    by the answer's mean map, is 0 everywhere). Its argmax would then be pixel (0, 0), or noise."""
    heatmap = np.asarray(heatmap, dtype=np.float64)
    finite = heatmap[np.isfinite(heatmap)]
    if finite.size == 0:
        return "its attention map has no finite value"
    low, high = finite.min(), finite.max()
    if high - low <= rtol * max(abs(low), abs(high)):
        return "its attention map is flat (e.g. a one-token text's, less the text's mean map)"
    return None


def point_on_mask(heatmap: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of `heatmap`'s hottest pixel on `mask` (both HxW; the mask non-empty): a robot
    sent to the phrase's point must land on its mask. Where the map has no finite value on the
    mask, the mask's first pixel."""
    mask = np.asarray(mask, dtype=bool)
    on_mask = np.where(mask, heatmap, np.nan)
    return peak_point(on_mask if np.isfinite(on_mask).any() else np.where(mask, 1.0, np.nan))
