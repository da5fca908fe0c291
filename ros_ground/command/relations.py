"""What a command's spatial words make of the phrases around its target: the landmark a
relation relates it to, which chooses it ("the mug left of *the tray*"), and, for an object a
placing verb moves (parse.PLACEMENT_VERBS), its destination ("put the mug *behind the tray*",
"*on the shelf*") and what says which destination it is ("the tray *left of the duck*").

A relation right after a placed object, with no copula, says where it goes, unless a
destination follows its landmark ("put the mug left of the tray *on the shelf*": the relation
then says which mug); a relation after the destination says which one ("put the mug behind the
tray *left of the duck*"). The place prepositions (`PLACE_WORDS`: on, in, next to, to, under,
above) name a destination only: "the mug on the tray" is not judged in the image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ros_ground.command.corrections import after_correction
from ros_ground.command.fronted import (
    NOT_THINGS,
    PAUSE,
    asks_to_act,
    fronted_relation,
    fronted_side,
    sentence_opening,
)
from ros_ground.command.parse import (
    AND,
    CARRYING_VERBS,
    PLACEMENT_VERBS,
)
from ros_ground.command.spatial_words import (
    RELATION_NAMES,
    comparative_after,
    nearness_after,
    relation_after,
    relation_only,
    side_after,
    without_measures,
)
from ros_ground.phrases import PLACE_NOUNS, NounPhrase

# a destination after a landmark, which makes the relation before it a description again: "put
# the mug left of the tray *on the shelf*"; not "to hide it", "at once", "on the left"
_DESTINATION = re.compile(
    r"^[\s,]*(?:to|on|onto|into|in|inside|at|near|next\s+to|beside|by|under|over|above|below|"
    r"between|on\s+top\s+of)\s+(?:the|a|an|my|your|his|her|its|our|their|this|that|these|those)"
    r"\s+(?!(?:" + "|".join(sorted(PLACE_NOUNS)) + r")\b)\w", re.IGNORECASE)


def target_relation(text: str, chunks: list[NounPhrase], target: int, placed: bool = False
                    ) -> tuple[int, str | None, str, bool]:
    """(landmark, relation, after, destination) of the target phrase `chunks[target]` of `text`:
    the index in `chunks` of the phrase right after a spatial relation ("left of *the tray*"),
    after "to" of an unplaced target whose phrase says "nearest" or "closest" ("the nearest cube
    to *the duck*") or, before the target, of a fronted one (`fronted_relation`), -1 when none;
    the relation (spatial_words.relation_after's key), None when none; the text the relation is
    read from (the text after the target; "left of the tray" for a fronted one, "nearest to the
    duck" for "nearest ... to"); and whether the relation says
    where a `placed` target goes (`is_destination`)."""
    chunk = chunks[target]
    after = text[chunk.char_end:]
    relation = relation_to_next(text, chunks, target)
    if relation:
        landmark = target + 1
        return landmark, relation, after, placed and is_destination(text, chunk, chunks[landmark])
    if _nearest_to(text, chunks, target, placed):
        # "the nearest cube *to the duck*" reads as "the cube nearest to the duck"
        return target + 1, "near", f" nearest to {text[chunks[target + 1].char_start:]}", False
    for first in (target - 1, target - 2):  # "between the duck and the tray, grab the cube": two
        if first < 0 or (first < target - 1 and second_of(text, chunks, first) != target - 1) or \
                text[chunks[first].root_start:chunks[first].root_end].lower() in NOT_THINGS:
            continue
        fronted = fronted_relation(text, chunks[first], chunk, chunks[target - 1])
        if fronted is None:
            continue
        # "left of the tray is a mug" reads as "a mug left of the tray"
        words = f" {fronted} {text[chunks[first].char_start:chunks[target - 1].char_end]}"
        relation = relation_after(words)
        if relation:  # not "in front of the camera, ..."
            return first, relation, words, False
    return -1, None, after, False


def _nearest_to(text: str, chunks: list[NounPhrase], target: int, placed: bool) -> bool:
    """Whether the target phrase says "nearest" or "closest" and the next phrase follows "to": a
    landmark it is nearest to, unless that is the viewpoint ("the closest mug to the camera",
    "to the robot": a superlative) or, after a verb that moves the target, where it goes ("move /
    bring the nearest mug to the tray"; "put the nearest cube to the duck *on the tray*" has a
    destination of its own)."""
    if not (_NEAREST_TO.search(chunks[target].text) and target + 1 < len(chunks)
            and _TO.fullmatch(text[chunks[target].char_end:chunks[target + 1].char_start])):
        return False
    landmark = chunks[target + 1]
    if _VIEWPOINT.fullmatch(landmark.text):
        return False
    moved = placed or _CARRIED.search(text[:chunks[target].char_start])
    return not moved or _DESTINATION.match(text[landmark.char_end:]) is not None


# a side of the picture a carried or moved object goes to ("pull the mug *to the left*"; "bring
# the mug *on the left*" says which one)
_TO_SIDE = re.compile(r"^[\s,]*(?:(?:a\s+(?:little|bit)|slightly|all\s+the\s+way)\s+)?"
                      r"(?:to|towards?)\s+(?:the|your)\s+(?:far\s+)?"
                      r"(?:left|right)\b(?![- ]*(?:hand[- ]*)?(?:side\s+)?of\b)", re.IGNORECASE)
_VIEWPOINT = re.compile(r"(?:the\s+)?(?:camera|robot)", re.IGNORECASE)
# between two placed objects: "the mug*, *the cube* and *the ball"
_CONJOINED = re.compile(r"\s*(?:,\s*(?:and|or|&)?|and|or|&)\s*(?:then\s+)?", re.IGNORECASE)
_NEAREST_TO = re.compile(r"\b(?:nearest|closest)\b", re.IGNORECASE)
_TO = re.compile(r"\s*to\s*", re.IGNORECASE)

_DESCRIBING = re.compile(r",|(?:that|which|who|is|are|sitting|standing|lying|located|placed|positioned"
                         r"|resting)\b")


def is_destination(text: str, target: NounPhrase, landmark: NounPhrase) -> bool:
    """Whether the relation between the placed `target` and `landmark` (phrases of `text`) says
    where to put the target: it follows the target directly, with no copula or participle ("put
    the mug *that is* / *sitting* behind the tray in the box" describes it), and no destination
    follows the
    landmark ("put the mug left of the tray *on the shelf*"). A relation after the landmark
    says which landmark ("put the mug behind *the tray left of the duck*")."""
    gap = text[target.char_end:landmark.char_start].lower().split()
    return (bool(gap) and _DESCRIBING.match(gap[0]) is None
            and _DESTINATION.match(text[landmark.char_end:]) is None)


# where a placed object goes, in the words of a preposition before its destination, and the
# relation a response names for each (GroundedResponse.RELATION_*); these choose no object ("the
# mug on the tray" is not judged in the image), so they are read after a placing verb only
PLACE_WORDS = {"on": "on", "onto": "on", "on top of": "on", "atop": "on", "in": "in",
               "into": "in", "inside": "in", "inside of": "in", "next to": "next to",
               "beside": "next to", "by": "next to", "near": "next to", "close to": "next to",
               "to": "to", "under": "under", "underneath": "under", "beneath": "under",
               "below": "under", "above": "above", "toward": "to", "towards": "to",
               "between": "between", "in between": "between"}
# not "over": "move the mug over a bit"


# words that may stand before a destination's preposition: "put it *down* on the tray", "put
# it *right* under the shelf", "bring it *over* to the tray", speech's fillers ("*uh* in the box")
_MANNER = re.compile(r"^(?:(?:down|back|over|carefully|gently|slowly|softly|right|just|directly"
                     r"|um+|uh+|erm?|uhm)\s+)+")


def place_between(gap: str) -> str | None:
    """The relation PLACE_WORDS gives the words of `gap`, the text between a placed object's
    phrase (or its landmark's) and the next phrase, when they are a preposition of it alone,
    after optional commas, ellipses, the target's side ("on the right", "from the left":
    spatial_words.side_after) or nearness ("closest to you": nearness_after) and _MANNER words
    and before an optional article the phrase left out (" on ", " into the ", ", next to ",
    " down on the ", " on... the "); else None."""
    words = " ".join(re.sub(r"[,.\u2026]", " ", gap.lower()).split())
    words = words[side_after(words):].strip()  # "(the second mug) from the left on (the tray)"
    words = words[nearness_after(words):].strip()  # "(the mug) closest to you on (the tray)"
    return PLACE_WORDS.get(re.sub(r"\s*\b(?:the|a|an)$", "", _MANNER.sub("", words)))


@dataclass(frozen=True)
class Relations:
    """The spatial roles of a command's phrases around its target (indices into its phrases;
    -1 for none). `landmark`/`relation`: the phrase a relation relates the target to and the
    relation (spatial_words.relation_after's key), which choose the target ("the mug left of *the
    tray*"); `after`: the text the target's own words are read from, after its phrase and up to
    its destination; `destination`/`place`: where a placed target goes and how, as a response
    names it ("behind", "on", "in", "next to", "to": "put the mug *on the tray*"); and
    `destination_landmark`/`destination_relation`: a relation that says which destination ("on
    the tray *left of the duck*"); `second`: of "between", its other landmark (or destination),
    the phrase after "and" ("between the mug *and the duck*"), or the landmark's own index when
    one plural phrase names both ("between *the two mugs*"), -1 for none (`second_of`): of the
    destination when `place` is "between", else of the landmark."""

    landmark: int = -1
    relation: str | None = None
    after: str = ""
    destination: int = -1
    place: str = ""
    destination_landmark: int = -1
    destination_relation: str | None = None
    second: int = -1


def command_relations(text: str, chunks: list[NounPhrase], target: int, placed: bool = False
                      ) -> Relations:
    """The Relations of the target phrase `chunks[target]` of `text` (command_phrases), whose
    object is `placed` (`placement`): target_relation's, with, for a placed target, the
    destination a relation right after it names ("put the mug *behind the tray*",
    `is_destination`) or a place preposition after it or after its landmark does ("put the mug
    *on the tray*", "put the mug left of the tray *in the box*", `PLACE_WORDS`), and the
    relation after the destination that says which one it is; a side of the picture that opens
    the sentence ("*on the left*, pick up the mug", `fronted_side`) is read as the target's own
    words after it, unless it says where a placed target goes ("to the left, move the mug")."""
    text = without_measures(text)
    rel = _corrected(text, chunks, _relations(text, chunks, target, placed))
    # "on the left, pick up the mug" says which mug; "to the left, move the mug" where it goes
    side = None if placed and rel.destination < 0 else fronted_side(
        text, chunks[target - 1] if target else None, chunks[target])
    return _with_second(text, chunks, replace(rel, after=f" {side}{rel.after}") if side else rel)


def _corrected(text: str, chunks: list[NounPhrase], rel: Relations) -> Relations:
    """`rel` with its destination replaced by the one a self-correction right after it says
    ("on the tray*, no wait, next to the tray*"; "on the tray*, no, the box*": the same place)."""
    while rel.destination >= 0 and (last := max(rel.destination, rel.destination_landmark)) + 1 < len(chunks):
        words = after_correction(text[chunks[last].char_end:chunks[last + 1].char_start])
        if words is None:
            return rel
        put = _put_again(words)  # ". Actually no, *put it next to* the tray"
        place = put[1] if put else _place_of(words) if words.strip() else rel.place
        if not place:
            return rel
        rel = replace(rel, destination=last + 1, place=place, destination_landmark=-1,
                      destination_relation=None, **_described(text, chunks, last + 1))
    return rel


def _relations(text: str, chunks: list[NounPhrase], target: int, placed: bool) -> Relations:
    landmark, relation, after, destination = target_relation(text, chunks, target, placed)
    if landmark < 0 and not placed and target + 1 < len(chunks):
        gap = text[chunks[target].char_end:chunks[target + 1].char_start]
        side = side_after(gap.lower())  # "bring the second mug from the left to the tray"
        carried = _CARRIED.search(text[:chunks[target].char_start]) and _MOTION.match(gap[side:])
        if carried:  # "bring the mug *to* the tray"; "bring the mug on the tray" says which mug
            return Relations(after=gap[:side + carried.start()], destination=target + 1,
                             place=PLACE_WORDS[carried.group(1).lower()],
                             **_described(text, chunks, target + 1))
        last = _last_conjoined(text, chunks, target)  # "pick up the mug and the ball and put *them*"
        put = _put_again(text[chunks[last].char_end:chunks[last + 1].char_start]) if last + 1 < len(
            chunks) else None
        if put:  # "pick up the mug and put *it* left of the duck": the target goes there
            return Relations(after=gap[:put[0]] if last == target else gap, destination=last + 1,
                             place=put[1], **_described(text, chunks, last + 1))
    if destination:
        return Relations(after=text[chunks[target].char_end:chunks[landmark].char_start],
                         destination=landmark, place=RELATION_NAMES[relation],
                         **_described(text, chunks, landmark))
    if not placed:
        if landmark < 0 and (comparative_after(after) or _TO_SIDE.match(after)) and _CARRIED.search(
                text[:chunks[target].char_start]):
            return Relations()  # "bring the mug closer to you", "pull it to the left": where it goes
        last = max(target, landmark, second_of(text, chunks, landmark) if relation == "between" else -1)
        if landmark >= 0 and last < len(chunks) - 1:
            # "grab the cube behind the mug *and put it* on the tray", "left of the tray is a mug*;
            # put it* in the box": chosen by the relation, put there (a fronted one's words kept)
            put = _put_again(text[chunks[last].char_end:chunks[last + 1].char_start])
            if put:
                return Relations(landmark, relation, after if landmark < target else
                                 text[chunks[target].char_end:chunks[last].char_end + put[0]],
                                 last + 1, put[1], **_described(text, chunks, last + 1))
        return Relations(landmark, relation, after)
    last = landmark if landmark > target else _last_conjoined(text, chunks, target) if landmark < 0 \
        else target  # the place follows the target's words
    # "put the mug and the ball in the box": the mug (the target) goes there too
    own_end = chunks[target + 1].char_start if last > max(target, landmark) else None
    place = None if last + 1 >= len(chunks) else place_between(
        text[chunks[last].char_end:chunks[last + 1].char_start])
    if place is None:
        if 0 <= landmark < target:  # "behind the tray, put the mug": fronted, where it goes
            return Relations(after=text[chunks[target].char_end:], destination=landmark,
                             place=RELATION_NAMES[relation])
        fronted = _fronted_place(text, chunks, target - 1) if landmark < 0 and target else None
        if fronted and asks_to_act(text[chunks[target - 1].char_end:chunks[target].char_start]):
            return Relations(after=text[chunks[target].char_end:], destination=target - 1, place=fronted)
        if landmark < 0 and (side_after(" ".join(after.lower().split())) or comparative_after(after)):
            # "put the mug on the right", "move it closer to you": where it goes, not which one
            return Relations()
        return Relations(landmark, relation, after)
    return Relations(landmark, relation,
                     text[chunks[target].char_end:own_end or chunks[last + 1].char_start],
                     last + 1, place, **_described(text, chunks, last + 1))


def _last_conjoined(text: str, chunks: list[NounPhrase], target: int) -> int:
    """The index of the last phrase joined to `chunks[target]` by "and" / "," / "or" alone
    ("the mug, the cube and *the ball*"), `target` itself when none is."""
    last = target
    while last + 1 < len(chunks) and _CONJOINED.fullmatch(
            text[chunks[last].char_end:chunks[last + 1].char_start]):
        last += 1
    return last


_NEGATED = re.compile(r"\b(?:don['\u2019]?t|do\s+not|never|dont)\s*$", re.IGNORECASE)


def held_destination(text: str, chunks: list[NounPhrase]) -> Relations | None:
    """Of a command with no target whose placing verb's object is a pronoun, the robot's own
    object ("put *it* on the tray", "now place them left of the duck": what it holds, from an
    earlier command), the destination and how (`place`, and the relation after it that says
    which: `_described`) as Relations with no landmark; None when no phrase is such a place."""
    text = without_measures(text)
    for k, chunk in enumerate(chunks):
        gap = text[chunks[k - 1].char_end if k else 0:chunk.char_start]
        put = _put_again(gap)
        if put and not _NEGATED.search(gap[:put[0]]):  # not "don't put it on the tray"
            return _with_second(text, chunks, Relations(destination=k, place=put[1],
                                                        **_described(text, chunks, k)))
        fronted = _fronted_place(text, chunks, k)  # "behind the box, put it down"
        if fronted and _HELD_AFTER.match(text, chunk.char_end):
            return _with_second(text, chunks, Relations(destination=k, place=fronted))
    return None


# what the robot holds, said as a pronoun: "it", "them (all)", "both (of them)", "these two"
_HELD = (r"(?:it|them(?:\s+(?:all|both|two|three))?|(?:all|both|(?:the\s+)?(?:two|three))(?:\s+of\s+them)?|"
         r"(?:these|those)\s+(?:two|three)|(?:this|that|these|those)(?:\s+ones?)?)")
# a placing verb of a pronoun right after a fronted place, ending the sentence: "(behind the box)*,
# put it down.*"
_HELD_AFTER = re.compile(r"\s*" + PAUSE + r"?\s*(?:please\s+)?(?:" + "|".join(
    sorted(PLACEMENT_VERBS)) + r")\s+" + _HELD + r"(?:\s+(?:down|back|"
    r"there|please))*\s*(?:[.!?;]|$)", re.IGNORECASE)


def _fronted_place(text: str, chunks: list[NounPhrase], k: int) -> str | None:
    """The place, as a response names it, that words opening the sentence give `chunks[k]`:
    a relation ("*left of* the tray, put it") or a place preposition ("*on top of* the box, put
    the cube": PLACE_WORDS); None for neither."""
    opening = sentence_opening(text, chunks[k - 1] if k else None, chunks[k])
    if opening is None or not opening.strip():
        return None
    return _place_of(opening)


def _with_second(text: str, chunks: list[NounPhrase], rel: Relations) -> Relations:
    """`rel` with the other landmark of "between" (`second_of`) of its destination when it goes
    "between", else of its landmark; none for "between the mug" alone (refer.resolve_pair
    judges it as next to the mug)."""
    if "between" not in (rel.relation, rel.place):
        return rel
    return replace(rel, second=second_of(text, chunks, rel.destination if rel.place == "between"
                                         else rel.landmark))


def second_of(text: str, chunks: list[NounPhrase], k: int) -> int:
    """The other landmark of "between" whose first is `chunks[k]` (of `text`): the next phrase
    when only "and", "or" or a comma stands between the two ("between the mug *and the duck*",
    "the mug, the duck and the tray": the first two); `k` itself when
    the phrase names more than one thing ("between *the two mugs*", "*both mugs*", "*the
    mugs*": NounPhrase.count), of which two are the landmarks; -1 for neither (-1 for `k` < 0)."""
    if k < 0:
        return -1
    if k + 1 < len(chunks) and AND.fullmatch(text[chunks[k].char_end:chunks[k + 1].char_start]):
        return k + 1
    return k if chunks[k].count != 1 else -1


# a carrying verb before its object (parse.CARRYING_VERBS), which a preposition of motion
# after it (_MOTION) carries somewhere: a comparative after it says where to, too ("bring the
# mug closer to you")
_CARRIED = re.compile(r"\b(?:" + "|".join(CARRYING_VERBS) + r")\s+(?:me\s+)?$", re.IGNORECASE)
_MOTION = re.compile(r"^[\s,]*(?:(?:over|back|down)\s+)?(to|into|onto|towards?)\s+(?:the\s+|a\s+|an\s+)?$",
                     re.IGNORECASE)
# a placing or carrying verb whose object is a pronoun, the words after it up to the next phrase:
# "(pick up the mug) and *put it left of* (the duck)", ". *Place them on* (the tray)", "*bring
# it to* (the tray)", "*put this one in* (the box)"
_PLACED_AGAIN = re.compile(r"\b(?:" + "|".join(sorted(PLACEMENT_VERBS) + list(CARRYING_VERBS))
                           + r")\s+" + _HELD + r"\s+"
                           r"(?P<words>[^.;!?]*)$", re.IGNORECASE)


def _put_again(gap: str) -> tuple[int, str] | None:
    """(where the verb starts in `gap`, the place `_place_of` reads after it) when `gap`, the
    text before a phrase, ends in a placing or carrying verb of a pronoun and a place
    (`_PLACED_AGAIN`: "and put it left of", ". Place them on"); else None."""
    moved = _PLACED_AGAIN.search(gap)
    place = _place_of(moved.group("words")) if moved else None
    return (moved.start(), place) if place else None


def _place_of(words: str) -> str | None:
    """Where the words after "put it" up to the next phrase put it, as a response names it: a
    relation alone ("left of", "right behind": RELATION_NAMES) or a place preposition
    (`place_between`: "on", "down in"), also after _MANNER words ("down left of"; "right of" is
    a relation before "right" is a manner); None for neither."""
    words = " ".join(words.lower().split())
    for worded in (words, _MANNER.sub("", words)):
        how = relation_after(worded) if relation_only(worded + " ") else None
        if how:
            return RELATION_NAMES[how]
    return place_between(words)


def _described(text: str, chunks: list[NounPhrase], destination: int) -> dict:
    """The relation right after the destination `chunks[destination]` that says which it is
    ("the tray *left of the duck*"), as Relations' destination_landmark / destination_relation."""
    relation = relation_to_next(text, chunks, destination)
    return {"destination_landmark": destination + 1, "destination_relation": relation} \
        if relation else {}


def relation_to_next(text: str, chunks: list[NounPhrase], k: int) -> str | None:
    """The relation (spatial_words.relation_after's key) from `chunks[k]` of `text` to the
    phrase after it, when the relation's words and nothing else stand between the two ("left
    of", "that is behind"; not "behind and pick up" of "leave the bear behind and pick up the
    mug"); None when there is no next phrase or no such relation."""
    if k + 1 >= len(chunks):
        return None
    relation = relation_after(text[chunks[k].char_end:])
    gap = text[chunks[k].char_end:chunks[k + 1].char_start] + " "
    return relation if relation and relation_only(gap) else None
