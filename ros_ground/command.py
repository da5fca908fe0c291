"""The command's own phrases: which pixels the prompt means, and which phrase it is about.

The prompt's noun phrases are found with the same rules as the answer's (phrases.noun_phrases)
on the cleaned prompt (lmm.LMMAdapter.clean_prompt: no chat-template text), pooled over the
prompt tokens' prefill attention (Generation.prompt_maps, normalised by their mean as the
answer's maps are by theirs) and grounded with the engine's modes (point / entities / auto).

The command is parsed in pieces, cut at the spatial words refer.resolve reads (a relation:
"left of", "behind", "in front of"; a superlative after its noun: "closest to the camera";
`command_pieces`). en_core_web_sm, given the whole command, tags "block" of "where is
the white jenga block right of the ball?" a verb and "bear" of "pick up the teddy bear behind
the brick" a clause of its own, so the target phrase came out as "the white jenga" or "the
teddy", and took "closest" of "pick up the lego brick closest to the camera" for the object,
making "the camera" the target; each piece alone parses as the noun phrase it is. On the 240
commands of the eval's seeds 0..119 (in distribution and ood) the whole-command parse got 19
target phrases and 19 landmarks wrong, the pieces none (docs/MEASUREMENTS.md, "The command's
parse").
A piece without a noun chunk takes the phrases its parse's objects and subjects head
(phrases.head_phrase): the tagger calls "sphere" of "pick up the rightmost sphere" an adverb.

The target rule (`target_index`), first match wins, on spaCy's dependency parse of each piece:
1. the direct object of a verb: "pick up *the red mug* left of the tray", "find *the cube*",
   "put *the sphere* on the tray", "can you grab *the duck*?";
2. else a subject or attribute of the clause: "where is *the purple tray*?", "what colour is
   *the mug*?", "is there *a ball* on the table?", "*which object* is closest to the camera?"
   (the object asked for: its relation or superlative follows it), or a bare "*the red mug*
   left of the tray";
3. else the first phrase;
4. none (-1) when no phrase qualifies.
The landmark, the first phrase after a relation, is never the target, though parsed alone, as
its piece is, it looks like a subject ("the tray" of "the cube left of *the tray* is mine"):
it says where the object is ("what is behind *the mug*?" asks for another one, which the
answer names). The first phrase after a superlative meets rule 3 at best. A relation after the
object of a placing verb ("*put* the mug behind the tray", PLACEMENT_VERBS) says where it goes,
not which one it is, and does not choose it (`is_destination`).
Never the target: a question word heading its phrase ("what" of "what is it?"), a property
asked about ("what colour"), a place ("the left"), or a phrase naming the picture rather than a
thing in it ("the image", "detail"). Phrases headed by such a picture or property word
(`NOT_OBJECTS`) are not grounded at all: no object answers to "the image" of "Describe the
image in detail.", and a mask for it would point at one.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace

import numpy as np

from ros_ground.geometry import upsample_map
from ros_ground.maps import normalise_maps, peak_point, phrase_map
from ros_ground.phrases import (
    PLACE_NOUNS,
    NounPhrase,
    head_phrase,
    noun_phrases,
    tokens_in_span,
    without_leading,
)
from ros_ground.refer import (
    RELATION_NAMES,
    SUPERLATIVES,
    relation_after,
    relation_only,
    relation_pattern,
    resolve,
    resolve_pair,
)
from ros_ground.results import GroundedPhrase, Reference

OBJECT_DEPS = ("dobj", "obj")
SUBJECT_DEPS = ("nsubj", "nsubjpass", "attr")
WH_TAGS = ("WDT", "WP", "WP$", "WRB")
# a relation (refer.relation_pattern: "to the left of" whole, "right behind") or a superlative
# that follows its noun ("closest to the camera")
_SPATIAL = re.compile(r"(?P<relation>" + relation_pattern() + r")|(?P<superlative>\b(?:" + "|".join(
    r"\s+".join(map(re.escape, s.split())) for s in SUPERLATIVES if " " in s) + r")\b)",
    re.IGNORECASE)
# verbs whose relation after their object says where to put it ("put the mug *behind the
# tray*"), not which one it is ("pick up the mug behind the tray")
PLACEMENT_VERBS = frozenset("put place set lay stack drop move position slide shift carry leave".split())
# imperatives the tagger may take for a proper noun at the start of a command ("Lay the duck
# behind the mug."): never a phrase there, and their object is a verb's object
COMMAND_VERBS = PLACEMENT_VERBS | frozenset(
    "pick grab take find fetch get bring hand give show point push pull lift hold".split())
# a destination after a landmark, which makes the relation before it a description again: "put
# the mug left of the tray *on the shelf*"; not "to hide it", "at once", "on the left"
_DESTINATION = re.compile(
    r"^[\s,]*(?:to|on|onto|into|in|inside|at|near|next\s+to|beside|by|under|over|above|below|"
    r"between|on\s+top\s+of)\s+(?:the|a|an|my|your|his|her|its|our|their|this|that|these|those)"
    r"\s+(?!(?:" + "|".join(sorted(PLACE_NOUNS)) + r")\b)\w", re.IGNORECASE)
# what a piece may start with that no phrase does: space, and punctuation left by a cut
_LEADING = " \t\r\n,;:.!?-\u2013\u2014\"'\u201c\u201d\u2018\u2019("
# head nouns that name the picture or a property asked about, not an object in the scene
NOT_OBJECTS = frozenset(
    "image picture photo photograph scene view frame detail details colour color size shape "
    "kind type material".split())


def command_pieces(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of `text` between the spatial words refer.resolve reads
    (refer.relation_pattern, and the refer.SUPERLATIVES that follow their noun, cut whole: "the
    camera" of "closest to the camera" is the viewpoint, no thing in the picture to give a
    mask), stripped of whitespace and of leading punctuation (", not the one" -> "not the
    one"), empty pieces left out; [(0, len)] when there are none."""
    return [(start, end) for start, end, _ in _pieces(text)]


def _pieces(text: str) -> list[tuple[int, int, str | None]]:
    """command_pieces, each with the kind of spatial words before it: "relation" (it starts
    with the landmark), "superlative", or None for the first."""
    cuts, start, kind = [], 0, None
    for match in _SPATIAL.finditer(text):
        cuts.append((start, match.start(), kind))
        start, kind = match.end(), match.lastgroup
    cuts.append((start, len(text), kind))
    out = []
    for start, end, kind in cuts:
        piece = text[start:end]
        lead = len(piece) - len(piece.lstrip(_LEADING))
        kept = piece[lead:].rstrip()
        if kept:
            out.append((start + lead, start + lead + len(kept), kind))
    return out


def target_index(nlp, text: str, phrases: list[NounPhrase]) -> int:
    """Index into `phrases` (noun phrases of `text`, in order) of the phrase the command is
    about, or -1; the rule is in the module docstring."""
    candidates = [(rule, i) for i, (rule, _) in enumerate(_target_rules(nlp, text, phrases))
                  if rule is not None]
    return min(candidates)[1] if candidates else -1


def _target_rules(nlp, text: str, phrases: list[NounPhrase]) -> list[tuple[int | None, bool]]:
    """Per phrase of `text`, (the target rule it meets: 0, 1 or 2, or None: never the target;
    whether it is the direct object of a PLACEMENT_VERBS word, which rule 0 requires)."""
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
            rules.append((0, verb in PLACEMENT_VERBS))
        elif root.dep_ in SUBJECT_DEPS or root.dep_ == "ROOT":
            rules.append((1, False))
        else:
            rules.append((2, False))
    return rules


def command_phrases(nlp, text: str) -> tuple[list[NounPhrase], int]:
    """(noun phrases of the cleaned prompt `text`, index of the target among them or -1).

    A robot asks the same few commands again and again: each (nlp, text) is parsed once
    (`_parsed_command`, two spaCy passes a piece) and its phrases handed out as fresh copies."""
    phrases, target, _ = _parsed_command(nlp, text)
    return [replace(p) for p in phrases], target


def placement(nlp, text: str) -> bool:
    """Whether the target phrase of `text` (command_phrases) is the object of a PLACEMENT_VERBS
    verb ("*put* the mug behind the tray"): then a relation right after it says where to put
    it, unless the destination follows the landmark (`_resolve_target`)."""
    return _parsed_command(nlp, text)[2]


def _piece_phrases(nlp, piece: str, after_cut: str | None) -> list[NounPhrase]:
    """noun_phrases of `piece`; when it has none, the phrases headed by the objects and subjects
    of its parse (phrases.head_phrase) that are no pronoun or question word, else, in a piece
    after spatial words (which starts with the landmark: "tray" of "cube behind tray?", tagged a
    verb), the phrase its root heads."""
    found = noun_phrases(nlp, piece)
    doc = nlp(piece)
    if found:
        return [without_leading(doc, p) for p in found]
    heads = [t for t in doc if t.dep_ in OBJECT_DEPS + SUBJECT_DEPS]
    if not heads and after_cut:
        heads = [t for t in doc if t.dep_ == "ROOT"]
    return [head_phrase(t) for t in heads
            if t.pos_ != "PRON" and t.tag_ not in WH_TAGS and not t.is_punct]


@functools.lru_cache(maxsize=64)
def _parsed_command(nlp, text: str) -> tuple[tuple[NounPhrase, ...], int, bool]:
    """The phrases of every piece, the target among them (the best rule, then the first), and
    whether the target is placed (`placement`). A piece after a relation starts with the
    landmark ("the tray" of "the cube left of the tray is mine"; "the mug" of "what is behind
    the mug?", which asks for another object), never the target though, parsed alone, it looks
    like the subject. After a superlative ("which is closest to the camera, *the mug* or the
    cube?") the first phrase meets rule 3 at best. A bare noun phrase before them ("the red
    mug" of "the red mug left of the tray, grab it") is what the sentence is about: rule 1."""
    phrases, candidates, placed = [], [], []
    for start, end, cut in _pieces(text):
        piece = text[start:end]
        found = [p for p in _piece_phrases(nlp, piece, cut)
                 if piece[p.root_start:p.root_end].lower() not in NOT_OBJECTS
                 and not (p.char_start == 0 and p.text.lower() in COMMAND_VERBS)]
        for k, (phrase, (rule, placing)) in enumerate(zip(found, _target_rules(nlp, piece, found))):
            if rule is not None and k == 0 and cut is not None:
                # the landmark opens its piece; after a pronoun landmark ("behind *you* is a
                # mug") the first phrase is the object
                landmark = cut == "relation" and not re.search(r"\w", piece[:phrase.char_start])
                rule = None if landmark else max(rule, 2)
            if rule is not None:
                candidates.append((rule, len(phrases)))
            placed.append(rule == 0 and placing)
            phrases.append(replace(phrase, char_start=phrase.char_start + start,
                                   char_end=phrase.char_end + start,
                                   root_start=phrase.root_start + start,
                                   root_end=phrase.root_end + start))
    target = min(candidates)[1] if candidates else -1
    return tuple(phrases), target, target >= 0 and placed[target]


def ground_command(engine, image, gen, cfg, proposals=None, image_key=None
                   ) -> tuple[list[GroundedPhrase], Reference]:
    """Ground the prompt's own phrases of `gen` (lmm.Generation with prompt maps) in `image`.

    Returns (phrases with char spans into `gen.prompt_text`, their Reference). Uses the engine's
    grounding of answer phrases with the prompt's tokens, spans and maps in place of the
    answer's, so every mode and option applies unchanged. With proposals and `command_words`,
    the target and its landmark get the proposals the words point to (`_resolve_target`).
    Without prompt maps (a tokenizer without offsets) there is nothing to ground: ([], none).
    """
    if not gen.prompt_token_ids or gen.prompt_maps.shape[0] != len(gen.prompt_token_ids):
        return [], Reference()
    chunks, target = command_phrases(engine.nlp, gen.prompt_text)
    if not chunks:
        return [], Reference()
    prompt_gen = replace(gen, token_ids=list(gen.prompt_token_ids), image_maps=gen.prompt_maps)
    made: list = []  # proposed here when the answer had no phrase to propose for
    phrases, _, _ = engine.ground_phrases(
        image, prompt_gen, cfg, proposals, image_key, text=gen.prompt_text,
        spans=list(gen.prompt_token_spans), chunks=chunks, proposals_out=made)
    proposals = proposals or made
    if target < 0 or (index := _grounded_index(phrases, chunks[target])) < 0:
        return phrases, Reference()
    landmark, relation, after, destination = target_relation(
        gen.prompt_text, chunks, target, placement(engine.nlp, gen.prompt_text))
    found = _grounded_index(phrases, chunks[landmark]) if landmark >= 0 else -1
    ref = Reference(index, found, RELATION_NAMES[relation] if found >= 0 else "",
                    destination and found >= 0)
    if proposals and cfg.command_words and phrases[index].entity_ids:
        _resolve_target(image, gen, cfg, chunks[target], after,
                        None if landmark < 0 else chunks[landmark], destination, ref, phrases,
                        proposals)
    return phrases, ref


def target_relation(text: str, chunks: list[NounPhrase], target: int, placed: bool = False
                    ) -> tuple[int, str | None, str, bool]:
    """(landmark, relation, after, destination) of the target phrase `chunks[target]` of `text`:
    the index in `chunks` of the phrase right after a spatial relation ("left of *the tray*") or,
    before the target, of a fronted one (`fronted_relation`), -1 when none; the relation
    (refer.relation_after's key), None when none; the text the relation is read from (the
    text after the target, "left of the tray" for a fronted one); and whether the relation says
    where a `placed` target goes (`is_destination`)."""
    chunk = chunks[target]
    after = text[chunk.char_end:]
    landmark = target + 1 if target + 1 < len(chunks) else -1
    # the relation's words and nothing else between the two phrases: "left of", "that is behind";
    # not "behind and pick up" of "leave the bear behind and pick up the mug"
    gap = text[chunk.char_end:chunks[landmark].char_start] + " " if landmark >= 0 else ""
    if relation_after(after) and relation_only(gap):
        return landmark, relation_after(after), after, placed and is_destination(
            text, chunk, chunks[landmark])
    fronted = None if target == 0 else fronted_relation(text, chunks[target - 1], chunk)
    if fronted is None:
        return -1, None, after, False
    # "left of the tray is a mug" reads as "a mug left of the tray"
    after = f" {fronted} {chunks[target - 1].text}"
    return target - 1, relation_after(after), after, False


def _resolve_target(image, gen, cfg, chunk: NounPhrase, after: str, landmark: NounPhrase | None,
                    destination: bool, ref: Reference, phrases: list[GroundedPhrase],
                    proposals) -> None:
    """Give the target phrase (`phrases[ref.target]`, of `chunk`; `after`, `landmark` and
    `destination`: target_relation's) the proposal its words and entity scores point to
    (refer.resolve_pair), in place, and its landmark phrase (`phrases[ref.landmark]`) the one
    the relation was judged against; a destination's landmark ("put the cube behind *the
    leftmost tray*") is chosen by its own words (refer.resolve)."""
    maps = normalise_maps(np.asarray(gen.prompt_maps, dtype=np.float32), enabled=cfg.normalise)

    def heat(chunk: NounPhrase):
        indices = tokens_in_span(list(gen.prompt_token_spans), chunk.char_start, chunk.char_end)
        return upsample_map(phrase_map(maps, indices), gen.geometry) if indices else None

    target_heat = heat(chunk)
    if target_heat is None:
        return
    landmark_heat = heat(landmark) if landmark is not None else None
    # attention scoring: resolve's own attention scores of the prefill maps, as without scores
    scored = cfg.entity_scoring != "attention"
    landmark_phrase = phrases[ref.landmark] if ref.landmark >= 0 else None
    masks = [p.mask for p in proposals]
    stability = np.array([p.stability for p in proposals], dtype=np.float64)
    choice, paired = resolve_pair(
        image, masks, target_heat, chunk.text, after, None if destination else landmark_heat,
        landmark.text if landmark is not None else "",
        scores=_scores_of(phrases[ref.target], proposals) if scored else None,
        landmark_scores=_scores_of(landmark_phrase, proposals) if scored else None,
        stability=stability)
    _give(phrases[ref.target], proposals, choice, target_heat)
    if destination and landmark_heat is not None:
        paired = resolve(image, masks, landmark_heat, landmark.text, gen.prompt_text[
            landmark.char_end:], scores=_scores_of(landmark_phrase, proposals) if scored else None,
            stability=stability)
    if landmark_phrase is not None and landmark_heat is not None and landmark_phrase.entity_ids:
        _give(landmark_phrase, proposals, paired, landmark_heat)


def _give(phrase: GroundedPhrase, proposals, choice: int | None, heat: np.ndarray) -> None:
    """Ground `phrase` with `proposals[choice]` in place (nothing when `choice` is None); its
    point is the hottest pixel of `heat` on the mask, as entity mode gives."""
    if choice is None:
        return
    chosen = proposals[choice]
    phrase.mask, phrase.score, phrase.entity_ids = chosen.mask.copy(), float(chosen.score), [chosen.id]
    phrase.entity_scores = {}
    if chosen.mask.any():
        phrase.point = peak_point(np.where(chosen.mask, heat, np.nan))


# what may stand between a fronted relation's landmark and the object: "left of the tray *is*
# a mug", "behind the box*, there are* two cubes"
_FRONTED_GAP = re.compile(r"\s*,?\s*(?:there\s+)?(?:is|are|'s|\u2019s|sits|stands|lies)\s*",
                          re.IGNORECASE)


def fronted_relation(text: str, landmark: NounPhrase, target: NounPhrase) -> str | None:
    """The relation's words when `text` puts them before the target's landmark, the target
    after it ("*left of* the tray is a mug", "behind the box there are two cubes"), else
    None: the words end right before `landmark`, and only a copula ("is", "there are") stands
    between `landmark` and `target`."""
    if not _FRONTED_GAP.fullmatch(text[landmark.char_end:target.char_start]):
        return None
    before = text[:landmark.char_start]
    found = [m for m in _SPATIAL.finditer(before)
             if m.lastgroup == "relation" and not before[m.end():].strip()]
    return " ".join(found[-1].group(0).split()) if found else None


def is_destination(text: str, target: NounPhrase, landmark: NounPhrase) -> bool:
    """Whether the relation between the placed `target` and `landmark` (phrases of `text`) says
    where to put the target: it follows the target directly, with no copula ("put the mug
    *that is* behind the tray in the box" describes it), and no destination follows the
    landmark ("put the mug left of the tray *on the shelf*")."""
    gap = text[target.char_end:landmark.char_start].lower().split()
    return (bool(gap) and re.match(r",|that\b|which\b|who\b|is\b|are\b", gap[0]) is None
            and _DESTINATION.match(text[landmark.char_end:]) is None
            and relation_after(text[landmark.char_end:]) is None)


def _grounded_index(phrases: list[GroundedPhrase], chunk: NounPhrase) -> int:
    """Index of the grounded phrase of `chunk` (same char span) in `phrases`, -1 if none."""
    span = (chunk.char_start, chunk.char_end)
    return next((i for i, p in enumerate(phrases) if (p.char_start, p.char_end) == span), -1)


def _scores_of(phrase: GroundedPhrase | None, proposals) -> np.ndarray | None:
    """float [N]: `phrase`'s entity score of each proposal (the engine's entity_scoring), None
    when it has none for some proposal (then refer.resolve scores by attention)."""
    if phrase is None or any(p.id not in phrase.entity_scores for p in proposals):
        return None
    return np.array([phrase.entity_scores[p.id] for p in proposals], dtype=np.float64)
