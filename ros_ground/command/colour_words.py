"""The colour words of a referring expression, and how much of a mask looks each one.

A command states an object's colour before its noun ("the *red* mug"), after it ("the mug that
is red", "the mug in red", "the mug, the red one") or negated ("the non-red mug", "the mug that
is not red"), or excludes others of the kind by theirs ("the mug, not the red one", "any mug
except the blue one"). `named_colours` reads the words of a phrase, with those `colours_after` finds in
the text after it, into the colours named and those ruled out; `colour_share` checks one word
on a mask's pixels.
"""

from __future__ import annotations

import re

import cv2
import numpy as np

# hue ranges in degrees (OpenCV's hue x 2) of the chromatic colour words
HUES = {"red": ((0, 15), (330, 361)), "orange": ((15, 40),), "yellow": ((40, 70),),
        "green": ((70, 170),), "blue": ((170, 255),), "purple": ((255, 330),),
        "violet": ((255, 330),), "pink": ((290, 345),)}
ACHROMATIC = ("white", "black", "grey", "gray")
# brown is a dark, saturated orange: the hue alone cannot tell it (colour_share)
COLOUR_WORDS = frozenset(HUES) | frozenset(ACHROMATIC) | {"brown"}
# other words for those colours, read as the colour they name ("the reddish mug" is a red one);
# none is also the name of an object a robot picks up ("rose", "lemon", "lime", "olive" are not,
# nor "cream", "chocolate", "tan": cream cheese, a chocolate bar, sun tan lotion)
SYNONYMS = {
    "reddish": "red", "crimson": "red", "scarlet": "red", "maroon": "red", "burgundy": "red",
    "orangish": "orange", "orangey": "orange", "amber": "orange", "yellowish": "yellow",
    "golden": "yellow", "gold": "yellow", "greenish": "green", "emerald": "green", "bluish": "blue",
    "blueish": "blue", "navy": "blue", "azure": "blue", "cyan": "blue", "aqua": "blue", "turquoise": "blue",
    "teal": "blue", "purplish": "purple", "lilac": "purple", "lavender": "purple",
    "magenta": "purple", "indigo": "purple", "pinkish": "pink", "whitish": "white",
    "ivory": "white", "blackish": "black", "greyish": "grey", "grayish": "gray", "silver": "grey",
    "brownish": "brown",
}
# words that name a colour only before "coloured": "the *cream*-coloured mug", not "the cream cheese"
COLOURED = {"cream": "white", "beige": "brown", "tan": "brown", "chocolate": "brown"}
# words that shade a colour without changing it: "(the mug that is) *dark* blue"
SHADES = frozenset(("dark", "light", "bright", "pale", "deep", "pastel", "vivid"))
# On ood frames (a camera 12-20 degrees up, seeing objects' sides) white objects' median value
# is 0.33-0.78, and 12 of 23 had under 40% of value >= 0.5 (docs/MEASUREMENTS.md, "White in
# shade").
WHITE_MIN_VALUE = 0.3
NEGATIONS = ("non", "not", "no", "neither")
# what states a colour of the phrase before it: a copula ("that is", "which are", "that's"),
# "in", "coloured", "painted"; an apposition (", the red one") is read apart, ending in "one"
_STATED = re.compile(r"^[\s,]*(?:(?:(?:that|which)\s+)?(?:is|are)|(?:that|which|it)['\u2019]s|in"
                     r"|whose\s+colou?r\s+is|colou?red|painted)(?:\s+(?:colou?red|painted))?\s+")
_APPOSITION = re.compile(r"^\s*,?\s*the\s+")  # spoken without the comma: "the mug the red one"
_CONTRACTED = re.compile(r"\b(is|are|was|were)n['\u2019]?t\b")
# the words that exclude what follows them ("*not* the red one", "*except* the duck"), a regular
# expression for parse.py's target rule as well as for the colours below
EXCLUDING_WORDS = (r"(?:not|except(?:\s+for)?|besides|excluding|other\s+than|apart\s+from"
                   r"|rather\s+than|instead\s+of)")
# what rules out the colours of another one of the kind: "the mug, *not the* red one", "any mug
# *except the* blue one", "a mug *other than the* green mug", "the mug *but not* red"
_EXCLUDING = re.compile(r"^[\s,;:(\u2013\u2014-]*(?:but\s+)?" + EXCLUDING_WORDS
                        + r"\s+(?:(?:the|a|an|any)\s+)?")
# words that may stand between the colours of one statement: "red and white", "not red"
_JOINERS = frozenset(("and", "or", "nor", ",", "but") + NEGATIONS)
# a negation rules out each colour up to a word other than these: "not red or blue"
_NEGATION_CARRIES = frozenset(("or", "nor", ","))


def colour_share(rgb: np.ndarray, mask: np.ndarray, word: str) -> float:
    """Share in [0, 1] of the masked pixels of `rgb` (HxWx3 uint8) that look `word`, a colour
    word of COLOUR_WORDS, by HSV bins. Chromatic words need saturation x value >= 0.25; "white"
    is saturation < 0.2 and value >= WHITE_MIN_VALUE (a white surface turned from the light
    renders mid-grey, and one frame cannot tell it from a lit grey one), "black" value < 0.25,
    "grey" the unsaturated middle (0.25 <= value < 0.8: a grey, like a shaded white, is both),
    "brown" a hue of 12-45 degrees, saturation >= 0.25 and value >= 0.1, either dark (value <
    0.65: an orange in shade is brown too, as it looks) or dull (saturation < 0.6 and value <
    0.9: cardboard, tan, oak; a lit orange is neither); a red in shade, hue under 12, stays red.
    ValueError for another word."""
    if word not in COLOUR_WORDS:
        raise ValueError(f"not a colour word: {word!r}")
    pixels = rgb[np.asarray(mask, dtype=bool)]
    if not len(pixels):
        return 0.0
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    hue, sat, val = hsv[:, 0] * 2.0, hsv[:, 1] / 255.0, hsv[:, 2] / 255.0
    if word == "white":
        hit = (sat < 0.2) & (val >= WHITE_MIN_VALUE)
    elif word == "black":
        hit = val < 0.25
    elif word in ("grey", "gray"):
        hit = (sat < 0.2) & (val >= 0.25) & (val < 0.8)
    elif word == "brown":
        hit = ((hue >= 12) & (hue < 45) & (sat >= 0.25) & (val >= 0.1)
               & ((val < 0.65) | ((sat < 0.6) & (val < 0.9))))
    else:
        coloured = (sat * val >= 0.25) & (val >= 0.25)
        hit = np.zeros(len(hue), dtype=bool)
        for lo, hi in HUES[word]:
            hit |= coloured & (hue >= lo) & (hue < hi)
    return float(hit.mean())


# a frame has colour when over COLOUR_SHARE of its pixels have channels more than COLOUR_SPREAD
# levels apart: a mono camera's frame (image_codec.decode_image repeats its one channel) is 0
# everywhere, a YUV camera in night mode or a white-balanced grey frame a few levels, a coloured
# timestamp overlay under 1% of the pixels; a table of wood or of coloured objects far more (a
# grey room with one small coloured object is judged grey: its colour words are unused, not wrong)
COLOUR_SPREAD, COLOUR_SHARE = 12, 0.01


def has_colour(rgb: np.ndarray) -> bool:
    """Whether `rgb` (HxWx3 uint8) has colour (COLOUR_SPREAD, COLOUR_SHARE), judged on every
    8th row and column (~0.1 ms a megapixel). On a frame without it (a mono camera's) colour
    words cannot be judged: a green mug is as grey as a red one."""
    pixels = np.asarray(rgb)[::8, ::8].reshape(-1, 3).astype(np.int16)
    if not len(pixels):
        return False
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    return bool((spread > COLOUR_SPREAD).mean() > COLOUR_SHARE)


def judged_colours(rgb: np.ndarray, phrase: str, after_text: str = "") -> tuple[list[str], list[str]]:
    """`named_colours` of `phrase` as they can be checked on `rgb` (HxWx3 uint8): none on a
    frame without colour (`has_colour`), where judging them would rule out or find absent an
    object of the colour named; the phrase's other words still apply."""
    named, ruled_out = named_colours(phrase, after_text)
    if (named or ruled_out) and not has_colour(rgb):
        return [], []
    return named, ruled_out


def colours_after(after_text: str, phrase: str = "") -> str:
    """The words by which `after_text`, the text right after a target phrase, states that
    phrase's colour, or "" when it states none: the colour words, with "and", "or", "," and
    negations between them, after a copula ("that is red", "which are red and white", "that's
    not red"), "in", "coloured" or "painted" ("the mug in red"), or as an apposition ending in
    "one" ("the mug, the red one"). A colour of another phrase is not the target's: "" for "left
    of the red tray", "that is left of the red tray", "in the red box".

    An exclusion of others of the kind rules their colours out, "not red or blue" for "the mug,
    not the red or blue one", "any mug except the red one", "a mug other than the blue mug", "the
    mug, but not red": the colours must end the text or stand before "one(s)" or the head noun
    (last word) of `phrase`, the target phrase; "not the red tray" of "the mug" is another
    kind's colour."""
    # spoken or typed short: "that isn't red", "thats red"
    text = _CONTRACTED.sub(r"\1 not", " ".join(after_text.lower().split())).replace("thats ", "that's ")
    excluded = _excluded_colours(text, phrase)
    if excluded:
        return excluded
    stated = _STATED.match(text)
    found = stated or _APPOSITION.match(text)
    if found is None:
        return ""
    run: list[str] = []
    rest = re.findall(r"[a-z]+|,", text[found.end():])
    for word in rest:
        word = SYNONYMS.get(word, word)
        if word not in COLOUR_WORDS and word not in _JOINERS and word not in SHADES:
            break
        run.append(word)
    if stated is None and rest[len(run):len(run) + 1] not in (["one"], ["ones"]):
        return ""
    if stated is None and "," not in found.group() and rest[len(run) + 1:len(run) + 2] not in ([], [","]):
        return ""  # without its comma only at the end: "the mug the red one *is on*" is another
    return " ".join(run) if COLOUR_WORDS.intersection(run) else ""


def _excluded_colours(text: str, phrase: str) -> str:
    """colours_after's exclusion: "not c1 or c2 ..." for the colours `text` (lower-case, single
    spaced) rules out of the kind `phrase` names, or ""."""
    found = _EXCLUDING.match(text)
    if found is None:
        return ""
    words = re.findall(r"[a-z]+|[^\sa-z]", text[found.end():]) + [""]
    colours, i = [], 0
    while SYNONYMS.get(words[i], words[i]) in COLOUR_WORDS or words[i] in ("and", "or", "nor", ","):
        if SYNONYMS.get(words[i], words[i]) in COLOUR_WORDS:
            colours.append(SYNONYMS.get(words[i], words[i]))
        i += 1
    head = (re.findall(r"[a-z]+", phrase.lower()) or [""])[-1]
    ends = not words[i].isalpha() or words[i] in ("one", "ones", head, head + "s", head.removesuffix("s"))
    return "not " + " or ".join(colours) if colours and ends else ""


def named_colours(phrase: str, after_text: str = "") -> tuple[list[str], list[str]]:
    """(named, ruled out): the colour words of `phrase` ("the red and white mug") and of what
    `after_text` states of it (`colours_after`), each once in order. A colour after one of
    NEGATIONS ("non-red", "not red", "neither red nor blue") is ruled out rather than named, as
    is each one after it up to a word other than "or", "nor" or a colour ("not red or blue";
    "not red but blue" names blue)."""
    named: list[str] = []
    ruled_out: list[str] = []
    for word, role, _ in _roles(f"{phrase} {colours_after(after_text, phrase)}"):
        if role == "named":
            named.append(word)
        elif role == "ruled out":
            ruled_out.append(word)
    return list(dict.fromkeys(named)), list(dict.fromkeys(ruled_out))


def ruled_out_spans(phrase: str) -> list[tuple[int, int]]:
    """(start, end) character spans in `phrase` of its negations and the colours they rule out
    (`named_colours`): "non" and "red" of "the non-red mug". What they say is checked on the
    pixels; in the phrase's own entity scores (the mean embedding of its words) they would pull
    towards red things."""
    return [span for _, role, span in _roles(phrase) if role in ("negation", "ruled out")]


def _roles(text: str) -> list[tuple[str, str, tuple[int, int]]]:
    """(word, role, (start, end)) of each word and comma of `text`, lower-cased: role "named" or
    "ruled out" for a colour word, "negation" for one of NEGATIONS, else ""."""
    out = []
    negated = False
    matches = list(re.finditer(r"[a-z]+|,", text.lower()))
    for i, match in enumerate(matches):
        word, role = SYNONYMS.get(match.group(), match.group()), ""
        if word in COLOURED and i + 1 < len(matches) and matches[i + 1].group() in ("coloured", "colored"):
            word = COLOURED[word]
        shade = match.group().endswith("ish") and i + 1 < len(matches) and SYNONYMS.get(
            matches[i + 1].group(), matches[i + 1].group()) in COLOUR_WORDS  # "*reddish*-brown": brown
        if word in COLOUR_WORDS and not shade:
            role = "ruled out" if negated else "named"
        elif word in NEGATIONS:
            negated, role = True, "negation"
        elif word not in _NEGATION_CARRIES:
            negated = False
        out.append((word, role, match.span()))
    return out
