"""Entity selection accuracy: how often a phrase's chosen entity is the object it names.

Separate from GCG mask recall, which also counts phrases the scorer never had a chance on
(no proposal covers the object): this one reads only the choice among the proposals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ros_ground.evaluate.metrics import IOU_HIT, GTPhrase, Vocabulary, match_phrase
from ros_ground.masks import iou
from ros_ground.results import GroundedPhrase


def selection_counts(phrases: Sequence[GroundedPhrase], gt: Sequence[GTPhrase],
                     vocabulary: Vocabulary) -> tuple[int, int]:
    """(correct, counted) over the phrases that chose entities and name a ground-truth object
    by the `vocabulary`'s words: correct when the chosen mask has IoU >= 0.5 with an object the
    phrase names (or with the union of them, for a plural)."""
    correct = counted = 0
    names = [g.text for g in gt]
    for phrase in phrases:
        if not phrase.entity_ids or phrase.mask is None:
            continue
        named = match_phrase(phrase.text, names, vocabulary) if names else []
        if not named:
            continue
        counted += 1
        masks = [np.asarray(gt[i].mask, dtype=bool) for i in named]
        best = max(iou(phrase.mask, m) for m in [*masks, np.logical_or.reduce(masks)])
        correct += int(best >= IOU_HIT)
    return correct, counted
