"""Which entity proposal a command's referring expression means, from its own words.

The prefill attention of the command's target phrase alone picks the right proposal for about
a third of the sim commands (it ranks the object first 23% of the time, among ~15 proposals
that include object parts and the table). The words of a referring expression say more than
where the model looked, and three kinds can be checked on the proposals without a model:
- colour words, before the noun or stated after it ("the *red* mug", "the mug that is *red*",
  "the *non-red* mug": colour_words.named_colours): at least MIN_COLOUR of the mask's pixels
  of each colour named (colour_words.colour_share), under it of each one ruled out; none on a
  frame without colour (a mono camera's: colour_words.judged_colours);
- a spatial relation to a landmark ("the mug *left of* the tray", "behind", "in front of"):
  the target and the landmark are chosen as a pair, different objects for which the relation
  holds in the image (left/right: mask centroid column; front/behind: the mask's lowest row,
  nearer objects on a table reaching lower in the picture), maximising the two phrases' summed
  scores (below); with no such pair the target is absent ("the red cube right of the blue
  cube" with every red cube left of it: acting on one would do what the command rules out),
  the landmark the best-scored one, unless the landmark's colour words matched no object (any
  may then be taken for it: the target by its own scores); the wordings are
  spatial_words.RELATIONS, after an optional adverb ("*right* behind"). Nearness ("the mug
  *next to* the duck", "beside", "nearest to") ranks instead: the landmark by its own scores,
  then, of the target's kind (as for a superlative), the object whose centroid column and
  lowest row are nearest the landmark's in the image;
- superlatives ("the *leftmost* object", "the cube *closest to the camera*", "the mug *on the
  left*", "the *biggest* mug": spatial_words.superlative_of): the extreme mask among the
  objects the words allow and, when the phrase names a kind ("cube", not "object"), whose score
  is within extremes.SUPERLATIVE_KIND_MARGIN of the best of them (of one kind: the biggest object in view
  is seldom the biggest mug); with a relation too ("the leftmost cube behind the tray"), among
  those for which it holds with the best-scored landmark. An ordinal ("the *second* mug from
  the left", "the third biggest cube": spatial_words.ordinal_of) takes the k-th object in the
  same order, and no mask when fewer than k are compared; "the middle mug" the object halfway
  along them from left to right. Only the target's own: on the landmark ("the cube left of the
  *leftmost* duck") it is left to the landmark's scores, since the extreme object of any kind
  is seldom the extreme duck. A superlative compares whole objects, so masks touching the
  image border are left out (the table's edge, the floor, or an object the frame cuts, whose
  extreme is unknown) and, given SAM's stability scores, so are masks less stable than the
  most stable of the rest by more than extremes.SUPERLATIVE_STABILITY_MARGIN (the pieces of
  table texture and shadow below); all the non-empty allowed masks when that leaves none.
Otherwise the phrase's entity scores decide among what the words allow: those of the engine's
`entity_scoring` when given (retrieval with the entity tokens included), else attention
(entities.score_entities of the phrase's prefill map); when the words rule out every proposal
they are ignored, though for a command's target `absent` first tells whether the frame holds
anything the phrase can be. Masks larger than `max_area` of the image (the table, the floor) are
never a target, a landmark or a superlative's candidate: a command names things to act on; nor are
masks more than MAX_AREA_OVER_MEDIAN times the median area of the frame's masks within
`max_area` (`object_sized`), the same rule at the proposals' own scale: on an 800x450 frame
from a far camera the objects cover 0.05-2% of it, and light table patches of 2-12% pass
`max_area` and the colour word "white" (docs/MEASUREMENTS.md, "Where the ood command gap is").
The median depends on what the proposals hold: many small part masks lower it.

Each score (target and landmark) gains COLOUR_WEIGHT x the mask's share of the phrase's colour
(`colour_match`): among the masks the colour words allow (at least MIN_COLOUR of it), an object
of that colour is mostly of it, a mask of an object and the table beside it only partly (no gain
when the words rule out every mask and are ignored).
Given the masks' SAM stability scores, each score also gains STABILITY_WEIGHT x stability. On a
camera unlike the training one SAM also proposes pieces of table texture, shadow and table edge
small enough to pass the size rule; the tokens scores do not tell them from objects, but SAM's
stability score (the IoU of the mask binarised at two logit thresholds, its own objectness
filter) does: on 40 ood command frames it ranks object proposals above background ones with
AUC 0.80, against 0.50 for the tokens scores (measured in docs/MEASUREMENTS.md, "Stability in
the command's choice"; the colour and superlative rules in the sections after it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ros_ground.command.colour_words import colour_share, judged_colours
from ros_ground.command.extremes import extreme, of_kind, superlative_candidates
from ros_ground.command.spatial_words import ordinal_of, relation_after, superlative_of
from ros_ground.entities import score_entities
from ros_ground.masks import self_iou_matrix

MAX_AREA = 0.2
# command targets are at most 5.4 times the frame's median mask (in distribution) and 4.0 times
# (ood); the light table patches ood commands chose as "white" objects were 27-61 times it
MAX_AREA_OVER_MEDIAN = 10.0
MIN_COLOUR = 0.4
MAX_PAIR_IOU = 0.2  # a target and its landmark overlapping more are one object
# "next to" a landmark, for a superlative to choose among: within twice the nearest object's
# distance (two mugs either side of a tray are both next to it; one across the table is not)
NEAR_FACTOR = 2.0
STABILITY_WEIGHT = 0.5
COLOUR_WEIGHT = 0.5


def mask_centres(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Float [N, 2]: (centroid column, lowest row) in pixels per HxW mask (NaN for an empty
    mask), the point the relations compare (module docstring)."""
    out = np.full((len(masks), 2), np.nan)
    for i, mask in enumerate(masks):
        rows, cols = np.nonzero(mask)
        if rows.size:
            out[i] = cols.mean(), rows.max()
    return out


def _holds(relation: str, a: np.ndarray, b: np.ndarray) -> bool:
    # "near" ranks rather than holds: `_nearest` chooses among the pairs
    return {"left": a[0] < b[0], "right": a[0] > b[0], "front": a[1] > b[1],
            "behind": a[1] < b[1], "near": True}[relation]


def _nearest(candidates: np.ndarray, j: int, centres: np.ndarray,
             kind_scores: np.ndarray | None) -> int | None:
    """Index of the mask of `candidates` (indices) whose (centroid column, lowest row) is
    nearest landmark `j`'s in the image, among those whose `kind_scores` are within
    extremes.SUPERLATIVE_KIND_MARGIN of the best ("the mug next to the duck": of the mugs); None
    when there are none."""
    if not len(candidates):
        return None
    candidates = of_kind(candidates, kind_scores)
    distance = np.hypot(*(centres[candidates] - centres[j]).T)
    return int(candidates[int(np.argmin(distance))])


def _near_to(candidates: np.ndarray, j: int, centres: np.ndarray) -> np.ndarray:
    """Bool [N]: the masks of `candidates` (bool [N]) whose (centroid column, lowest row) lies
    within NEAR_FACTOR times the nearest one's distance of landmark `j`'s: the objects "next to"
    it, of which a superlative then picks one."""
    distance = np.hypot(*(centres - centres[j]).T)
    nearest = np.nanmin(np.where(candidates, distance, np.nan))
    return candidates & (distance <= NEAR_FACTOR * max(nearest, 1.0))


def per_mask(values, n: int, name: str, low: float = -np.inf, high: float = np.inf) -> np.ndarray:
    """`values` as float64 [n], one per mask; ValueError naming `name` when they are not n
    finite numbers in [low, high]."""
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be one number per mask: {exc}") from None
    if values.shape != (n,):
        raise ValueError(f"{name} must be one number per mask ({n}), got shape {values.shape}")
    bad = ~(np.isfinite(values) & (values >= low) & (values <= high))
    if bad.any():
        raise ValueError(f"{name} must be finite and in [{low}, {high}]; mask {int(np.argmax(bad))} "
                         f"has {values[bad][0]}")
    return values


def _colour_shares(rgb: np.ndarray, masks: Sequence[np.ndarray], words: Sequence[str]) -> np.ndarray:
    """Float [words, N]: colour_share of each mask for each of the colour `words`."""
    return np.array([[colour_share(rgb, m, w) for m in masks] for w in words],
                    dtype=np.float64).reshape(len(words), len(masks))


def object_sized(masks: Sequence[np.ndarray], max_area: float = MAX_AREA,
                 max_area_over_median: float = MAX_AREA_OVER_MEDIAN) -> np.ndarray:
    """Bool [N]: masks (HxW bool) that may be an object: at most `max_area` of the image and
    at most `max_area_over_median` times the median area of the non-empty masks within it. The
    smallest of those always passes, so the rule never empties what `max_area` leaves."""
    area = np.array([np.asarray(m).mean() for m in masks], dtype=np.float64).reshape(len(masks))
    small = area <= max_area
    sized = area[small & (area > 0)]
    if len(sized):
        small &= area <= max_area_over_median * float(np.median(sized))
    return small


def _words(rgb: np.ndarray, masks: Sequence[np.ndarray], phrase: str, sized: np.ndarray,
           min_colour: float, after_text: str = "", shares: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(`allowed`, the colour_match the score gains, 0 where the colour words were ignored;
    whether they were used: False when they ruled out every mask, True when the phrase names
    no colour), given `sized`, the masks' `object_sized`, and `shares`, the `_colour_shares` of
    the colours the phrase names if computed (one pass over the masks for every phrase)."""
    named, ruled_out = judged_colours(rgb, phrase, after_text)
    shares = _colour_shares(rgb, masks, named) if shares is None else shares
    keep = sized & (shares >= min_colour).all(axis=0) \
        & (_colour_shares(rgb, masks, ruled_out) < min_colour).all(axis=0)
    if keep.any():
        return keep, _mean_share(shares), True
    return sized, np.zeros(len(masks)), not (named or ruled_out)


def absent(rgb: np.ndarray, masks: Sequence[np.ndarray], phrase: str, scores: np.ndarray | None,
           min_score: float | None = None, max_area: float = MAX_AREA,
           min_colour: float = MIN_COLOUR, after_text: str = "") -> bool:
    """Whether none of `masks` (HxW bool) on `rgb` (HxWx3 uint8) can be `phrase`, a command's
    target followed by `after_text` ("that is purple": colour_words.named_colours), though some
    are `object_sized`: no such mask has min_colour of any colour it names (a ruled-out one,
    "non-purple", counts for none), or, given `min_score`, none that `allowed` leaves has a
    score in `scores` (float [N], its entity scores; None only without `min_score`) of at least
    that. False with no object-sized mask (a close-up, an empty view: nothing to judge by). An
    object the proposals miss is absent too. A retrieval score is a cosine of the phrase with
    each entity token, so a kind the frame lacks matches every proposal poorly; the threshold
    is the model's (docs/MEASUREMENTS.md, "Commands about absent objects")."""
    sized = object_sized(masks, max_area)
    if not sized.any():
        return False
    shares = _colour_shares(rgb, masks, judged_colours(rgb, phrase, after_text)[0])
    if len(shares) and not (sized & (shares >= min_colour).any(axis=0)).any():
        return True
    if min_score is None:
        return False
    ok = _words(rgb, masks, phrase, sized, min_colour, after_text, shares)[0]
    return float(np.max(np.asarray(scores, np.float64)[ok])) < min_score


def allowed(rgb: np.ndarray, masks: Sequence[np.ndarray], phrase: str,
            max_area: float = MAX_AREA, min_colour: float = MIN_COLOUR,
            after_text: str = "") -> np.ndarray:
    """Bool [N]: masks that may be what `phrase` (followed by `after_text`) names:
    `object_sized` (at most `max_area` of the image and MAX_AREA_OVER_MEDIAN times the frame's
    median mask), at least `min_colour` of their pixels of each colour it names and under that
    of each it rules out (colour_words.named_colours). When the colours rule out every mask,
    the size rule alone (words can be wrong)."""
    return _words(rgb, masks, phrase, object_sized(masks, max_area), min_colour, after_text)[0]


def colour_match(rgb: np.ndarray, masks: Sequence[np.ndarray], phrase: str,
                 after_text: str = "") -> np.ndarray:
    """Float [N] in [0, 1]: each mask's colour_share of the colours `phrase` (followed by
    `after_text`) names (their mean with several); 0 for every mask when it names none."""
    return _mean_share(_colour_shares(rgb, masks, judged_colours(rgb, phrase, after_text)[0]))


def _mean_share(shares: np.ndarray) -> np.ndarray:
    return shares.mean(axis=0) if len(shares) else np.zeros(shares.shape[1])


def scored_target(rgb, masks, heat, text, after, max_area, min_colour, scores, stability, any_object):
    """(ok, scores, kind_scores, sized, bonus) of a target phrase for resolve_pair and
    between.resolve_between (their arguments): bool [N], the masks its words allow; float [N],
    its scores with the stability and colour gains; its scores before them, to tell its kind by
    (None for `any_object`); bool [N], the masks' `object_sized`; the stability gain (0.0 or
    float [N]). None when no mask may be it. ValueError for `scores` not one number per mask."""
    if scores is not None:
        scores = per_mask(scores, len(masks), "scores")
    bonus = 0.0 if stability is None else STABILITY_WEIGHT * stability
    if not len(masks):
        return None
    sized = object_sized(masks, max_area)
    ok, colour, _ = _words(rgb, masks, text, sized, min_colour, after)
    if not ok.any():
        return None
    if any_object:
        ok = superlative_candidates(masks, ok, stability)
    if scores is None:
        scores = score_entities(heat, list(masks))
    return ok, scores + bonus + COLOUR_WEIGHT * colour, None if any_object else scores, sized, bonus


def scored_landmark(rgb, masks, heat, text, after, sized, min_colour, scores, bonus):
    """(bool [N], the masks a landmark phrase's words allow; float [N], its `scores`, or the
    attention scores of `heat` when None, with the stability gain `bonus` and the colour gain;
    whether its colour words matched a mask, so the landmark is the object they name: with
    "the green tray" matching none, any object may be taken for it, and a relation that holds
    for no pair says nothing of the target)."""
    ok, colour, matched = _words(rgb, masks, text, sized, min_colour, after)
    if scores is None:
        scores = score_entities(heat, list(masks))
    return ok, scores + bonus + COLOUR_WEIGHT * colour, matched


def resolve_pair(rgb: np.ndarray, masks: Sequence[np.ndarray], target_heat: np.ndarray,
                 target_text: str, after_text: str = "", landmark_heat: np.ndarray | None = None,
                 landmark_text: str = "", max_area: float = MAX_AREA,
                 min_colour: float = MIN_COLOUR, scores: np.ndarray | None = None,
                 landmark_scores: np.ndarray | None = None,
                 stability: np.ndarray | None = None, any_object: bool = False,
                 landmark_after: str = "") -> tuple[int | None, int | None]:
    """(target, landmark): indices into `masks` (the frame's entity proposals, HxW bool) of the
    target, None when no mask may be it (also with a landmark: the relation, or a superlative's
    with it, holds for no mask the words allow, so the target is absent), and of the landmark
    the relation was judged against ("the tray" the chosen mug is left of), None without a
    relation (`landmark_heat` None) or when no mask may be it.

    `target_heat`: the target phrase's attention map at the image's size; `target_text`: the
    phrase ("the red mug"); `after_text`: the command's text after it ("left of the tray.";
    a colour stated there is the target's: "that is red.", colour_words.colours_after);
    `landmark_heat`/`landmark_text`: the phrase after a relation ("the tray"), None / "" without
    one; `landmark_after`: the text after it, where its colour may be stated ("that is green");
    `landmark_text` alone (a destination: "put the cube behind *the leftmost tray*") keeps its
    superlative off the target (`superlative_of`). `max_area`, `min_colour`: see `allowed`.
    `scores` / `landmark_scores`: float [N], the phrases' scores of each mask under the engine's
    `entity_scoring` (attention, retrieval or both); default the attention score of
    `target_heat` / `landmark_heat` (entities.score_entities). `stability`: float [N] in [0, 1],
    SAM's stability score of each mask (Proposal.stability), which raises the scores and narrows
    a superlative's candidates (`superlative_candidates`); None for neither. The rule is in the
    module docstring. ValueError when a given `scores`, `landmark_scores` or `stability` is not
    one finite number per mask (stability in [0, 1]). `any_object`: the target phrase names no
    kind ("the object", "it"), so its scores say little: the target is then one of the whole,
    stable objects a superlative compares (`superlative_candidates`), not the strip of floor
    beyond the table that the frame's border cuts.
    """
    if landmark_scores is not None:
        landmark_scores = per_mask(landmark_scores, len(masks), "landmark_scores")
    if stability is not None:
        stability = per_mask(stability, len(masks), "stability", 0.0, 1.0)
    scored = scored_target(rgb, masks, target_heat, target_text, after_text, max_area, min_colour,
                            scores, stability, any_object)
    if scored is None:
        return None, None
    ok, scores, kind_scores, sized, bonus = scored
    superlative = superlative_of(target_text, after_text, landmark_text)
    rank = ordinal_of(target_text, after_text)
    centres = mask_centres(masks)
    # "between" one landmark ("the cube between the mug": between.resolve_between takes two) is near it
    relation = {"between": "near"}.get(found := relation_after(after_text), found)
    paired = relation is not None and landmark_heat is not None
    if superlative is not None and not paired:
        return extreme(superlative, masks, ok, centres, stability, kind_scores, rank, rgb), None
    best = int(np.flatnonzero(ok)[int(np.argmax(scores[ok]))])
    if not paired:
        return best, None
    ok_landmark, landmark_scores, named = scored_landmark(rgb, masks, landmark_heat, landmark_text,
                                                           landmark_after, sized, min_colour, landmark_scores,
                                                           bonus)

    apart = self_iou_matrix(masks) <= MAX_PAIR_IOU

    def pair(i: int, j: int) -> bool:  # two objects, related as the words say
        return i != j and bool(apart[i, j]) and _holds(relation, centres[i], centres[j])

    def best_landmark(exclude: int | None = None) -> int | None:
        return best_of(ok_landmark & (np.arange(len(masks)) != exclude), landmark_scores)

    if relation == "near" and superlative is None:  # of the target's kind, the one nearest it
        j = best_landmark()
        if j is None:
            return best, None
        others = np.flatnonzero(ok & np.array([pair(i, j) for i in range(len(masks))], dtype=bool))
        target = _nearest(others, j, centres, kind_scores)
        return (best, best_landmark(best)) if target is None else (target, j)
    if superlative is not None:  # "the leftmost cube behind the tray": among those behind it,
        # of the best-scored landmark that any allowed object stands so to
        j, holding = best_landmark(), ok
        for k in sorted(np.flatnonzero(ok_landmark), key=lambda k: -landmark_scores[k]):
            held = ok & np.array([pair(i, k) for i in range(len(masks))], dtype=bool)
            if held.any():
                j, holding = int(k), (_near_to(held, k, centres) if relation == "near" else held)
                break
        else:
            if j is not None and named:  # "the leftmost cube behind the tray" with none behind it
                return None, j
        target = extreme(superlative, masks, holding, centres, stability, kind_scores, rank, rgb)
        return target, (j if target != j else best_landmark(target))
    chosen, best_score = None, -np.inf
    for i in np.flatnonzero(ok):
        for j in np.flatnonzero(ok_landmark):
            total = scores[i] + landmark_scores[j]
            if total > best_score and pair(i, j):
                chosen, best_score = (int(i), int(j)), total
    if chosen is not None:
        return chosen
    if named and ok_landmark.any():  # no pair the relation holds for: no target
        return None, best_landmark()
    return best, best_landmark(best)  # the landmark's words matched nothing: the target by its own


def best_of(allowed: np.ndarray, scores: np.ndarray) -> int | None:
    """Index of the highest of `scores` (float [N]) where `allowed` (bool [N]), None for none."""
    return int(np.argmax(np.where(allowed, scores, -np.inf))) if allowed.any() else None
