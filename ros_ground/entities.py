"""GROUNDHOG-style entity selection: score every proposed mask against a phrase's heatmap and
keep the best ones (Zhang et al., "GROUNDHOG: Grounding Large Language Models to Holistic
Segmentation", 2024, arXiv:2402.16846; there a trained head scores the entities, here the
phrase's attention map does).

Scoring and selection are kept apart from proposal so a failure can be read off the logged
per-entity scores: either no proposal covered the object, or the wrong one scored highest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ros_ground.results import Proposal

EMPTY_MASK_SCORE = -1.0  # lowest possible correlation: an empty mask can ground nothing


@dataclass
class EntitySelection:
    """Entities chosen for one phrase; `scores` holds every proposal's score, for diagnosis."""

    ids: list[int]
    scores: dict[int, float]
    mask: np.ndarray  # bool HxW, union of the chosen entities
    score: float  # the score of the best chosen entity


def score_entities(heatmap: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """One score per mask: the Pearson correlation between the heatmap and the mask's indicator.

    corr = (mean inside - mean outside) * sqrt(p (1 - p)) / std(heatmap), p = mask area fraction.
    Why this score: the contrast term rewards masks over the hot region, and sqrt(p (1 - p))
    stops both a one-pixel mask on the peak and a whole-image mask from winning; dividing by the
    heatmap's spread makes it independent of the heatmap's units and offset (so normalised or raw
    maps score alike), and the result is bounded in [-1, 1], so thresholds mean the same on every
    image. Empty masks score -1, masks covering everything (no contrast) and flat heatmaps score 0.

    heatmap: [H, W] (non-finite values count as 0); masks: N bool HxW. Returns float64 [N] in
    [-1, 1]. Raises ValueError when the heatmap is not 2-D or a mask is not its shape.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {heat.shape}")
    heat = np.where(np.isfinite(heat), heat, 0.0)
    n = heat.size
    total = heat.sum()
    std = heat.std()
    scores = np.zeros(len(masks), dtype=np.float64)
    for i, mask in enumerate(masks):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != heat.shape:
            raise ValueError(f"mask {i} has shape {mask.shape}, heatmap has {heat.shape}")
        area = int(mask.sum())
        if area == 0:
            scores[i] = EMPTY_MASK_SCORE
            continue
        if area == n or std <= 0.0:
            continue
        inside = heat[mask].sum()
        contrast = inside / area - (total - inside) / (n - area)
        p = area / n
        scores[i] = contrast * np.sqrt(p * (1.0 - p)) / std
    return np.clip(scores, -1.0, 1.0)


def select_entities(
    heatmap: np.ndarray,
    proposals: list[Proposal],
    margin: float = 0.1,
    min_score: float | None = None,
    scores: np.ndarray | None = None,
) -> EntitySelection | None:
    """Union of the entities scoring within `margin` of the best, the best alone as fallback.

    `margin` is a fraction of the score range over the proposals (best - worst), so it means
    "nearly as good as the best" whatever the spread; `min_score` additionally drops weak
    entities but never the best one. `scores` ([N]) replaces `score_entities` (e.g. retrieval
    scores, ros_ground.retrieval). Returns None when there are no proposals.
    """
    if not proposals:
        return None
    if scores is None:
        scores = score_entities(heatmap, [p.mask for p in proposals])
    scores = np.asarray(scores, dtype=np.float64)
    best_index = int(np.argmax(scores))
    best = float(scores[best_index])
    threshold = best - float(margin) * (best - float(scores.min()))
    chosen = [
        i
        for i in np.argsort(-scores, kind="stable")
        if scores[i] >= threshold and (min_score is None or scores[i] >= min_score)
    ]
    return _selection(proposals, scores, chosen or [best_index])


def assign_entities(
    heatmaps: Sequence[np.ndarray],
    proposals: list[Proposal],
    free: Sequence[bool] | None = None,
    counts: Sequence[int | None] | None = None,
    margin: float = 0.1,
    scores: np.ndarray | None = None,
) -> list[EntitySelection] | None:
    """One entity per phrase (as many as a plural names) and no entity for two phrases,
    maximising the summed score.

    Why: the phrases of an answer name different things, and choosing for each phrase alone lets
    the entity that draws the most attention take several of them. The assignment is the
    Hungarian algorithm's (scipy). `counts` says how many entities each phrase names
    (`NounPhrase.count`): "two mugs" takes two; a plural without a number (None) takes its
    assigned entity plus those no phrase was assigned that score within `margin` of it (margin
    as in `select_entities`), so "the mugs" covers every mug. Phrases marked `free` (a later
    definite mention such as "the mug" after "a red mug", which may name the same thing) and
    phrases beyond the number of proposals take their best entities, whoever else has them.
    `scores` ([len(heatmaps), N]) replaces `score_entities` (e.g. retrieval scores,
    ros_ground.retrieval). heatmaps: P maps [H, W], each proposal's mask HxW.

    Returns one EntitySelection per heatmap ([] without heatmaps), None when there are no
    proposals. Raises ValueError when `free` or `counts` is not one per heatmap, a count is
    below 1, or (via `score_entities`) a heatmap is not 2-D or a mask is not its shape.
    """
    if not proposals:
        return None
    masks = [p.mask for p in proposals]
    if not len(heatmaps):
        return []
    if scores is None:
        scores = np.stack([score_entities(h, masks) for h in heatmaps])
    scores = np.asarray(scores, dtype=np.float64)
    n = len(heatmaps)
    free = [False] * n if free is None else list(free)
    counts = [1] * n if counts is None else list(counts)
    if len(free) != n or len(counts) != n:
        raise ValueError(f"{len(free)} free flags and {len(counts)} counts for {n} heatmaps")
    if any(c is not None and c < 1 for c in counts):
        raise ValueError(f"counts must be >= 1 or None, got {counts}")
    rows = [i for i in range(n) if not free[i] for _ in range(counts[i] or 1)]
    chosen: list[list[int]] = [[] for _ in range(n)]
    if rows:
        for row, col in zip(*linear_sum_assignment(scores[rows], maximize=True)):
            chosen[rows[row]].append(int(col))
    taken = {j for picks in chosen for j in picks}
    for i in range(n):
        order = [int(j) for j in np.argsort(-scores[i], kind="stable")]
        if free[i] or not chosen[i]:  # shares: its best, as many as it names
            chosen[i] = order[: counts[i] or 1]
        if counts[i] is None:
            spread = float(scores[i].max() - scores[i].min())
            floor = max(scores[i, j] for j in chosen[i]) - float(margin) * spread
            more = [j for j in order if j not in chosen[i] and (free[i] or j not in taken)
                    and scores[i, j] >= floor]
            chosen[i] += more
            if not free[i]:
                taken.update(more)
    return [_selection(proposals, scores[i], sorted(picks, key=lambda j: -scores[i, j]))
            for i, picks in enumerate(chosen)]


def _selection(proposals: list[Proposal], scores: np.ndarray, picks: list[int]) -> EntitySelection:
    """The entities at `picks` (best first) as one selection: their ids and union mask."""
    union = np.zeros(np.asarray(proposals[0].mask).shape, dtype=bool)
    for j in picks:
        union |= np.asarray(proposals[j].mask, dtype=bool)
    return EntitySelection(
        ids=[int(proposals[j].id) for j in picks],
        scores={int(p.id): float(s) for p, s in zip(proposals, scores)},
        mask=union,
        score=float(scores[picks[0]]),
    )
