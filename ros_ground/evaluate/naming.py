"""Does an answer name its ground-truth objects? Category and colour words, and where it points.

Each answer is scored for naming: which ground-truth objects it names with the right category
and colour, and whether the phrase naming one points inside it, which splits an error on a
scene set into naming and localisation; and which it names with the right category whatever
colour it says, which splits a naming error into category and colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ros_ground.evaluate.metrics import GTPhrase, PredPhrase, Vocabulary, point_in_mask
from ros_ground.evaluate.scenes import SIM_VOCABULARY
from ros_ground.sim.language import NUMBER_WORDS


@dataclass(frozen=True)
class Naming:
    """How one answer names its ground-truth objects."""

    num_gt: int
    named: int  # GT objects a phrase names with the right category and colour
    named_hit: int  # of those, objects whose naming phrase's point lies in their mask
    named_category: int = 0  # GT objects a phrase names with the right category, any colour

    @staticmethod
    def total(items: Sequence[Naming]) -> dict:
        """naming_accuracy = named / GT objects; named_point_accuracy = hits / named objects;
        category_naming_accuracy = named_category / GT objects."""
        gt, named, hit, category = (sum(getattr(n, k) for n in items)
                                    for k in ("num_gt", "named", "named_hit", "named_category"))
        return {"naming_accuracy": named / gt if gt else 0.0,
                "named_point_accuracy": hit / named if named else 0.0,
                "category_naming_accuracy": category / gt if gt else 0.0}


def _phrase_count(text: str) -> int:
    """How many objects a phrase names: its number word ('two red cubes' -> 2), else 1."""
    words = text.lower().split()
    return next((NUMBER_WORDS.index(w) for w in words if w in NUMBER_WORDS[2:]), 1)


def naming(preds: Sequence[PredPhrase], gt: Sequence[GTPhrase],
           vocabulary: Vocabulary = SIM_VOCABULARY) -> Naming:
    """Which GT objects the phrases name with the right category and colour word, and which
    with the right category whatever colour they say.

    One phrase names at most as many objects as its number word says; among equally named
    objects it takes the one its point lies in first, so `named_hit` measures localisation
    given correct naming. A GT object without a colour word needs only its category. The
    category count starts from the objects named with both and lets the phrases' unused names
    take the objects still free, so it is never below `named`.
    """
    parsed = [vocabulary.parse(g.text) for g in gt]
    free = set(range(len(gt)))
    slots = [(phrase, _phrase_count(phrase.text)) for phrase in preds]
    named, hit, slots = _assign(slots, parsed, gt, vocabulary, free, colour=True)
    extra, _, _ = _assign(slots, parsed, gt, vocabulary, free, colour=False)
    return Naming(len(gt), named, hit, named + extra)


def _assign(slots: list[tuple[PredPhrase, int]], parsed: list, gt: Sequence[GTPhrase],
            vocabulary: Vocabulary, free: set[int], colour: bool):
    """Each phrase names up to its count of the `free` objects it fits (taken from `free`):
    (objects named, of those pointed inside, the phrases with the names they did not use)."""
    named = hit = 0
    unused = []
    for phrase, count in slots:
        categories, color = vocabulary.parse(phrase.text)
        while count and categories:
            fits = [i for i in sorted(free) if parsed[i][0] & categories
                    and (not colour or parsed[i][1] in (None, color))]
            if not fits:
                break
            inside = [i for i in fits if point_in_mask(phrase.point, gt[i].mask)]
            chosen = (inside or fits)[0]
            free.discard(chosen)
            named += 1
            hit += bool(inside)
            count -= 1
        if count and categories:
            unused.append((phrase, count))
    return named, hit, unused
