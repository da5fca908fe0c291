"""The last step of attend-and-segment: from each phrase's heat map to its mask.

A phrase's heat map is the mean of its tokens' image-attention maps, upsampled to the image
(`phrase_heats`). In point mode SAM is prompted at the map's peak (`point_phrases`); in
entities mode the map scores mask proposals and each phrase takes the best ones, GROUNDHOG-style
(`entity_phrases`). The engine (engine.py) decides the mode and holds SAM while these run.

attend-and-segment: Cao, Gui and Wang, "Emerging Pixel Grounding in Large Multimodal Models
Without Grounding Supervision", arXiv:2410.08209. GROUNDHOG: Zhang et al., "GROUNDHOG:
Grounding Large Language Models to Holistic Segmentation", 2024, arXiv:2402.16846.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ros_ground.entities import EntitySelection, assign_entities, select_entities
from ros_ground.errors import shorten
from ros_ground.geometry import ImageGeometry, upsample_map
from ros_ground.maps import contrast_phrase_maps, no_peak_reason, peak_point, phrase_map, point_on_mask
from ros_ground.phrases import NounPhrase, later_mentions, tokens_in_span
from ros_ground.results import GroundedPhrase, Proposal

LOG = logging.getLogger(__name__)
PhraseTokens = list[tuple[NounPhrase, list[int]]]  # each phrase with the indices of its tokens


def find_phrase_tokens(spans: Sequence[tuple[int, int]], chunks: Sequence[NounPhrase],
                       phrase_tokens: str) -> PhraseTokens:
    """Each phrase of `chunks` with the indices of its tokens (tokens whose char `spans` it
    covers); phrases without tokens are left out.

    phrase_tokens: "chunk" (the whole noun chunk: on the sim model it grounds better) or "root"
    (its root noun, as attend-and-segment's appendix A does; else the chunk when the root has no
    token of its own).
    """
    found = [(chunk, _token_indices(spans, chunk, phrase_tokens)) for chunk in chunks]
    return [(chunk, indices) for chunk, indices in found if indices]


def _token_indices(spans, chunk: NounPhrase, phrase_tokens: str) -> list[int]:
    if phrase_tokens == "root":
        indices = tokens_in_span(spans, chunk.root_start, chunk.root_end)
        if indices:
            return indices
    return tokens_in_span(spans, chunk.char_start, chunk.char_end)


def phrase_heats(maps: np.ndarray, found: PhraseTokens, *, contrast: float,
                 geometry: ImageGeometry) -> list[np.ndarray]:
    """One heat map per phrase of `found`, on the image's pixels.

    maps: float32 [tokens, grid_h, grid_w], normalised (maps.normalise_maps). contrast: how much
    of the answer's other phrase maps is taken off each one (maps.contrast_phrase_maps).
    geometry: how the grid lies on the image (lmm.Generation.geometry).
    """
    low = np.stack([phrase_map(maps, indices) for _, indices in found])
    low = contrast_phrase_maps(low, contrast)
    return [upsample_map(m, geometry) for m in low]


def point_phrases(sam, image: np.ndarray, found: PhraseTokens, heats: Sequence[np.ndarray], *,
                  multimask_choice: str | int, image_key=None, zoom: bool = False,
                  only: set[tuple[int, int]] | None = None) -> list[GroundedPhrase]:
    """Point mode: each phrase's mask is SAM's for one point prompt at its heat map's peak.

    sam: the segmenter (sam.SamSegmenter), already holding `image`'s embedding or given
    `image_key` to find it. multimask_choice: "iou" (SAM's best-scored mask) or a fixed index.
    zoom: prompt on windows at SAM's input scale in a larger frame (SamSegmenter.segment_points).
    only: the (char_start, char_end) of the phrases to segment, of those in `found` (all when
    None). A phrase whose mask is empty scores 0. A phrase whose heat map has no peak (flat, or
    no finite value: maps.no_peak_reason) is not prompted: it is left `ungrounded`.
    """
    if only is not None:
        kept = [k for k, (chunk, _) in enumerate(found) if (chunk.char_start, chunk.char_end) in only]
        found, heats = [found[k] for k in kept], [heats[k] for k in kept]
    reasons = [no_peak_reason(heat) for heat in heats]
    peaked = [k for k, reason in enumerate(reasons) if reason is None]
    points = [peak_point(heats[k]) for k in peaked]
    segmented = sam.segment_points(image, points, multimask_choice, key=image_key, zoom=zoom) \
        if points else []
    prompted = dict(zip(peaked, zip(points, segmented)))
    out = []
    for k, (chunk, indices) in enumerate(found):
        if k not in prompted:
            out.append(ungrounded(chunk, indices, image.shape[:2], reasons[k]))
            continue
        point, (mask, score) = prompted[k]
        # SAM still predicts an IoU for a mask with no pixel (a 1x1 image); it grounds nothing
        out.append(GroundedPhrase(
            text=chunk.text, char_start=chunk.char_start, char_end=chunk.char_end,
            score=score if mask.any() else 0.0, mask=mask, point=point, token_indices=indices))
    return out


def ungrounded(chunk: NounPhrase, indices: list[int], shape: tuple[int, int],
               reason: str) -> GroundedPhrase:
    """`chunk` left ungrounded, as a command's absent phrase is (command.grounding): an empty
    mask of `shape` (H, W), no point or entity, score 0; `reason` is logged (a warning)."""
    LOG.warning("phrase %r (chars %d-%d) left ungrounded: %s", shorten(chunk.text), chunk.char_start,
                chunk.char_end, reason)
    return GroundedPhrase(text=chunk.text, char_start=chunk.char_start, char_end=chunk.char_end,
                          score=0.0, mask=np.zeros(shape, dtype=bool), point=None,
                          token_indices=indices)


def entity_phrases(found: PhraseTokens, heats: Sequence[np.ndarray], proposals: list[Proposal],
                   scores: np.ndarray, *, text: str, assignment: str,
                   margin: float) -> list[GroundedPhrase]:
    """Entities mode: each phrase takes the mask proposals its `scores` row picks.

    scores: [phrases, proposals] (entity_scoring.EntityScorer). text: the answer the phrases
    come from. assignment: "exclusive" (entities.assign_entities: one entity per phrase, as
    many as a plural names, none shared, later definite mentions excepted) or "independent"
    (entities.select_entities: each phrase merges the entities within `margin` of its best).
    margin: a share of the score range over the proposals (the entity_margin setting). A
    phrase whose row has no finite score (attention scoring of a map without a peak) is left
    `ungrounded`; the others are chosen among themselves.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scored = [k for k in range(len(found)) if np.isfinite(scores[k]).any()]
    chosen = [found[k] for k in scored]
    if assignment == "exclusive":
        free = later_mentions([chunk for chunk, _ in chosen], text)
        selections = assign_entities(
            [heats[k] for k in scored], proposals, free, counts=[chunk.count for chunk, _ in chosen],
            margin=margin, scores=scores[scored]) if scored else []
    else:
        selections = [select_entities(heats[k], proposals, margin=margin, scores=scores[k])
                      for k in scored]
    picked = dict(zip(scored, selections))
    shape = proposals[0].mask.shape if proposals else heats[0].shape
    return [entity_phrase(chunk, indices, heats[k], picked[k], proposals) if k in picked else
            ungrounded(chunk, indices, shape, no_peak_reason(heats[k]) or "no proposal has a score")
            for k, (chunk, indices) in enumerate(found)]


def entity_phrase(chunk: NounPhrase, indices: list[int], heat: np.ndarray,
                  selection: EntitySelection, proposals: list[Proposal]) -> GroundedPhrase:
    """The grounded phrase of `chunk` (tokens `indices`, heat map `heat`) for the proposals
    `selection` picked: their mean score, its mask, and its point on that mask."""
    by_id = {p.id: p for p in proposals}
    score = float(np.mean([by_id[i].score for i in selection.ids]))
    # The phrase's point lies on its mask (the hottest pixel there): a robot pointing or
    # grasping at it must not be sent to the table beside the object the mask shows.
    if selection.mask.any():
        point = point_on_mask(heat, selection.mask)
    else:
        point = peak_point(heat) if no_peak_reason(heat) is None else None
    return GroundedPhrase(
        text=chunk.text, char_start=chunk.char_start, char_end=chunk.char_end,
        score=score, mask=selection.mask, point=point,
        entity_ids=list(selection.ids), entity_scores=dict(selection.scores),
        token_indices=indices,
    )
