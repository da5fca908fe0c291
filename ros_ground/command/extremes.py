"""The whole objects a superlative or an ordinal compares among a frame's entity proposals, and
the one it picks: "the *leftmost* mug", "the *biggest* cube", "the *second* mug from the left",
"the *middle* one" (refer.py reads the words and calls `extreme`).

A superlative compares whole objects: masks touching the image border (the table's edge, the
floor, an object the frame cuts, whose extreme is unknown) are left out, as are, given SAM's
stability scores, masks less stable than the most stable of the rest by more than
SUPERLATIVE_STABILITY_MARGIN (pieces of table texture and shadow), and a mask that is two other
proposals together (`_unions`: SAM's mask of a mug and the tray it touches). When the target
phrase names a kind, only candidates scored within SUPERLATIVE_KIND_MARGIN of the best are
compared. An ordinal counts objects, each once (`_objects`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ros_ground.masks import overlap_matrix, pair_intersections

SUPERLATIVE_STABILITY_MARGIN = 0.15
UNION_PART = 0.2  # of a union's area, the least each of its two objects covers (`_unions`)
# measured neutral on the eval's 120 superlative and relation commands (docs/MEASUREMENTS.md,
# "Superlatives of one kind"), and what makes "the biggest mug" a mug
SUPERLATIVE_KIND_MARGIN = 0.1


def of_kind(index: np.ndarray, kind_scores: np.ndarray | None) -> np.ndarray:
    """The masks of `index` (non-empty indices) whose `kind_scores` are within
    SUPERLATIVE_KIND_MARGIN of the best of them: of the kind the phrase names; all of `index`
    without scores (a phrase naming no kind)."""
    if kind_scores is None:
        return index
    return index[kind_scores[index] >= kind_scores[index].max() - SUPERLATIVE_KIND_MARGIN]


def touches_border(mask: np.ndarray) -> bool:
    """Whether `mask` (HxW bool) has a pixel in the image's first or last row or column."""
    mask = np.asarray(mask, dtype=bool)
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def superlative_candidates(masks: Sequence[np.ndarray], ok: np.ndarray,
                           stability: np.ndarray | None = None) -> np.ndarray:
    """Bool [N]: the masks a superlative compares, among `ok` (bool [N], `allowed`): those
    neither empty (no extreme) nor touching the image border and, given `stability` (finite
    float [N], SAM's stability scores), within SUPERLATIVE_STABILITY_MARGIN of the most stable
    of them; the non-empty ones of `ok` when none is left (none when all are empty). A mask
    that is two others together (`_unions`) is left out."""
    return _candidates(masks, ok, stability)[2]


def _candidates(masks: Sequence[np.ndarray], ok: np.ndarray, stability: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(the candidates with the unions, the `_unions` among them or None when none was judged,
    `superlative_candidates`). An ordinal needs all three: it counts objects, and a whole mug
    is also its two halves together."""
    filled = np.asarray(ok, dtype=bool) & np.array([np.asarray(m).any() for m in masks], dtype=bool)
    keep = filled & ~np.array([touches_border(m) for m in masks], dtype=bool)
    if not keep.any():
        return filled, None, filled
    if stability is not None:
        stability = np.asarray(stability, dtype=np.float64)
        keep &= stability >= stability[keep].max() - SUPERLATIVE_STABILITY_MARGIN
    unions = _unions(masks, keep)
    whole = keep & ~unions
    return keep, unions, (whole if whole.any() else keep)


def _unions(masks: Sequence[np.ndarray], among: np.ndarray) -> np.ndarray:
    """Bool [N]: the masks of `among` that are two other proposals together (SAM's mask of a
    mug and the tray it touches, which is the biggest "mug" and the mean of two positions):
    two masks apart (overlapping under a fifth of the smaller), each UNION_PART of its area or
    more and 80% inside it, that together cover 80% of it. A part too small to be an object
    (a mug's handle) makes no union. Counted on every second pixel."""
    inter, area = pair_intersections([np.asarray(m, dtype=bool)[::2, ::2] for m in masks])
    apart = inter < 0.2 * np.minimum(area[:, None], area[None, :])  # [N, N]
    out = np.zeros(len(masks), dtype=bool)
    for i in np.flatnonzero(among):
        # the pairs of parts judged at once: hundreds of nested masks are parts of each other
        parts = np.flatnonzero((UNION_PART * area[i] <= area) & (area < area[i])
                               & (inter[i] >= 0.8 * area))
        covered = inter[i, parts][:, None] + inter[i, parts][None, :] >= 0.8 * area[i]
        out[i] = bool(np.any(np.triu(apart[np.ix_(parts, parts)] & covered, k=1)))
    return out


def extreme(superlative: str, masks: Sequence[np.ndarray], ok: np.ndarray, centres: np.ndarray,
             stability: np.ndarray | None, kind_scores: np.ndarray | None = None,
             rank: int = 1, rgb: np.ndarray | None = None) -> int | None:
    """Index of the mask that is `superlative` among `superlative_candidates` of `ok` (with
    `rank` k > 1, the k-th object in that order, masks of one object counted once: "the second
    mug from the left"), or None when fewer than `rank` objects are candidates. `centres`:
    float [N, 2], each mask's centroid column and lowest row (refer.py). `kind_scores`: float
    [N], the target phrase's own scores, when it names a kind: only the candidates within
    SUPERLATIVE_KIND_MARGIN of the best-scored one are compared. `rgb`: the image (HxWx3), which
    tells a whole object's two parts from two objects when counting."""
    counting = rank > 1 or superlative == "middle"
    with_unions, unions, whole = _candidates(masks, ok, stability)
    index = np.flatnonzero(whole)
    if len(index) < rank:
        return None
    index = of_kind(index, kind_scores)
    if len(index) < rank:
        return None
    column, lowest = centres[index, 0], centres[index, 1]
    area = np.array([np.count_nonzero(masks[i]) for i in index], dtype=np.float64)  # in the image
    key = {"leftmost": column, "middle": column, "rightmost": -column, "largest": -area, "biggest": -area,
           "smallest": area, "tiniest": area}.get(
        superlative, -lowest if superlative.startswith(("closest", "nearest")) else lowest)
    order = index[np.argsort(key, kind="stable")]
    if not counting:
        return int(order[0])
    wholes: list[int] = []
    if rgb is not None:
        if unions is None:  # every candidate touched the border: judged among all of them here
            unions = _unions(masks, with_unions)
        wholes = _one_colour_unions(rgb, masks, np.flatnonzero(unions), index)
    counted = _objects(masks, [int(i) for i in order], wholes)
    if superlative == "middle":  # of an even count, the left one of the two in the middle
        return counted[(len(counted) - 1) // 2]
    return counted[rank - 1] if len(counted) >= rank else None


def _one_colour_unions(rgb: np.ndarray, masks: Sequence[np.ndarray], unions: np.ndarray,
                       parts: np.ndarray) -> list[int]:
    """The masks of `unions` (indices the `_unions` of the candidates found) that are two of
    `parts` (indices) together and whose parts are one colour (mean RGB within 40 of each
    other): SAM's whole mug beside its two halves, rather than a mug and the tray it touches."""
    found = []
    for u in unions:
        area = np.count_nonzero(masks[u])
        inside = [j for j in parts if j != u and np.count_nonzero(masks[j]) >= UNION_PART * area
                  and np.count_nonzero(masks[j] & masks[u]) >= 0.8 * np.count_nonzero(masks[j])]
        colours = np.array([rgb[masks[j]].reshape(-1, 3).mean(axis=0) for j in inside])
        if len(inside) >= 2 and np.ptp(colours, axis=0).max() < 40:
            found.append(int(u))
    return found


def _objects(masks: Sequence[np.ndarray], order: list[int], wholes: Sequence[int] = ()
             ) -> list[int]:
    """One index per object of the masks `order` lists: masks that are (parts of) one object,
    more than half the smaller one inside the other, group together with any other of its
    masks (the connected components of that relation), and each group is its largest mask, at
    the place in `order` of its first. `wholes` (`_one_colour_unions`) join the groups of the
    parts they hold, as SAM's whole mug joins its top and bottom halves, which do not overlap.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    nodes = [*order, *wholes]
    if not nodes:
        return []
    one_object = overlap_matrix([masks[i] for i in nodes]) > 0.5
    _, label = connected_components(csr_matrix(one_object), directed=False)
    groups: dict[int, list[int]] = {}  # in the order of each group's first mask
    for k, i in enumerate(nodes):
        groups.setdefault(int(label[k]), []).append(i)
    return [max(g, key=lambda j: np.count_nonzero(masks[j])) for g in groups.values()]


