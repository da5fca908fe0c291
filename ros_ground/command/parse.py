"""The command's own phrases, which one it is about, and what its spatial words relate it to.

The prompt's noun phrases are found with the same rules as the answer's (phrases.noun_phrases)
on the cleaned prompt (lmm.LMMAdapter.clean_prompt: no chat-template text); grounding.py
grounds them in the image.

The command is parsed in pieces, cut at the spatial words refer.resolve_pair reads (a relation:
"left of", "behind", "in front of"; a superlative after its noun: "closest to the camera";
`command_pieces`): given the whole command, en_core_web_sm tags "block" of "where is the
white jenga block right of the ball?" a verb, and the target came out as "the white jenga";
each piece alone parses as the noun phrase it is (docs/MEASUREMENTS.md, "The command's parse").
A piece without a noun chunk takes the phrases its parse's objects and subjects head
(phrases.head_phrase): the tagger calls "sphere" of "pick up the rightmost sphere" an adverb.

The target rule (`target_rule`), first match wins, on spaCy's dependency parse of each piece:
1. the direct object of a verb: "pick up *the red mug* left of the tray", "put *the sphere* on
   the tray", "can you grab *the duck*?";
2. else the object of a verb of looking or telling (`LOOKING_VERBS`): "find / describe *the cube*";
3. else a subject or attribute of the clause: "where is *the purple tray*?", "what colour is
   *the mug*?", "is there *a ball* on the table?", "*which object* is closest to the camera?"
   (the object asked for: its relation or superlative follows it), or a bare "*the red mug*
   left of the tray";
4. else the first phrase;
5. none (-1) when no phrase qualifies.
The landmark, the first phrase after a relation, is never the target, though parsed alone, as
its piece is, it looks like a subject ("the tray" of "the cube left of *the tray* is mine"):
it says where the object is ("what is behind *the mug*?" asks for another one, which the
answer names). The first phrase after a superlative meets rule 4 at best. A relation after the
object of a placing verb ("*put* the mug behind the tray", PLACEMENT_VERBS) says where it goes,
not which one it is, and does not choose it (relations.py).
Never the target: a question word heading its phrase ("what" of "what is it?"), a property
asked about ("what colour"), a place ("the left"), the object of a negated verb ("don't pick up
*the mug*, pick up the cube", "leave *the bear* alone", "*avoid* the duck"), a phrase excluded
by the words before it ("*not* the red one, the green one", "everything *except* the duck"),
one a self-correction replaces ("pick up the red mug, *no wait*, the blue one": `_CORRECTION`),
a demonstrative alone ("grab *that one*": `_pointed_at`), where a carried object goes ("bring it
*to the tray*"), the object of a spatial preposition, a place as a landmark is ("what is next
to *the mug*?", "on top of *the tray*", `SPATIAL_PREPOSITIONS`), or a phrase naming the
picture rather than a thing in it ("the image", "detail"). Phrases headed by such a picture or
property word (`NOT_OBJECTS`) are not grounded at all: no object answers to "the image" of
"Describe the image in detail.", and a mask for it would point at one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace

from ros_ground.command import corrections
from ros_ground.command.colour_words import EXCLUDING_WORDS
from ros_ground.command.conjoined import more_targets
from ros_ground.command.piece_phrases import (
    NOT_OBJECTS,
    OBJECT_DEPS,
    SUBJECT_DEPS,
    WH_TAGS,
    blank_symbols,
    piece_phrases,
)
from ros_ground.command.spatial_words import (
    NEARNESS_WORDS,
    joined_from_last,
    relation_after,
    relation_pattern,
    superlative_of,
    without_measures,
)
from ros_ground.phrases import PLACE_NOUNS, NounPhrase

# a relation (spatial_words.relation_pattern: "to the left of" whole, "right behind") or a superlative
# that follows its noun ("closest to the camera")
SPATIAL_WORDS = re.compile(r"(?P<relation>" + relation_pattern() + r")|(?P<superlative>\b(?:"
                           + NEARNESS_WORDS + r")\b)", re.IGNORECASE)
# verbs whose relation after their object says where to put it ("put the mug *behind the
# tray*"), not which one it is ("pick up the mug behind the tray")
PLACEMENT_VERBS = frozenset("put place set lay stack drop move position slide shift carry leave throw toss "
                            "insert tuck".split())
# verbs that carry or move their object somewhere only with a preposition of motion after it:
# "bring / push the mug *to* the tray", where "bring the mug on the tray" and "push the button
# next to the door" say which one (relations.py)
CARRYING_VERBS = ("bring", "take", "carry", "fetch", "get", "hand", "push", "pull", "drag", "nudge",
                  "shove", "roll")
# prepositions whose object is a place ("what is *on* the tray?"); "to"/"from" after NEAR_WORDS
SPATIAL_PREPOSITIONS = frozenset(
    "on onto in into inside near beside under underneath beneath below above over atop between "
    "among around behind against nearest closest".split())
NEAR_WORDS = frozenset(
    "next close closer closest near nearer nearest far farther farthest further furthest "
    "adjacent".split())
# verbs of looking or telling: their object is the target when no verb acts on another ("find the
# duck, then pick up *the cube*"), asked about, not acted on (intent.py)
LOOKING_VERBS = frozenset("find locate look see spot show identify watch search describe tell name "
                          "count explain".split())
# verbs whose object the robot must keep away from, never the target: "*avoid* the duck"
EXCLUDING_VERBS = frozenset("avoid ignore skip disregard exclude".split())
# words that exclude the phrase right after them: "*not* the red one, the green one", "pick up
# everything *except* the duck"
_EXCLUDED_AFTER = re.compile(r"\b(?:" + EXCLUDING_WORDS + r"|(?:everything|anything|all)\s+but|"
                             r"(?:whatever|anything|whichever|one|that|which)\s+(?:is|'s)(?:\s+not|n'?t))\s*$",
                             re.IGNORECASE)
# imperatives the tagger may take for a proper noun at the start of a command ("Lay the duck
# behind the mug."): never a phrase there, and their object is a verb's object
COMMAND_VERBS = PLACEMENT_VERBS | frozenset(
    "pick grab take find fetch get bring hand give show point push pull lift hold".split())
# a self-correction right before a phrase, which then replaces the target before it: "pick up
# the red mug *no wait* the blue one", "*I mean*", ", *sorry*,", "*or rather*", "*actually no*",
# with the request said again: "the mug. *No wait, grab* the ball"
_CORRECTION = re.compile(r"(?:^|[\s,.;:!?])" + corrections.WORDS + r"[\s,.;:!?-]*(?:(?:just|please)\s+)?"
                         r"(?P<verb>(?:" + "|".join(sorted(COMMAND_VERBS)) + r")(?:\s+(?:up|me|out))?\s+)?$",
                         re.IGNORECASE)
# a request said again for a phrase that "instead" after it makes a correction: "pick up the mug
# *and grab* the ball instead" (not "instead of", which rules out what follows)
_SAID_AGAIN = re.compile(r"[\s,.;:!?]*(?:(?:and|but)\s+)?(?:(?:then|just|please|actually)\s+)*(?:" + "|".join(
    sorted(COMMAND_VERBS)) + r")(?:\s+(?:up|me|out))?\s+", re.IGNORECASE)
# in the phrase's clause: "(put the ball) on the tray instead"
_INSTEAD = re.compile(r"[^.;!?]*\binstead\b(?!\s+of)", re.IGNORECASE)
# a demonstrative for what the user points at or the robot holds, as "it": "grab *that one*", or
# "one" of what was said or done before: "*the other one*", "*the one* you just dropped"
_DEICTIC = re.compile(r"(?:(?:this|that|these|those)\s+)?ones?|(?:these|those)\s+(?:two|three|four)|"
                      r"the\s+two|(?:the|an?)\s+(?:other|next|same|remaining|previous|former|latter)\s+ones?|"
                      r"another\s+one", re.IGNORECASE)
_PLACED_BEFORE = re.compile(r"\b(?:" + "|".join(sorted(PLACEMENT_VERBS)) + r")\s+$", re.IGNORECASE)
# "the one" of the dialogue: "the one *you just dropped*", "the one *I showed you*"
_SAID_BEFORE = re.compile(r"\s+(?:that\s+|which\s+)?(?:you|i|we)\b", re.IGNORECASE)
# a count ("*how many* mugs are there?") is about no one object: no target
_HOW, _MANY = re.compile(r"\bhow\s*$", re.IGNORECASE), re.compile(r"(?:many|much)\b", re.IGNORECASE)
# "between the mug *and* / *,* / *or* the duck": its two landmarks (relations.second_of)
AND = re.compile(r"\s*(?:,\s*(?:(?:and|or|&)\s*)?|(?:and|or|&)\s*)(?:then\s+)?", re.IGNORECASE)
_AN_FOR_AND = re.compile(r"\ban(?=\s+(?:the|this|that|these|those|my|your|a)\b)", re.IGNORECASE)
_BETWEEN = re.compile(r"\bbetween\s*$", re.IGNORECASE)
TRAILING_PLEASE = re.compile(r"(?<=\w)\s+(?:please|pls|plz)\b", re.IGNORECASE)  # no comma before it
_NO_LANDMARK = re.compile(r"\s*(?:$|[,.;:!?]|(?:and|or|then|but)\b)", re.IGNORECASE)  # no landmark: an adverb
# what a piece may start with that no phrase does: space, and punctuation left by a cut
_LEADING = " \t\r\n,;:.!?-\u2013\u2014\"'\u201c\u201d\u2018\u2019("


def command_pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of `text` between the spatial words refer.resolve_pair reads
    (spatial_words.relation_pattern, and the SUPERLATIVES after their noun, cut whole: "the
    camera" of "closest to the camera" is the viewpoint), stripped of whitespace and leading
    punctuation (", not the one" -> "not the one"), empty ones left out; [(0, len)] for none."""
    return [(start, end) for start, end, _ in _pieces(text)]


def _pieces(text: str) -> list[tuple[int, int, str | None]]:
    """command_pieces, each with the kind of spatial words before it: "relation" (it starts
    with the landmark), "adverb" (relation words no landmark follows: "leave the bear *behind*
    and pick up the mug"), "superlative", or None for the first."""
    cuts, start, kind = [], 0, None
    for match in SPATIAL_WORDS.finditer(text):
        cuts.append((start, match.start(), kind))
        start, kind = match.end(), match.lastgroup
        if kind == "relation" and _NO_LANDMARK.match(text, start):
            kind = "adverb"
    cuts.append((start, len(text), kind))
    out = []
    for start, end, kind in cuts:
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip(_LEADING))
        kept = piece[lead:].rstrip()
        if kept:
            out.append((start + lead, start + lead + len(kept), kind))
    return out


def _target_rules(nlp, text: str, phrases: list[NounPhrase]) -> list[tuple[int | None, bool | None]]:
    """Per phrase of `text`, (the target rule it meets, 0 to 3 for the module docstring's 1 to
    4, or None: never the target; whether it is the direct object of a PLACEMENT_VERBS word,
    which rule 0 requires, or None for the object of a negated or excluding verb: ruled out)."""
    if not phrases:
        return []
    doc = nlp(text)
    rules = []
    for phrase in phrases:
        span = doc.char_span(phrase.char_start, phrase.char_end, alignment_mode="expand")
        root = doc.char_span(phrase.root_start, phrase.root_end, alignment_mode="expand")
        if span is None or root is None:
            rules.append((None, False))
            continue
        root = root.root
        word = root.text.lower()
        if word in NOT_OBJECTS or word in PLACE_NOUNS or root.tag_ in WH_TAGS:
            rules.append((None, False))
            continue
        if root.dep_ == "compound" and root.head.text.lower() in PLACE_NOUNS:
            root = root.head  # "pick up the cube right of ...": the parse hangs on "right"
        verb = root.head.text.lower()
        if root.dep_ in OBJECT_DEPS and (root.head.pos_ in ("VERB", "AUX") or verb in COMMAND_VERBS):
            rules.append((None, None) if _excluded(root.head) else
                         (1 if verb in LOOKING_VERBS else 0, verb in PLACEMENT_VERBS))
        elif root.dep_ in SUBJECT_DEPS or root.dep_ == "ROOT":
            rules.append((2, False))
        else:
            rules.append((None if _spatial_object(root) else 3, False))
    return rules


def command_phrases(nlp, text: str) -> tuple[list[NounPhrase], int]:
    """(noun phrases of the cleaned prompt `text`, index of the target among them or -1),
    distances and angles left out (`without_measures`).

    A robot asks the same few commands again and again: each (nlp, text) is parsed once
    (`_parsed_command`, two spaCy passes a piece) and its phrases handed out as fresh copies."""
    phrases, target, *_ = _parsed_command(nlp, without_measures(text))
    return [replace(p) for p in phrases], target


def target_rule(nlp, text: str) -> int | None:
    """The rule naming the command's target: 0 to 3 (the module docstring's 1 to 4), None: none."""
    return _parsed_command(nlp, without_measures(text))[3]


def ruled_out(nlp, text: str) -> tuple[int, ...]:
    """Indices into command_phrases' phrases the command rules out ("not *the mug*", "don't ...")."""
    return _parsed_command(nlp, without_measures(text))[4]


def placement(nlp, text: str) -> bool:
    """Whether the target phrase of `text` (command_phrases) is the object of a PLACEMENT_VERBS
    verb ("*put* the mug behind the tray"): then a relation right after it says where to put
    it, unless the destination follows the landmark (`_resolve_target`)."""
    return _parsed_command(nlp, without_measures(text))[2]


def _excluded(verb) -> bool:
    """Whether the command excludes the object of `verb` (a spaCy Token): "*don't* pick up the
    mug", "*never* grab it", "leave the bear *alone*" (`_left_alone`), "*avoid* the duck"
    (EXCLUDING_VERBS), "*without* touching the mug". (`_parsed_command` reads "leave the bear
    *behind*": the cut takes the relation words out of every piece.)"""
    # before the verb: "pick up the green cube *not* the red one" (speech, no comma) hangs
    # "not" on "pick", but it excludes the phrase after it (_EXCLUDED_AFTER); "no" of "*no*
    # wait, the blue one" corrects (_CORRECTION)
    negated = any(c.dep_ == "neg" and c.i < verb.i and c.lower_ != "no" for c in verb.children)
    if verb.text.lower() in EXCLUDING_VERBS:  # "*don't* ignore the mug": the mug after all
        return not negated
    if verb.dep_ == "pcomp" and verb.head.lower_ == "without":  # "*without* touching the mug"
        return True
    return negated or (verb.lower_ == "leave" and _left_alone(verb))


def _left_alone(leave) -> bool:
    """Whether "leave" (a spaCy Token) leaves its object where it is: "leave the bear *alone*",
    "*there*", "*be*", "the mug *where it is*", or beside another verb acting on an object
    and with no place of its own ("leave the mug and *take the cube*", "leave the mug for now.
    *Grab the cube*."; "leave it on the tray" places it)."""
    if any(c.dep_ in ("advmod", "oprd", "xcomp") and c.lower_ in ("alone", "there", "be")
           for c in leave.children) or (leave.dep_ == "csubj" and leave.head.lemma_ == "be"):
        return True  # "leave the mug be and ...": spaCy makes "be" the root
    if any(w.lower_ == "where" for clause in leave.subtree if clause.dep_ in ("relcl", "ccomp")
           for w in clause.children):
        return True
    if any(c.dep_ == "prep" and c.lower_ in _PLACING_PREPOSITIONS for c in leave.children):
        return False
    return any(verb is not leave and verb.pos_ == "VERB" and any(
        c.dep_ == "dobj" or (c.dep_ == "prep" and any(g.dep_ == "pobj" for g in c.children))
        for c in verb.children) for verb in leave.doc)


# where "leave" puts its object ("leave it *on* the tray"), rather than when or how
_PLACING_PREPOSITIONS = frozenset("on onto in into inside at under underneath beneath beside by near "
                                  "behind next above below to toward towards".split())


def _spatial_object(token) -> bool:
    """Whether `token` (a spaCy Token) is the object of a spatial preposition, a place things
    are in relation to ("what is next to *the mug*?", "on top of *the tray*", "between the mug
    and *the tray*"), as a relation's landmark is: never the target."""
    while token.dep_ == "conj":
        token = token.head
    if token.dep_ != "pobj":
        return False
    word, head = token.head.text.lower(), token.head.head.text.lower()
    # "bring it *to the tray*": where a carried or placed object goes ("point to the mug", "go
    # to the tray" and "move to the duck", with no object moved, are about the mug, tray, duck)
    carried = (word in ("to", "toward", "towards") and head in CARRYING_VERBS + tuple(PLACEMENT_VERBS)
               and any(c.dep_ in OBJECT_DEPS for c in token.head.head.children))
    return (word in SPATIAL_PREPOSITIONS or carried or (word in ("to", "from") and head in NEAR_WORDS)
            or (word == "of" and head in PLACE_NOUNS))


def _corrects(nlp, said: str, phrases: list, piece: str, phrase, start: int, after_target: bool) -> bool:
    """Whether `phrase` (of `piece`, which starts at `start` in `said`) replaces the target said
    before it: right after the target, after a self-correction ("the red mug, no, *the blue
    one*"; not "the mug in the box, no, the tray", which corrects where), or after one with the
    request said again, wherever the target's own words end ("put the mug on the tray. No wait,
    put *the ball* in the box"), or with the request said again and "instead" after it. Not when
    it is the subject of a statement ("no wait, *the ball* is in the way") or added ("... too")."""
    gap = said[phrases[-1].char_end:start + phrase.char_start]
    found = _CORRECTION.search(gap)
    again = _SAID_AGAIN.fullmatch(gap) and _INSTEAD.match(said, start + phrase.char_end)
    if not (found and (after_target or found.group("verb")) or again) or corrections.ADDED.match(
            said, start + phrase.char_end):
        return False
    span = nlp(piece).char_span(phrase.root_start, phrase.root_end, alignment_mode="expand")
    root = None if span is None else span.root  # a subject before its verb: "the ball *is* ..."
    return root is None or root.dep_ not in ("nsubj", "nsubjpass") or root.head.i < root.i


def _pointed_at(phrase: str, after: str, before: str = "") -> bool:
    """Whether `phrase` is a demonstrative alone (`_DEICTIC`: "that one", "the other one", "these
    two", "one"), or "the one" of what was said or done before ("... you just dropped"), that
    nothing after it (`after`) says more of: no superlative ("that one *on the left*") and no
    relation ("this one *behind the tray*"; after a placing verb in `before`, a relation says where
    it goes). It means what the user points at or the robot holds, as "it" does; grounded, it
    would be an arbitrary object."""
    if re.fullmatch(r"the\s+ones?", phrase, re.IGNORECASE) and _SAID_BEFORE.match(after):
        return True
    placed = _PLACED_BEFORE.search(before)  # "put these two *next to the mug*": where they go
    return (_DEICTIC.fullmatch(phrase) is not None and superlative_of(phrase, after) is None
            and (placed or relation_after(after) is None))


def _imperative(nlp, word: str) -> bool:
    """Whether `word`, a phrase opening its piece, is a verb the tagger took for a proper noun
    for its capital: one of COMMAND_VERBS ("Lay the duck ..."), or a word it tags a verb once
    lower-cased ("Describe." is a proper noun, "describe." a verb; "mug." stays a noun)."""
    word = word.lower()
    if word in COMMAND_VERBS:
        return True
    return word.isalpha() and nlp(word + ".")[0].pos_ == "VERB"


@functools.lru_cache(maxsize=64)
def _parsed_command(nlp, text: str) -> tuple[tuple[NounPhrase, ...], int, bool, int | None, tuple]:
    """The phrases of every piece, the target among them (the best rule, then the first),
    whether the target is placed (`placement`), the target's rule (None: no target), and the
    phrases ruled out (`ruled_out`). A
    piece after a relation starts with the landmark ("the tray" of "the cube left of the tray
    is mine"; "the mug" of "what is behind the mug?"), never the target though, alone, it
    looks like the subject. After a superlative ("which is closest to the camera, *the mug* or
    the cube?") the first phrase meets rule 4 at best. A bare noun phrase before them ("the red
    mug" of "the red mug left of the tray, grab it") is what the sentence is about: rule 3."""
    phrases, candidates, placed, ruled = [], [], [], []
    said, text = text, joined_from_last(text)  # "the second to last mug" one phrase; offsets kept
    text = TRAILING_PLEASE.sub(lambda m: " " * len(m.group()), blank_symbols(text))  # "please": the head
    text = _AN_FOR_AND.sub("& ", text)  # speech to text: "the mug *an* the cube" made the mug a dative
    text = corrections.IDIOMS.sub(lambda m: " " * len(m.group()), text)
    pieces = _pieces(text)
    for i, (start, end, cut) in enumerate(pieces):
        piece = text[start:end]
        # "leave the bear behind and ...": the cut took "behind" out of the clause that excludes
        left_behind = (i + 1 < len(pieces) and pieces[i + 1][2] == "adverb"
                       and re.search(r"\bleave\b", piece, re.IGNORECASE) is not None)
        found = [p for p in piece_phrases(nlp, piece, cut)
                 if piece[p.root_start:p.root_end].lower() not in NOT_OBJECTS
                 and not _pointed_at(p.text, text[start + p.char_end:], text[:start + p.char_start])
                 and not (p.char_start == 0 and _imperative(nlp, p.text))]
        for k, (phrase, (rule, placing)) in enumerate(zip(found, _target_rules(nlp, piece, found))):
            # the landmark opens its piece ("behind *you* is a mug": the object; "between the mug *and the
            # duck*": two); a phrase after words of its own ("... *and pick up* the cube") keeps its rule
            landmark = (not re.search(r"\w", piece[:phrase.char_start]) if k == 0 else _BETWEEN.search(
                text, 0, start) and AND.fullmatch(piece, found[0].char_end, phrase.char_start))
            if rule is not None and cut is not None and landmark:
                rule = None if cut == "relation" else max(rule, 3)
            shunned = (left_behind and placing) or placing is None or _EXCLUDED_AFTER.search(
                piece[:phrase.char_start])
            if shunned or (_HOW.search(piece[:phrase.char_start]) and _MANY.match(phrase.text)):
                rule = None  # excluded, or counted: "how *many mugs* are there?" is about none
            if rule is not None and candidates and _corrects(
                    nlp, said, phrases, piece, phrase, start, candidates[-1][1] == len(phrases) - 1):
                ruled.append(candidates[-1][1])  # the target it corrects
                rule, candidates = min(candidates)[0], []  # the object meant after all
            if rule is not None:
                candidates.append((rule, len(phrases)))
            elif shunned:
                ruled.append(len(phrases))
            placed.append(rule == 0 and bool(placing))
            phrases.append(replace(phrase, text=said[phrase.char_start + start:phrase.char_end + start],
                                   char_start=phrase.char_start + start,
                                   char_end=phrase.char_end + start,
                                   root_start=phrase.root_start + start,
                                   root_end=phrase.root_end + start))
    # what is joined to a phrase ruled out is ruled out with it: "don't pick up the mug *and the
    # cube*", "everything except the mug *and the cube*"; not past a comma: "pick up the duck, not
    # the mug, *and the cube*"
    ruled += [k for r in ruled for k in more_targets(said, phrases, r, clauses=False)
              if "," not in said[phrases[r].char_end:phrases[k].char_start]]
    cancel = corrections.last_cancel(said)
    if cancel:  # "Pick up the mug. Never mind, where is the ball?": the mug is asked for no more
        ruled += [k for _, k in candidates if phrases[k].char_end <= cancel.start()]
    candidates = [c for c in candidates if c[1] not in ruled]
    rule, target = min(candidates) if candidates else (None, -1)
    return tuple(phrases), target, target >= 0 and placed[target], rule, tuple(sorted(set(ruled)))
