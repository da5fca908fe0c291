"""The spatial words of a referring expression: its relation to a landmark ("the mug *left of*
the tray"), its superlative ("the *leftmost* mug", "the mug *on the left*", "the *biggest*
mug") and an ordinal in the superlative's order ("the *second* mug *from the left*"), as
refer.py checks them on the proposals and parse.py cuts a command at them.
"""

from __future__ import annotations

import re

RELATIONS = (("to the left of", "left"), ("to the left side of", "left"),
             ("on the left of", "left"), ("on the left side of", "left"), ("left of", "left"),
             ("to the right of", "right"), ("to the right side of", "right"),
             ("on the right of", "right"), ("on the right side of", "right"), ("right of", "right"),
             ("at the left of", "left"), ("at the right of", "right"),
             ("in front of", "front"), ("behind", "behind"), ("in back of", "behind"),
             ("at the back of", "behind"),
             # nearness: of the objects of the target's kind, the one nearest the landmark
             ("next to", "near"), ("beside", "near"), ("nearest to", "near"), ("nearest", "near"),
             ("closest to", "near"), ("close to", "near"), ("near to", "near"), ("near", "near"),
             ("alongside", "near"), ("close by", "near"), ("over by", "near"), ("by", "near"),
             # between two landmarks ("between the mug and the duck") or two objects one plural
             # landmark names ("between the two mugs"): relations.Relations.second
             ("in between", "between"), ("in-between", "between"), ("halfway between", "between"),
             ("midway between", "between"), ("somewhere between", "between"), ("between", "between"),
             *((f"{more} {side} than", side) for more in ("further", "farther", "more to the")
               for side in ("left", "right")))
# each relation as a response names it (GroundedResponse.relation)
RELATION_NAMES = {"left": "left of", "right": "right of", "front": "in front of", "behind": "behind",
                  "near": "next to", "between": "between"}
# "closest to the camera" is a superlative, the camera no landmark in the picture; so is
# "closest to you": the robot a command addresses sees from its camera
# "the robot" is the viewpoint only when no noun follows it: "the robot toy" is a landmark
_NO_NOUN_AFTER = (r"(?!['\u2019]s\b|\s+(?!(?:and|or|then|please|so|now|but|on|in|at|to|from|with|that"
                  r"|which)\b)[a-z])")
_CAMERA = re.compile(r"\s*(?:to\s+)?(?:the\s+camera|the\s+robot\b" + _NO_NOUN_AFTER
                     + r"|you(?:rself)?)\b")  # "nearest (to) the camera"
# adverbs that sharpen a relation without changing it: "right behind", "just left of"
RELATION_ADVERBS = ("right", "just", "directly", "immediately", "slightly")
SUPERLATIVES = ("leftmost", "rightmost", "closest to the camera", "nearest to the camera",
                "nearest the camera", "farthest from the camera", "furthest from the camera",
                "largest", "biggest", "smallest", "tiniest")
# other wordings of a superlative, and the SUPERLATIVES entry each stands for: a side in the
# phrase ("the (far) left mug", "the right-hand one") or right after it, where no landmark
# follows ("the mug on the left", "that is to the far right"; not "on the left of the tray"),
# and a size ("the bigger mug": of two, the biggest; "the big mug")
_NOT_OF = r"(?![- ]*(?:hand[- ]*)?(?:side\s+)?of\b)"  # "left of", "left-hand side of": a relation
_SIDE_IN = re.compile(r"\b(?:far[- ]|very )?(left|right)(?:[- ]hand)?\b" + _NOT_OF)
# a copula after the phrase: "(the mug) that is", "which are", "that's", speech-to-text "thats"
_THAT_IS = r"(?:(?:(?:that|which)\s+)?(?:is|are)\s+|(?:that|which)['\u2019]?s\s+)?"
_SIDE_AFTER = re.compile(r"^[\s,]*(?:the\s+ones?\s+)?" + _THAT_IS + r"(?:all\s+the\s+way\s+)?"
                         r"(?:on|at|to)\s+(?:the\s+|your\s+)?(?:far\s+|very\s+)?(left|right)\b" + _NOT_OF)
# nearness to the camera in the phrase ("the *front* mug", "the *rearmost* cube") or right
# after it ("the mug *in front*", "the one *at the back*"; not "in front of"), and its
# comparative of two ("the mug *closer to the camera*")
_DEPTH_IN = re.compile(r"\b(?:(front(?:most)?|fore(?:most)?)|(back(?:most)?|rear(?:most)?|hindmost))\b"
                       r"(?![- ]*(?:side\s+)?of\b)")
_DEPTH_AFTER = re.compile(r"^[\s,]*(?:the\s+ones?\s+)?" + _THAT_IS +
                          r"(?:in|at)\s+(?:the\s+(?:very\s+)?)?(?:(front)|(back|rear))\b(?!\s+of\b)")
# nearness without a landmark: "the *nearest* mug", "the mug *furthest away*", "the *closest*
# one": to the robot, whose camera sees the table ("the nearest cube *to the duck*" has one)
_NEAR_IN = re.compile(r"\b(?:(nearest|closest)|(farthest|furthest))\b")
_NEAR_AFTER = re.compile(r"^[\s,]*(?:the\s+ones?\s+)?" + _THAT_IS + r"(?:the\s+)?"
                         r"(?:(nearest|closest)|(farthest|furthest))(?:\s+(?:one|away))?\b"
                         r"(?![\s,]+(?:to|from|of)\b)")
COMPARATIVES = {"closer to the camera": "closest to the camera",
                "nearer to the camera": "closest to the camera",
                "nearer the camera": "closest to the camera",
                "farther from the camera": "farthest from the camera",
                "further from the camera": "farthest from the camera"}
# the superlatives and comparatives of nearness said of the robot addressed ("the mug nearest
# *you*", "which cube is farther from you?", "closest to the robot"), each with the SUPERLATIVES
# entry it stands for; nearness to it is nearness to its camera ("the mug next to you")
_NEXT_TO = ("next to", "beside", "near", "close to", "by")
TO_YOU = {wording.replace("the camera", you): ("farthest from the camera" if "from" in wording
                                               else "closest to the camera")
          for wording in (*SUPERLATIVES, *COMPARATIVES, *(f"{near} the camera" for near in _NEXT_TO))
          if "the camera" in wording for you in ("you", "yourself", "the robot")}
_TO_YOU = re.compile(r"\b(?:" + "|".join(map(re.escape, TO_YOU)) + r")\b" + _NO_NOUN_AFTER)


def _wordings(wordings) -> str:
    """Regular expression of `wordings`, their words apart by any whitespace, the longest first
    (one ending in "the robot" not before a noun: `_NO_NOUN_AFTER`)."""
    return "|".join(r"\s+".join(map(re.escape, w.split())) + (_NO_NOUN_AFTER if w.endswith("robot") else "")
                    for w in sorted(wordings, key=len, reverse=True))


# the superlatives and comparatives of nearness that follow their noun ("the mug *closest to
# the camera*", "*closer to you*"): every multi-word wording; parse.py cuts commands at them
NEARNESS_WORDS = _wordings(w for w in (*SUPERLATIVES, *COMPARATIVES, *TO_YOU) if " " in w)
# how far, before a comparative or side of where a moved object goes: "(move the mug) *a little*
# closer to you", "(push it) *a bit* to the left"
_DEGREE = re.compile(r"^[\s,]*(?:(?:a\s+(?:little|bit|tad|touch|lot)(?:\s+bit)?|slightly|much|way|even|just"
                     r"|somewhat)\s+(?:more\s+)?)?")
# a comparative right after a phrase: "(move the mug) *closer to you*"
_COMPARATIVE_AFTER = re.compile(_DEGREE.pattern + r"(?:" + _wordings(
    w for w in (*COMPARATIVES, *TO_YOU) if w.split()[0] in ("closer", "nearer", "farther", "further"))
    + r")\b")
# a size said plainly picks by size too: "the *big* box" is the biggest of the boxes there, as
# "the *bigger* box" is of two
_BIG, _SMALL = r"bigger|larger|big|large|huge|giant", r"smaller|tinier|small|little|tiny|mini"
_SIZE = re.compile(rf"\b(?:({_BIG})|({_SMALL}))\b")
_NOT_SO = re.compile(r"\bnot\s+(?:(?:so|very|too|that|all\s+that)\s+)?$")  # "the not so big mug": no size
_SIZE_AFTER = re.compile(r"^[\s,]*(?:(?:that|which)\s+)?(?:is|are|'s)\s+(?:the\s+)?"
                         rf"(?:({_BIG})|({_SMALL}))\b")  # "which mug is bigger?"
# an ordinal picks the k-th of a superlative's order: "the *second* mug from the left", "the
# *third* biggest cube"; the side it counts from follows the phrase ("from the left", "from the
# front": nearest the camera), and without one it counts as a reader does, from the left
ORDINALS = {**{word: k for k, word in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth".split(), start=1)},
    **{f"{k}{'st' if k == 1 else 'nd' if k == 2 else 'rd' if k == 3 else 'th'}": k
       for k in range(1, 11)}}
_ORDINAL = re.compile(r"\b(" + "|".join(ORDINALS) + r")\b")
_FROM = {"left": "leftmost", "right": "rightmost", "front": "closest to the camera",
         "back": "farthest from the camera", "camera": "closest to the camera",
         "you": "closest to the camera"}
# the side an ordinal counts from, after the phrase, with the ordinal itself when it stands
# there too: "(the second mug) from the left", "(the mug) *second* from the left"
COUNTING_FROM = re.compile(r"^[\s,]*(?:(?:that\s+is|the)\s+)?(?:(?P<ordinal>" + "|".join(ORDINALS)
                           + r")\s+(?:one\s+)?)?(?:(?:counting|counted)\s+)?from\s+(?:the\s+)?"
                           r"(?P<side>left|right|front|back|camera|you)\b" + _NOT_OF)
# "the *last* mug (from the left)": the first counted from the other side; "the *second to
# last* mug", "the *second from last*", "the *next-to-last*", "the *last but one*", "the
# *penultimate*": the second
_LAST = re.compile(r"\b(?:last|penultimate)\b")
FROM_LAST = re.compile(r"\b(?:(?P<ordinal>" + "|".join(ORDINALS) + r"|next)[-\s](?:to|from)[-\s]last"
                       r"|last[-\s]but[-\s]one|penultimate)\b", re.IGNORECASE)
_OTHER_END = {"leftmost": "rightmost", "rightmost": "leftmost",
              "closest to the camera": "farthest from the camera",
              "farthest from the camera": "closest to the camera"}
# "the *middle* mug", "the mug *in the middle*": of the objects left to right, the one halfway
_NOT_OF_WORD = r"(?!\s+of\b)"
_MIDDLE_IN = re.compile(r"\b(?:middle|cent(?:er|re|ral))\b" + _NOT_OF_WORD)
_MIDDLE_AFTER = re.compile(r"^[\s,]*(?:the\s+ones?\s+)?" + _THAT_IS +
                           r"(?:in|at)\s+the\s+(?:middle|cent(?:er|re))\b" + _NOT_OF_WORD)
# a copula or a participle of where a thing is before a relation: "(the mug) that is", "which's",
# "sitting", "that is located"
# ("pick the cube *up* that's next to the duck": the verb's particle may stand before a clause)
_COPULA = re.compile(r"^,?\s*(?:(?:up|down|out)\s+(?=(?:that|which)\b))?"
                     r"(?:(?:(?:(?:that|which|who)\s+)?(?:is|are)|(?:that|which|who)['\u2019]s"
                     r"|(?:that|which)\s+(?:sits|stands|lies|rests))\s+)?"
                     r"(?:(?:sitting|standing|lying|located|placed|positioned|resting)\s+)?")
_ADVERB = re.compile(r"^(?:" + "|".join(RELATION_ADVERBS) + r")\s+")


def relation_pattern() -> str:
    """Regular expression (for re.IGNORECASE) of a relation's words as a command writes them:
    any of RELATIONS, its words apart by any whitespace ("left\\nof"), after an optional
    RELATION_ADVERBS word ("right behind"), "nearest" and "near" not after an article ("the
    nearest mug"); the longest wording first, so "to the left of" is found whole rather than as
    "left of"."""
    words = sorted({w for w, _ in RELATIONS}, key=lambda w: (-len(w), w))
    return (r"\b(?:(?:" + "|".join(RELATION_ADVERBS) + r")\s+)?(?:"
            + "|".join((_IN_PHRASE if w in _ADJECTIVES else "") + r"\s+".join(map(re.escape, w.split()))
                       + _guard(w) for w in words)
            + r")\b(?!" + _CAMERA.pattern + ")")


# "by" says where only before an object it is by: a determiner and not a part of the thing held
# ("pick it up *by the handle*", "by the duck's head"), a time or a manner ("by the way", "by
# then", "by hand", "by mistake"), an amount ("by 10 cm", "by a bit") or an author ("by Tolkien")
_PARTS = ("handle|rim|edge|side|top|bottom|base|lid|neck|cap|blade|lip|body|stem|tip|corner|end|plug"
          "|head|leg|arm|foot|way|time")
_NOT_A_PART = (r"(?=\s+(?:the|this|that|these|those|my|your|a|an)\s|\s*$)"  # (or the next phrase's start)
               r"(?!\s+\w+\s+(?:(?:" + _PARTS + r")s?\b|\w+['\u2019]s\b))"
               r"(?!\s+an?\s+(?:bit|little|few|lot|quarter|half)\b)")


def _guard(words: str) -> str:
    """The lookahead that must hold after relation `words` for them to be one ("" for none),
    read both where a command is cut (`relation_pattern`) and where a relation is read
    (`_relation_start`): "by" before an object (`_NOT_A_PART`), "next to" not of "the next to
    last mug"."""
    return _NOT_A_PART if words.endswith("by") else r"(?![\s-]+last\b)" if words == "next to" else ""


# relation words that are an adjective of the phrase after an article ("the *nearest* mug", "a
# *near* one"), a superlative of nearness to the robot (`_NEAR_IN`), not a relation
_ADJECTIVES = ("nearest", "near")
_IN_PHRASE = r"(?<!\bthe\s)(?<!\ba\s)(?<!\ban\s)(?<!\bthat\s)(?<!\bthis\s)"


# what a comparative may be "than" that is no landmark: "further left than the others / usual"
_NO_OBJECT = re.compile(r"\s*(?:the\s+)?(?:others?|rest|usual|before|that|ever|normal|any\s+other)\b")


def _relation_start(text: str) -> tuple[str, str] | None:
    """(relation, the text after its words) when `text`, lower-cased with its whitespace
    collapsed, starts with a relation after an optional copula and adverb; else None."""
    plain = _COPULA.sub("", " ".join(text.lower().split()) + " ")
    # the wording as it stands first: "right of" is a relation, "right" of "right behind" an adverb
    for words_first in (plain, _ADVERB.sub("", plain)):
        for words, relation in RELATIONS:
            rest = words_first[len(words):]
            if (words_first.startswith(words + " ") and not _CAMERA.match(rest)
                    and re.match(_guard(words), rest)
                    and not (words.endswith("than") and _NO_OBJECT.match(rest))):
                return relation, rest
    return None


def relation_after(text: str) -> str | None:
    """The spatial relation that starts `text` (what follows the target phrase), or None:
    "left", "right", "front", "behind" or "near" ("next to", "beside", "nearest to"; not
    "closest to the camera", a superlative). A copula before it counts as none: "(that) is left
    of the tray" of "the cube that is left of the tray", "which object is left of the tray";
    so does an adverb of RELATION_ADVERBS ("right behind"), and line breaks are spaces."""
    found = _relation_start(text)
    return None if found is None else found[0]


def relation_only(text: str) -> bool:
    """Whether `text` (what stands between a target phrase and the next phrase) is a relation's
    words alone, after relation_after's copula and adverb, with nothing else but spaces and a
    determiner left of the next phrase: " left of ", " that is behind ", " to the right of the "."""
    found = _relation_start(text)
    return found is not None and found[1].strip(" \"'\u201c\u2018(") in ("", "the", "a", "an")


def _superlative(text: str) -> str | None:
    text = " ".join(text.lower().split())
    found = next((s for s in SUPERLATIVES if s in text), None) or next(
        (s for c, s in COMPARATIVES.items() if c in text), None)
    if found is None and (to_you := _TO_YOU.search(text)):
        found = TO_YOU[to_you.group()]
    return found


def _worded(target_text: str, after: str, landmark: bool = False) -> str | None:
    """The SUPERLATIVES entry another wording in the target phrase or right after it stands
    for (`_SIDE_IN`, `_SIDE_AFTER`, `_DEPTH_IN`, `_DEPTH_AFTER`, `COUNTING_FROM`, `_LAST`,
    `_SIZE`, and `_NEAR_IN` / `_NEAR_AFTER` unless there is a `landmark`, which "the nearest cube
    to the duck" is nearest to; an ordinal alone counts from the left), "middle" for
    `_MIDDLE_IN` / `_MIDDLE_AFTER`, or None."""
    phrase = " ".join(target_text.lower().split())
    side = _SIDE_IN.search(phrase) or _SIDE_AFTER.match(after)
    if side:
        return f"{side.group(1)}most"
    depth = (_DEPTH_IN.search(phrase) or _DEPTH_AFTER.match(after)
             or (None if landmark else _NEAR_IN.search(phrase) or _NEAR_AFTER.match(after)))
    if depth:
        return "closest to the camera" if depth.group(1) else "farthest from the camera"
    if _MIDDLE_IN.search(phrase) or _MIDDLE_AFTER.match(after):
        return "middle"
    start = COUNTING_FROM.match(after)
    counted = _FROM[start.group("side")] if start else "leftmost"
    if _LAST.search(phrase):
        return _OTHER_END[counted]
    if start:
        return counted
    size = _SIZE.search(phrase) or _SIZE_AFTER.match(after)
    if size and not _NOT_SO.search(phrase[:size.start()] if size.re is _SIZE else ""):
        return "biggest" if size.group(1) else "smallest"
    return "leftmost" if _ORDINAL.search(phrase) else None


def side_after(after_text: str) -> int:
    """The length of the side of the picture, with no landmark, that `after_text` (what
    follows a phrase; lower-case, single-spaced) starts with, 0 for none: "on the left", "to
    the far right", "in the middle", "from the left" (an ordinal's), after a degree ("a bit to
    the left", `_DEGREE`). Of a placed object, that
    is which one it is when a destination follows ("put the mug on the right *on the tray*"),
    else where it goes ("put the mug *on the right*")."""
    degree = _DEGREE.match(after_text).end()  # "(push the mug) a bit to the left"
    for text in (after_text, after_text[degree:]):
        found = (_SIDE_AFTER.match(text) or _MIDDLE_AFTER.match(text)
                 or _DEPTH_AFTER.match(text) or COUNTING_FROM.match(text))
        if found:
            return len(after_text) - len(text) + found.end()
    return 0


_NEARNESS_AFTER = re.compile(r"^[\s,]*(?:" + NEARNESS_WORDS + r")\b")


def nearness_after(after_text: str) -> int:
    """The length of the superlative or comparative of nearness to the camera that `after_text`
    (what follows a phrase) starts with, 0 for none: "closest to the camera", "nearest you",
    "closer to you". It says which object a placed one is when a destination follows ("put the
    mug *closest to the camera* on the tray")."""
    found = _NEARNESS_AFTER.match(after_text.lower())
    return found.end() if found else 0


def comparative_after(after_text: str) -> int:
    """The length of the comparative of nearness to the camera that `after_text` (what follows
    a phrase) starts with, 0 for none: "closer to the camera", "nearer you", "farther from
    you". Of a moved object that is where it goes ("move the mug *closer to you*"), not which
    one, unless a destination follows ("put the mug closer to you *on the tray*")."""
    found = _COMPARATIVE_AFTER.match(after_text.lower())
    return found.end() if found else 0


def ordinal_of(target_text: str, after_text: str = "") -> int:
    """The rank an ordinal in the target phrase, or right after it before the side it counts
    from (`after_text`), asks for in its superlative's order: 2 for "the second mug (from the
    left)" and "the mug *second* from the left", 3 for "the 3rd biggest cube" and "the third to
    last cube" (`FROM_LAST`, counted from the other end), 2 for "the next to last", "the last
    but one" and "the penultimate"; 1 without one."""
    text = target_text.lower()
    from_last = FROM_LAST.search(text)
    if from_last is not None:
        return ORDINALS.get(from_last.group("ordinal"), 2)
    found = _ORDINAL.search(text)
    if found is not None:
        return ORDINALS[found.group(1)]
    counted = COUNTING_FROM.match(" ".join(after_text.lower().split()))  # "the mug *second* from"
    return ORDINALS[counted.group("ordinal")] if counted and counted.group("ordinal") else 1


def superlative_of(target_text: str, after_text: str = "", landmark_text: str = "") -> str | None:
    """The SUPERLATIVES entry that applies to the target phrase `target_text` ("the *leftmost*
    cube", "the *left* cube", "the *bigger* cube") or is in `after_text`, what follows it ("the
    cube *closest to the camera*", "the cube, the *leftmost* one", "the cube *on the left*"),
    outside its landmark's phrase `landmark_text` ("the cube left of *the leftmost duck*" has
    none); the side an ordinal counts from ("the second cube *from the left*": leftmost, whose
    rank `ordinal_of` gives; "the *last* cube": rightmost); "middle" for "the *middle* cube",
    "the cube *in the centre*"; None."""
    after = " ".join(after_text.lower().split())
    landmark = " ".join(landmark_text.lower().split())
    if landmark:
        after = after.replace(landmark, " ", 1)
    return _superlative(target_text) or _superlative(after) or _worded(target_text, after, bool(landmark))


def superlative_spans(phrase: str) -> list[tuple[int, int]]:
    """(start, end) character spans in `phrase` of the words that make it a superlative
    ("rightmost" of "the rightmost mug", "right-hand", "biggest", "bigger"). What they say is
    checked on the masks; in the phrase's entity scores, which tell its kind, they pull towards
    whatever the model links with "right" or "big"."""
    text = phrase.lower()
    spans = [m.span() for s in SUPERLATIVES if " " not in s
             for m in re.finditer(r"\b" + re.escape(s) + r"\b", text)]
    spans += [m.span() for pattern in (_SIDE_IN, _DEPTH_IN, _SIZE, _ORDINAL, _LAST, FROM_LAST,
                                       _MIDDLE_IN)
              for m in pattern.finditer(text)]
    return sorted(spans)


def joined_from_last(text: str) -> str:
    """`text` with the words of each `FROM_LAST` wording joined by hyphens, the same length
    ("the second to last mug" -> "the second-to-last mug"), so that a parse keeps them in their
    noun phrase: en_core_web_sm makes "last mug" the phrase of "the second to last mug", "one
    mug" that of "the last but one mug", and the cut at the relation "next to" splits "the next
    to last mug"."""
    return FROM_LAST.sub(lambda m: re.sub(r"\s", "-", m.group()), text)


# a distance or an angle ("10 cm", "0.1 m", "five centimetres", "an inch", "90 degrees", "a
# quarter turn") says how far to move or turn, never which object or where: neither a target nor
# a landmark; one before a noun is the object's own ("the 3 m cable", "a 10 cm cube")
_NUMBER = (r"(?:(?:\d+(?:[.,]\d+)?|[.,]\d+)\s*-?\s*"
           r"|(?:an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty(?:-five)?|fifty|sixty|seventy|eighty|ninety|hundred"
           r"|a\s+hundred|half\s+an?|a\s+quarter(?:\s+of\s+an?)?|a\s+few|a\s+couple\s+of)(?:\s+|-))")
_UNIT = (r"(?:mm|cms?|(?-i:m)(?!&)|millimet(?:er|re)s?|centimet(?:er|re)s?|met(?:er|re)s?|inch(?:es)?"
         r"|in\.|ft|feet|foot|yards?|deg(?:rees?)?|\u00b0|turns?)")
# words a distance may stand before: a direction, a place, the end of the command
_AFTER_MEASURE = (r"(?=\s*(?:$|[^\w\s]|(?:left|right|to|towards?|from|behind|in|into|onto|on|off|of"
                  r"|closer|further|farther|nearer|away|up|down|back|forwards?|backwards?|and|then"
                  r"|please|higher|lower|clockwise|counter-?clockwise|anti-?clockwise|over|under|above"
                  r"|below|past|beyond|along|more|less|apart|now)\b))")
_MEASURE = re.compile(r"(?<![\w.])" + _NUMBER + _UNIT + r"(?!\w)" + _AFTER_MEASURE,
                      re.IGNORECASE)


# a range before a distance: "(move it) *between 5 and* 10 cm", "*from two to* three inches"
_RANGE = re.compile(r"(?<![\w.])(?:(?:between|from)\s+)?" + _NUMBER + r"(?:and|to|or)\s+(?="
                    + _MEASURE.pattern + ")", re.IGNORECASE)


def without_measures(text: str) -> str:
    """`text` with each distance or angle in it (`_MEASURE`, and a range before one: `_RANGE`)
    turned to as many spaces, so the character spans of everything else stay: "place the cube
    10 cm left of the tray" is read as "place the cube left of the tray". Every reading of a
    command's words starts here."""
    blank = _RANGE.sub(lambda m: " " * len(m.group()), text)
    return _MEASURE.sub(lambda m: " " * len(m.group()), blank)
