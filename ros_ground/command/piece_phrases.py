"""The noun phrases of one piece of a command (parse.py cuts it at its spatial words).

spaCy's noun chunks, plus what en_core_web_sm's small model leaves out of them on short spoken
commands: nouns it attaches loosely ("the mug or the cube" of "which is bigger, the mug or the
cube?"), "one" it tags a number ("the blue one"), and, in a piece with no chunk at all, the
nouns its parse makes objects or subjects ("sphere" of "pick up the rightmost sphere", tagged an
adverb; "Tray" of "Tray, please.", tagged an interjection). Words that name the picture, a
property asked about or courtesy (`NOT_OBJECTS`) make no phrase.
"""

from __future__ import annotations

import unicodedata

from ros_ground.phrases import PLACE_NOUNS, NounPhrase, head_phrase, noun_phrases, without_leading

OBJECT_DEPS = ("dobj", "obj")
SUBJECT_DEPS = ("nsubj", "nsubjpass", "attr")
WH_TAGS = ("WDT", "WP", "WP$", "WRB")

# head nouns naming the picture, a property asked about, courtesy or an interjection ("Ugh, please.")
NOT_OBJECTS = frozenset(
    "image picture photo photograph scene view frame detail details colour color size shape "
    "kind type material thanks thank thx ty cheers please hello hi hey bye okay ok sorry "
    "trouble problem favour favor moment moments minute minutes jiffy "  # "do me a favour and pick up ..."
    "bit tad "  # how far: "move it *a bit* to the left"
    "ugh oi meh argh psst yay phew yep yeah nah nope hmm um uh er oh ah aha oops".split())


def blank_symbols(text: str) -> str:
    """`text` with each emoji or other symbol (Unicode category So, and the joiners and variation
    selectors that build emoji) a space, so every offset stays the text's: the tagger takes "🙂"
    for a noun, the head of "the red mug 🙂" or the subject of "🙂 pick up the mug"."""
    # not U+FFFD, a word lost in decoding: "the red \ufffd" names an object no model can read
    return "".join(" " if (unicodedata.category(c) == "So" and c != "\ufffd") or c in _EMOJI_PARTS else c
                   for c in text)


_EMOJI_PARTS = frozenset("\u200d\ufe0e\ufe0f\u20e3")


def _interjected_noun(nlp, token) -> bool:
    """Whether `token`, tagged an interjection, is a noun the tagger took for one before
    courtesy: "Tray" of "Tray, please." ("Tray." alone is a noun; "Yes", "Sure", "Wow" stay
    interjections, and NOT_OBJECTS words such as "hello" are none)."""
    return (token.pos_ == "INTJ" and token.is_alpha and token.lower_ not in NOT_OBJECTS
            and nlp(token.text + ".")[0].pos_ in ("NOUN", "PROPN"))


def _loose_nouns(doc) -> list:
    """Nouns the parser attached as an unlabelled dependent ("dep"), and those coordinated with
    them, which no noun chunk holds: "the mug or the cube" of "which is bigger, the mug or the
    cube?"."""
    def root_of(t):
        while t.dep_ == "conj" and t.head is not t:
            t = t.head
        return t
    return [t for t in doc if t.pos_ in ("NOUN", "PROPN") and root_of(t).dep_ == "dep"]


def _described_ones(doc) -> list:
    """"one" / "ones" with a determiner or adjective of its own, which no noun chunk holds when
    the tagger takes it for a number: "the blue one" of "don't pick up the red mug, pick up *the
    blue one*"."""
    return [t for t in doc if t.lower_ in ("one", "ones") and t.pos_ in ("NUM", "PRON", "NOUN")
            and any(c.dep_ in ("det", "amod") for c in t.children)]


def _unchunked(doc, found: list[NounPhrase]) -> list:
    """Nouns with a determiner of their own that no phrase of `found` holds: spaCy's chunker
    skips a noun whose subtree reaches back over a chunk, as a correction's clause hung on it
    does ("pick up the red cube *i mean* the green cube": "the green cube" heads "i mean")."""
    return [t for t in doc if t.pos_ in ("NOUN", "PROPN")  # not "no wait", tagged a noun
            and any(c.dep_ == "det" and c.lower_ != "no" for c in t.lefts)
            and t.lower_ not in NOT_OBJECTS and t.lower_ not in PLACE_NOUNS  # "on the left"
            and not any(p.char_start <= t.idx < p.char_end for p in found)]


def _own_words(token) -> NounPhrase:
    """The phrase of `token` (a noun) and the modifiers right before it, its determiner first:
    "the green cube" of a noun whose subtree starts earlier (`_unchunked`)."""
    start = token.i
    while start > 0 and token.doc[start - 1].head.i == token.i and token.doc[start - 1].dep_ in _MODIFIERS:
        start -= 1
    span = token.doc[start:token.i + 1]
    return NounPhrase(text=span.text, char_start=span.start_char, char_end=span.end_char,
                      root_start=token.idx, root_end=token.idx + len(token.text))


_MODIFIERS = frozenset(("det", "amod", "compound", "nummod", "poss", "quantmod", "predet"))


def piece_phrases(nlp, piece: str, after_cut: str | None) -> list[NounPhrase]:
    """noun_phrases of `piece` and the phrases its `_loose_nouns` and `_described_ones` head;
    when it has none, the phrases headed by the objects and subjects of its parse
    (phrases.head_phrase) that are no pronoun or question word, else, in a piece after spatial
    words (which starts with the landmark: "tray" of "cube behind tray?", tagged a verb), the
    phrase its root heads. An adverbial noun counts as an object there: "Red mug, please."."""
    # courtesy and picture words make no phrase (NOT_OBJECTS): "thanks" of "Green mug, thanks."
    found = [p for p in noun_phrases(nlp, piece)
             if piece[p.root_start:p.root_end].lower() not in NOT_OBJECTS]
    doc = nlp(piece)
    loose = _loose_nouns(doc) + _described_ones(doc)
    if after_cut == "relation":  # the landmark opening it, tagged an adverbial noun ("the box, can you")
        loose += [t for t in doc if t.dep_ == "npadvmod" and t.pos_ in ("NOUN", "PROPN")
                  and t.left_edge.i == 0]
    if found:
        found = [without_leading(doc, p) for p in found]
        found += [without_leading(doc, head_phrase(t)) for t in loose
                  if not any(p.char_start <= t.idx < p.char_end for p in found)]
        found += [_own_words(t) for t in _unchunked(doc, found)]
        return sorted(found, key=lambda p: p.char_start)
    # "mug" of "Red mug, please." is an adverbial noun (npadvmod) of "please", and "Tray" of
    # "Tray, please." an interjection that alone is a noun
    heads = sorted({t.i: t for t in [t for t in doc if t.dep_ in OBJECT_DEPS + SUBJECT_DEPS or (
        t.dep_ == "npadvmod" and t.pos_ in ("NOUN", "PROPN")) or _interjected_noun(nlp, t)]
        + loose}.values(), key=lambda t: t.i)
    if not heads and after_cut:
        heads = [t for t in doc if t.dep_ == "ROOT"]
    return [head_phrase(t) for t in heads
            if t.pos_ != "PRON" and t.tag_ not in WH_TAGS and not t.is_punct]
