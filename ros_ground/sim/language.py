"""Texts about a rendered scene: description, referring expressions, questions with answers.

Everything is computed from what the camera sees (mask centroids in the image, depth along the
optical axis), never from world coordinates, so every statement is true *in the image*. A
relation counts only when it holds by a margin; a referring expression is kept only when its
target satisfies it clearly and every other candidate clearly does not, so none is ambiguous.
Pure Python and numpy: no pybullet here, so metrics and tests can use the vocabulary cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Colour words and the RGB used to paint recolourable objects.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.08, 0.08),
    "green": (0.1, 0.65, 0.15),
    "blue": (0.1, 0.25, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "orange": (1.0, 0.45, 0.0),
    "purple": (0.5, 0.15, 0.7),
    "white": (0.95, 0.95, 0.95),
    "black": (0.06, 0.06, 0.06),
}

PLURALS: dict[str, str] = {
    "mug": "mugs",
    "duck": "ducks",
    "teddy bear": "teddy bears",
    "lego brick": "lego bricks",
    "jenga block": "jenga blocks",
    "cube": "cubes",
    "sphere": "spheres",
    "soccer ball": "soccer balls",
    "torus": "tori",
    "tray": "trays",
    "cylinder": "cylinders",
    "object": "objects",
}

# Words a model may use for our categories; longest match wins when matching phrases.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "mug": ("mug", "cup", "coffee mug"),
    "duck": ("duck", "rubber duck", "duckling"),
    "teddy bear": ("teddy bear", "teddy", "bear", "plush toy", "stuffed animal"),
    "lego brick": ("lego brick", "lego", "brick", "lego block"),
    "jenga block": ("jenga block", "jenga", "jenga piece", "wooden block"),
    "cube": ("cube", "box", "block"),
    "sphere": ("sphere", "ball", "marble"),
    "soccer ball": ("soccer ball", "football", "ball"),
    "torus": ("torus", "ring", "donut", "doughnut"),
    "tray": ("tray", "plate", "dish"),
    "cylinder": ("cylinder", "can", "tube", "peg"),
}

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

RELATIONS = ("left of", "right of", "in front of", "behind")


@dataclass(frozen=True)
class ObjectFacts:
    """What the image shows of one object: category, colour word, mask centroid, depth."""

    category: str
    color: str | None
    cx: float  # mask centroid column (pixels)
    cy: float  # mask centroid row (pixels)
    depth: float  # median camera-frame z of the visible pixels (metres)

    @property
    def name(self) -> str:
        return f"{self.color} {self.category}" if self.color else self.category


@dataclass(frozen=True)
class Margins:
    """How clearly a relation must hold: pixels for left/right, metres for front/behind."""

    px: float
    depth: float


@dataclass(frozen=True)
class Phrase:
    """A span of the description and the objects it names (indices into the scene's objects)."""

    start: int
    end: int
    text: str
    objects: tuple[int, ...]


@dataclass
class SceneTexts:
    description: str
    phrases: list[Phrase]
    referring: list[tuple[str, int]]
    questions: list[tuple[str, str]]


def default_margins(width: int) -> Margins:
    """4 % of the image width sideways and 3 cm in depth: clear to a person looking at the image."""
    return Margins(px=0.04 * width, depth=0.03)


def facts_from_masks(categories: Sequence[str], colors: Sequence[str | None],
                     masks: Sequence[np.ndarray], depth: np.ndarray) -> list[ObjectFacts]:
    """Image-plane facts of each object from its visible mask and the depth image."""
    facts = []
    for category, color, mask in zip(categories, colors, masks):
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            raise ValueError(f"empty mask for {category}")
        facts.append(ObjectFacts(category, color, float(cols.mean()), float(rows.mean()),
                                 float(np.median(depth[rows, cols]))))
    return facts


def relation_score(rel: str, a: ObjectFacts, b: ObjectFacts) -> float:
    """Signed evidence that `a REL b`: positive when it holds (pixels or metres)."""
    if rel == "left of":
        return b.cx - a.cx
    if rel == "right of":
        return a.cx - b.cx
    if rel == "in front of":
        return b.depth - a.depth
    if rel == "behind":
        return a.depth - b.depth
    raise ValueError(f"unknown relation {rel!r}")


def relation_holds(rel: str, a: ObjectFacts, b: ObjectFacts, margins: Margins) -> bool | None:
    """True when `a REL b` clearly holds, False when it clearly does not, None in between."""
    margin = margins.px if rel in ("left of", "right of") else margins.depth
    score = relation_score(rel, a, b)
    if score > margin:
        return True
    if score < -margin:
        return False
    return None


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" else "a"


def indefinite(name: str, count: int = 1) -> str:
    """'a red mug', 'an orange cube', 'two blue cubes'."""
    if count == 1:
        return f"{article(name)} {name}"
    words = name.split(" ")
    category = next((c for c in PLURALS if name.endswith(c)), words[-1])
    plural = name[: len(name) - len(category)] + PLURALS.get(category, category + "s")
    return f"{NUMBER_WORDS[count] if count < len(NUMBER_WORDS) else count} {plural}"


def join_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _unique_names(facts: Sequence[ObjectFacts]) -> dict[int, str]:
    """Index -> 'the <name>' for objects whose full name is unique in the scene."""
    names = [f.name for f in facts]
    return {i: f"the {n}" for i, n in enumerate(names) if names.count(n) == 1}


def _heads(facts: Sequence[ObjectFacts], i: int) -> list[tuple[str, list[int]]]:
    """Head nouns for object i with the objects each one denotes; equal denotations deduplicated."""
    target = facts[i]
    by_cat = [j for j, f in enumerate(facts) if f.category == target.category]
    heads = [(target.category, by_cat)]
    if target.color:
        by_name = [j for j in by_cat if facts[j].color == target.color]
        if by_name == by_cat:
            heads = [(target.name, by_name)]  # same objects: keep the more descriptive head
        else:
            heads.append((target.name, by_name))
    return heads


def referring_expressions(facts: Sequence[ObjectFacts], margins: Margins) -> list[tuple[str, int]]:
    """Every unambiguous referring expression we can build, as (expression, object index)."""
    unique = _unique_names(facts)
    out: list[tuple[str, int]] = []
    everyone = list(range(len(facts)))
    for i, target in enumerate(facts):
        heads = _heads(facts, i)
        for head, group in heads:
            if group == [i]:
                out.append((f"the {head}", i))
        if len(facts) >= 2:
            heads = heads + [("object", everyone)]
        for head, group in heads:
            for landmark, landmark_np in unique.items():
                if landmark == i or head == "object":
                    continue
                for rel in RELATIONS:
                    if relation_holds(rel, target, facts[landmark], margins) is not True:
                        continue
                    others = [j for j in group if j not in (i, landmark)]
                    if all(relation_holds(rel, facts[j], facts[landmark], margins) is False for j in others):
                        out.append((f"the {head} {rel} {landmark_np}", i))
            others = [j for j in group if j != i]
            if not others:
                continue
            if all(target.cx < facts[j].cx - margins.px for j in others):
                out.append((f"the leftmost {head}", i))
            if all(target.cx > facts[j].cx + margins.px for j in others):
                out.append((f"the rightmost {head}", i))
            if all(target.depth < facts[j].depth - margins.depth for j in others):
                out.append((f"the {head} closest to the camera", i))
            if all(target.depth > facts[j].depth + margins.depth for j in others):
                out.append((f"the {head} farthest from the camera", i))
    return out


def _describe_set(facts: Sequence[ObjectFacts], indices: Sequence[int]) -> str:
    """'a blue cube and two yellow ducks' for a set of objects, left to right."""
    groups: dict[str, int] = {}
    for j in sorted(indices, key=lambda k: facts[k].cx):
        groups[facts[j].name] = groups.get(facts[j].name, 0) + 1
    return join_list([indefinite(n, c) for n, c in groups.items()])


def questions_answers(facts: Sequence[ObjectFacts], margins: Margins,
                      absent: Sequence[str] = ()) -> list[tuple[str, str]]:
    """Every question we can answer with certainty from the image, as (question, answer).

    `absent` lists category names not in the scene, for counting and existence questions whose
    answer is no.
    """
    unique = _unique_names(facts)
    qa: list[tuple[str, str]] = []
    for landmark, landmark_np in unique.items():
        for rel in RELATIONS:
            verdicts = {j: relation_holds(rel, facts[j], facts[landmark], margins)
                        for j in range(len(facts)) if j != landmark}
            if any(v is None for v in verdicts.values()):
                continue
            hits = [j for j, v in verdicts.items() if v]
            answer = _cap(_describe_set(facts, hits)) + "." if hits else "Nothing."
            qa.append((f"What is {rel} {landmark_np}?", answer))
    categories = sorted({f.category for f in facts})
    for category in categories:
        count = sum(f.category == category for f in facts)
        qa.append((f"How many {PLURALS[category]} are there?", _cap(NUMBER_WORDS[count]) + "."))
    for category in absent:
        qa.append((f"How many {PLURALS[category]} are there?", "None."))
        qa.append((f"Is there {indefinite(category)} on the table?", "No."))
    for i, f in enumerate(facts):
        if f.color and sum(g.category == f.category for g in facts) == 1:
            qa.append((f"What colour is the {f.category}?", _cap(f.color) + "."))
        if i in unique:
            qa.append((f"Is there {indefinite(f.name)} on the table?", "Yes."))
    if len(facts) >= 2:
        order = sorted(range(len(facts)), key=lambda k: facts[k].depth)
        nearest, second = order[0], order[1]
        if nearest in unique and facts[second].depth - facts[nearest].depth > margins.depth:
            qa.append(("Which object is closest to the camera?", _cap(unique[nearest]) + "."))
        order = sorted(range(len(facts)), key=lambda k: facts[k].cx)
        leftmost, second = order[0], order[1]
        if leftmost in unique and facts[second].cx - facts[leftmost].cx > margins.px:
            qa.append(("Which object is furthest to the left?", _cap(unique[leftmost]) + "."))
    for a, a_np in unique.items():
        for b, b_np in unique.items():
            if a >= b:
                continue
            for rel in RELATIONS:
                verdict = relation_holds(rel, facts[a], facts[b], margins)
                if verdict is not None:
                    qa.append((f"Is {a_np} {rel} {b_np}?", "Yes." if verdict else "No."))
    return qa


def describe(facts: Sequence[ObjectFacts], margins: Margins, rng: np.random.Generator,
             max_relations: int = 2) -> tuple[str, list[Phrase]]:
    """'A red mug, a yellow duck and two blue cubes on a wooden table. The red mug is left of ...'.

    Objects are listed left to right, equal names grouped; then up to `max_relations` relation
    sentences between uniquely named objects. Returns the text and its object phrases.
    """
    if not facts:
        return "Nothing on the wooden table.", []
    groups: dict[str, list[int]] = {}
    for j in sorted(range(len(facts)), key=lambda k: facts[k].cx):
        groups.setdefault(facts[j].name, []).append(j)
    text = ""
    phrases: list[Phrase] = []

    def add(piece: str, objects: Sequence[int] | None = None) -> None:
        nonlocal text
        if objects is not None:
            phrases.append(Phrase(len(text), len(text) + len(piece), piece, tuple(objects)))
        text += piece

    items = list(groups.items())
    for k, (name, members) in enumerate(items):
        if k > 0:
            add(" and " if k == len(items) - 1 else ", ")
        piece = indefinite(name, len(members))
        add(_cap(piece) if k == 0 else piece, members)
    add(" on a wooden table.")

    unique = _unique_names(facts)
    candidates = []
    for a in unique:
        for b in unique:
            if a < b:
                for rel in RELATIONS:
                    if relation_holds(rel, facts[a], facts[b], margins):
                        candidates.append((a, rel, b))
    order = rng.permutation(len(candidates)) if candidates else []
    used: set[frozenset[int]] = set()
    for k in order:
        a, rel, b = candidates[int(k)]
        if frozenset((a, b)) in used or len(used) >= max_relations:
            continue
        used.add(frozenset((a, b)))
        add(" ")
        add(_cap(unique[a]), [a])
        add(f" is {rel} ")
        add(unique[b], [b])
        add(".")
    return text, phrases


def _round_robin(pools: Sequence[list], limit: int) -> list:
    out: list = []
    pools = [list(p) for p in pools if p]
    while pools and len(out) < limit:
        for pool in pools:
            if pool and len(out) < limit:
                out.append(pool.pop(0))
        pools = [p for p in pools if p]
    return out


def scene_texts(facts: Sequence[ObjectFacts], margins: Margins, rng: np.random.Generator,
                absent: Sequence[str] = (), max_relations: int = 2, max_referring: int = 12,
                max_questions: int = 10) -> SceneTexts:
    """All texts for one scene, subsampled deterministically from `rng`.

    Referring expressions are spread over the objects (round robin), questions over kinds.
    """
    description, phrases = describe(facts, margins, rng, max_relations)
    per_object: list[list[tuple[str, int]]] = [[] for _ in facts]
    for expr, i in referring_expressions(facts, margins):
        per_object[i].append((expr, i))
    per_object = [[pool[k] for k in rng.permutation(len(pool))] for pool in per_object]
    referring = _round_robin(per_object, max_referring)

    qa = questions_answers(facts, margins, absent)
    kinds: dict[str, list[tuple[str, str]]] = {}
    for q, a in qa:
        kinds.setdefault(" ".join(q.split(" ")[:2]), []).append((q, a))
    pools = [[pool[k] for k in rng.permutation(len(pool))] for pool in kinds.values()]
    pools = [pools[k] for k in rng.permutation(len(pools))]
    questions = _round_robin(pools, max_questions)
    return SceneTexts(description, phrases, referring, questions)
