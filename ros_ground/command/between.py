""""Between" two landmarks: which entity proposals "the cube *between the mug and the duck*",
"the cube *between the two mugs*" and "put it *between the mug and the duck*" mean (refer.py
reads the other relations, with the same scores).

The target and its two landmarks are chosen together: three objects, none with more than
refer.MAX_PAIR_IOU of the smaller one's area inside another (`masks.overlap_matrix`: SAM's mask
of a duck with a piece of the cube beside it is not a third object), the target `between` the
two, maximising the three phrases' summed scores (refer.scored_target / scored_landmark: entity
scores with the colour and stability gains). Between is judged on the point refer's relations
compare (refer.mask_centres: centroid column, lowest row): the target's projects inside the
segment joining the landmarks' and lies off its line by at most BETWEEN_WIDTH times its length.
A superlative or ordinal on the target ("the biggest cube between ...") chooses among the
objects between the best-scored pair of landmarks. When no three fit, the target is absent
(as refer.resolve_pair's when its relation holds for no pair) and the landmarks are the
best-scored pair; only without two landmarks apart, or when a landmark's colour words match
no object (any object may then be taken for it), is the target chosen by its own scores among
the other objects. A superlative takes the best-scored pair that some allowed object stands
between. Without a target (where to put something: "between the mug and the duck", "between
the two mugs") the two landmarks alone, apart, by their summed scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ros_ground.command.extremes import extreme
from ros_ground.command.refer import (
    MAX_AREA,
    MAX_PAIR_IOU,
    MIN_COLOUR,
    STABILITY_WEIGHT,
    best_of,
    mask_centres,
    object_sized,
    per_mask,
    scored_landmark,
    scored_target,
)
from ros_ground.command.spatial_words import ordinal_of, superlative_of
from ros_ground.masks import overlap_matrix

# off the line joining the two landmarks by at most this times their distance (a mug and a duck
# 200 px apart: a cube up to 100 px in front of or behind that line)
BETWEEN_WIDTH = 0.5


def between(p: np.ndarray, a: np.ndarray, b: np.ndarray, width: float = BETWEEN_WIDTH) -> bool:
    """Whether point `p` lies between points `a` and `b` (each (column, row), pixels): its
    projection on the segment from `a` to `b` falls inside it and it is at most `width` times
    the segment's length off the line. False for a NaN point or `a` and `b` under 1 px apart."""
    v, w = np.asarray(b, float) - a, np.asarray(p, float) - a
    length = float(np.hypot(*v))
    if not length >= 1.0:
        return False
    along = float(w @ v) / length
    return 0.0 < along < length and abs(float(v[0] * w[1] - v[1] * w[0])) / length <= width * length


def resolve_between(rgb: np.ndarray, masks: Sequence[np.ndarray], target_heat: np.ndarray | None,
                    target_text: str, after_text: str, landmarks: Sequence[tuple],
                    max_area: float = MAX_AREA, min_colour: float = MIN_COLOUR,
                    scores: np.ndarray | None = None, stability: np.ndarray | None = None,
                    any_object: bool = False) -> tuple[int | None, int | None, int | None]:
    """(target, landmark, second landmark): indices into `masks` (HxW bool) on `rgb` (HxWx3
    uint8), each None when no mask may be it; the rule is the module docstring's.

    `target_heat`: the target phrase's attention map at the image's size, None for no target
    (a destination: the landmarks alone); `target_text` / `after_text`: the phrase and the
    command's text after it. `landmarks`: per landmark phrase (heat, text, scores or None, the
    text after it), as refer.resolve_pair takes its landmark: two ("the mug", "the duck"), or
    one naming both ("the two mugs"), whose two objects are then the landmarks (a superlative in
    the landmarks' own words is theirs: "between the mug and *the smallest duck*"). The other
    arguments, and the ValueError for scores or stability not one finite number per mask, as
    refer.resolve_pair's."""
    stability = None if stability is None else per_mask(stability, len(masks), "stability", 0.0, 1.0)
    if not len(masks):
        return None, None, None
    if target_heat is None:
        ok = kind_scores = None
        sized = object_sized(masks, max_area)
        bonus = 0.0 if stability is None else STABILITY_WEIGHT * stability
    else:
        scored = scored_target(rgb, masks, target_heat, target_text, after_text, max_area, min_colour,
                               scores, stability, any_object)
        if scored is None:
            return None, None, None
        ok, scores, kind_scores, sized, bonus = scored
    found = [scored_landmark(rgb, masks, heat, text, after, sized, min_colour,
                             None if given is None else per_mask(given, len(masks), "landmark scores"),
                             bonus) for heat, text, given, after in landmarks]
    (ok_a, a_scores, named_a), (ok_b, b_scores, named_b) = (found * 2)[:2] if len(found) == 1 else found[:2]
    apart = (overlap_matrix(masks) <= MAX_PAIR_IOU) & ~np.eye(len(masks), dtype=bool)
    pairs = sorted(((a_scores[j] + b_scores[k], int(j), int(k)) for j in np.flatnonzero(ok_a)
                    for k in np.flatnonzero(ok_b) if apart[j, k]), reverse=True)
    if ok is None:
        return (None, *pairs[0][1:]) if pairs else (None, best_of(ok_a, a_scores), None)
    centres = mask_centres(masks)
    after = after_text.replace(landmarks[-1][1], " ", 1) if len(landmarks) > 1 else after_text
    superlative = superlative_of(target_text, after, landmarks[0][1])
    named = named_a and named_b  # else a landmark may be any object: "between" says little
    if superlative is not None and pairs:
        # among the objects between the best-scored two landmarks that any allowed one stands between
        for _, j, k in pairs:
            clear = ok & apart[j] & apart[k]
            holding = clear & np.array([between(c, centres[j], centres[k]) for c in centres])
            if holding.any():
                break
        else:
            _, j, k = pairs[0]
            if named:  # "the biggest cube between the mug and the duck" with none there
                return None, j, k
            clear = ok & apart[j] & apart[k]
            holding = clear if clear.any() else ok
        return extreme(superlative, masks, holding, centres, stability, kind_scores,
                       ordinal_of(target_text, after_text), rgb), j, k
    chosen, best_score = None, -np.inf
    for total, j, k in pairs:
        for i in np.flatnonzero(ok & apart[j] & apart[k]):
            if total + scores[i] > best_score and between(centres[i], centres[j], centres[k]):
                chosen, best_score = (int(i), j, k), total + scores[i]
    if chosen is not None:
        return chosen
    if pairs and named:  # no three fit: nothing stands between the best two landmarks
        return None, *pairs[0][1:]
    # no two landmarks apart, or their words matched nothing: the target among the other objects
    j, k = pairs[0][1:] if pairs else (best_of(ok_a, a_scores), None)
    clear = ok.copy()
    for landmark in (j, k):
        if landmark is not None:
            clear &= apart[landmark]
    return best_of(clear if clear.any() else ok, scores), j, k
