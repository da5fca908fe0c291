"""Spatial words that open a sentence before the command that names its object: a relation
("*left of the tray*, pick up the mug", "*between the duck and the tray* is a cube") or a side of
the picture ("*on the left*, grab the mug"), which relations.py reads as if they followed
the object ("the mug left of the tray", "the mug on the left").

They count only where the sentence could not mean something else: after a copula ("left of the
tray *is* a mug"), or before a clause that asks the robot to act or asks a question ("left of the
tray*, can you grab* the mug", "*, what colour is* the mug?"); not before one with a subject of
its own ("left of the tray *there is nothing so* pick up the mug"), nor with a landmark that is
no thing ("*behind schedule*, grab the mug").
"""

from __future__ import annotations

import re

from ros_ground.command.parse import CARRYING_VERBS, COMMAND_VERBS, LOOKING_VERBS, SPATIAL_WORDS
from ros_ground.command.spatial_words import side_after
from ros_ground.phrases import NounPhrase

# what may stand between a fronted relation's landmark and the object: a copula ("left of the
# tray *is* a mug", "behind the box*, there are* two cubes") or the words of the clause that
# names it ("left of the tray*, pick up* the mug", "*, can you grab* the cube")
_COPULA_GAP = re.compile(r"\s*,?\s*(?:there\s+)?(?:is|are|'s|\u2019s|sits|stands|lies)\s*", re.IGNORECASE)
# a clause that asks the robot to act: a verb of acting or looking, after words of a request
# ("*can you* grab", "*I want you to* put"), or, after a pause, a question; not one with a
# subject of its own ("left of the tray *there is nothing so* pick up the mug", "*I put* ...")
_ACTING = sorted(COMMAND_VERBS | set(CARRYING_VERBS) | LOOKING_VERBS
                 | set("collect retrieve touch tap rotate turn raise remove reach".split()))
_ASKING = (r"(?:(?:please|kindly|now|then|just|so|and|also|carefully|gently|go(?:\s+ahead\s+and)?|"
           r"(?:can|could|would|will)\s+you(?:\s+please)?|i\s+(?:want|need|would\s+like|['\u2019]d\s+like)"
           r"\s+you\s+to|you\s+(?:should|can|could|must|need\s+to))\s+)*(?:" + "|".join(_ACTING) + r")\b")
# a pause for the comma: "left of the tray*:* pick up the mug", "*...*", a dash
PAUSE = r"(?:[,:\-\u2013\u2014]|\.\.\.|\u2026)"
_CLAUSE_GAP = re.compile(r"\s*(?:" + PAUSE + r"\s*(?:(?:what|which|where|how|is|are|do|does)\b|"
                         + _ASKING + r")|" + _ASKING + r")[^,.;:!?]*", re.IGNORECASE)
# what may open a sentence before a fronted relation: "*OK, so* left of the tray, ..."
_FILLERS = re.compile(r"\s*(?:(?:ok(?:ay)?|so|now|and|then|right|alright|well|please|um+|uh+|hey|"
                      r"(?:hey\s+)?robot)[\s,]+)*", re.IGNORECASE)
# nouns after relation words that name no thing in view: "*behind schedule*, grab the mug",
# "*near the end*", "*between the meetings*"
NOT_THINGS = frozenset("schedule end time times meeting meetings moment moments while day days week "
                        "weeks way ways beginning start".split())
_OPENING = re.compile(r"(?:^|.*[.;:!?])" + _FILLERS.pattern, re.IGNORECASE | re.DOTALL)
_HAND_SIDE = re.compile(r"(?:[- ]+hand\b)?(?:[- ]+side\b)?")  # "on the left *hand side*"


def fronted_relation(text: str, landmark: NounPhrase, target: NounPhrase,
                     last: NounPhrase | None = None) -> str | None:
    """The relation's words when `text` puts them before the target's landmark, the target
    after it ("*left of* the tray is a mug", "behind the box there are two cubes", "*left of*
    the tray, pick up the mug"), else None: the words end right before `landmark`, and between
    `last` (the landmark's last phrase: "the tray" of "between the duck and the tray"; default
    `landmark`) and `target` stands only a copula ("is", "there are") or, when the relation
    words open the sentence, the words of one clause ("left of the tray*, pick up* the mug")."""
    gap = text[(last or landmark).char_end:target.char_start]
    copula = _COPULA_GAP.fullmatch(gap)
    if not (copula or _CLAUSE_GAP.fullmatch(gap)):
        return None
    before = text[:landmark.char_start]
    found = [m for m in SPATIAL_WORDS.finditer(before)
             if m.lastgroup == "relation" and not before[m.end():].strip()]
    if not found or not (copula or _OPENING.fullmatch(before[:found[-1].start()])):
        return None
    return " ".join(found[-1].group(0).split())


def fronted_side(text: str, previous: NounPhrase | None, target: NounPhrase) -> str | None:
    """The words of a side of the picture (spatial_words.side_after: "on the left", "from the
    right") that open the sentence of `target`, before the words of its clause and no phrase
    (`previous`, the phrase before the target, ends before the sentence), else None: "*on the
    left*, pick up the mug" reads as "the mug on the left"."""
    words = (sentence_opening(text, previous, target) or "").lower()
    side = side_after(words)
    rest = _HAND_SIDE.match(words, side).end() if side else 0  # "on the left *hand side*, ..."
    return words[:side].strip(" ,") if side and _CLAUSE_GAP.fullmatch(words[rest:]) else None


def sentence_opening(text: str, previous: NounPhrase | None, phrase: NounPhrase) -> str | None:
    """The words that open the sentence of `phrase` (of `text`) before it, after _FILLERS
    ("on top of " of "OK, on top of the box, put the cube"); None when another phrase
    (`previous`, the one before `phrase`) stands in that sentence."""
    start = max(text.rfind(c, 0, phrase.char_start) for c in ".;:!?") + 1
    if previous is not None and previous.char_end > start:
        return None
    return text[_FILLERS.match(text, start, phrase.char_start).end():phrase.char_start]


def asks_to_act(gap: str) -> bool:
    """Whether `gap`, the text between a fronted landmark and the object, is the words of a
    clause that asks the robot to act or asks a question (", pick up ", ", can you grab ")."""
    return _CLAUSE_GAP.fullmatch(gap) is not None

