"""What a model can read of a command's phrase: whether its tokenizer knows the phrase's nouns
(`readable`: "the giraffe" is no word of the sim model's), whether the phrase names a kind of
object at all (`names_a_kind`: "the *object*", "it" do not) and whether every word of it is
known (`all_known`), and which of its tokens say what kind it is (`tokens_without`: not
"non-red" or "rightmost", nor a question word, `question_spans`). grounding.py asks
these before choosing a target among the proposals: a phrase the model cannot read is absent,
not the best match of "the" alone.
"""

from __future__ import annotations

import functools
import re

from ros_ground.command.spatial_words import superlative_spans
from ros_ground.phrase_grounding import find_phrase_tokens
from ros_ground.phrases import NounPhrase, tokens_in_span


@functools.lru_cache(maxsize=64)
def _parsed(nlp, text: str):
    """spaCy's parse of a prompt; a robot asks the same few commands again and again."""
    return nlp(text)


def readable(engine, gen, chunk: NounPhrase) -> bool:
    """Whether the model can read what `chunk` names: False when each of its nouns (and of an
    "of" phrase on its head: "the handle *of the mug*") is all the tokenizer's unknown token
    ("the giraffe", "the red 🐙" for the sim model's 112 words). Such a phrase names nothing the
    model could tell apart, so it is absent rather than the best match of "the" or "red" alone.
    A word of GENERIC_NOUNS ("the *thing*") names no kind, so any object may be it: read. Always
    True for a byte-level tokenizer (it has no unknown token)."""
    unknown = getattr(engine.lmm.tokenizer, "unk_token_id", None)
    if unknown is None:
        return True
    doc = _parsed(engine.nlp, gen.prompt_text)  # once for the target and its landmark
    span = doc.char_span(chunk.char_start, chunk.char_end, alignment_mode="expand")
    if span is None:
        return True
    nouns = [t for t in span if t.pos_ in ("NOUN", "PROPN")] or [span.root]
    nouns += [t for prep in span.root.children if prep.lower_ == "of"
              for t in prep.subtree if t.pos_ in ("NOUN", "PROPN")]
    spans = list(gen.prompt_token_spans)

    def known(word) -> bool:  # a word naming no kind ("thing") needs no reading: any object
        indices = tokens_in_span(spans, word.idx, word.idx + len(word))
        return not indices or _no_kind(word, chunk) \
            or any(gen.prompt_token_ids[i] != unknown for i in indices)

    return any(known(word) for word in nouns)


# head nouns that name no kind of object: "the leftmost *object*", "pick *it* up"
GENERIC_NOUNS = frozenset(("object", "objects", "thing", "things", "item", "items", "one", "ones",
                           "something", "anything", "stuff", "everything", "entity", "entities"))


def names_a_kind(engine, gen, chunk: NounPhrase) -> bool:
    """Whether `chunk`'s head names a kind of object ("the red *mug*"), so that a frame can lack
    it, rather than any object ("the leftmost *object*", a pronoun: GENERIC_NOUNS)."""
    span = _parsed(engine.nlp, gen.prompt_text).char_span(chunk.char_start, chunk.char_end,
                                                          alignment_mode="expand")
    # the word itself: the pipeline runs no lemmatizer (phrases.load_spacy)
    return span is None or (span.root.pos_ != "PRON" and not _no_kind(span.root, chunk))


def _no_kind(word, chunk: NounPhrase) -> bool:
    """Whether `word` (a spaCy Token of `chunk`) names no kind: of GENERIC_NOUNS, or a superlative
    or ordinal standing for its noun ("the *leftmost*", "the *penultimate*": superlative_spans)."""
    at = word.idx - chunk.char_start
    return word.lower_ in GENERIC_NOUNS or any(a <= at < b for a, b in superlative_spans(chunk.text))


def all_known(engine, gen, chunk: NounPhrase) -> bool:
    """Whether none of `chunk`'s tokens is the tokenizer's unknown token: a phrase with a word
    the model cannot read ("the *violet* torus" for the sim model) scores lower against every
    proposal, so a score threshold would call the object absent."""
    unknown = getattr(engine.lmm.tokenizer, "unk_token_id", None)
    indices = tokens_in_span(list(gen.prompt_token_spans), chunk.char_start, chunk.char_end)
    return unknown is None or all(gen.prompt_token_ids[i] != unknown for i in indices)


def question_spans(text: str) -> list[tuple[int, int]]:
    """The span of a question word or quantifier opening a phrase ("*Which* mug", "*any* mug",
    "*all the* mugs"): no property of the object, it pulls its entity scores astray."""
    found = re.match(r"(?:which|what|any|every|each|either|all(?:\s+(?:of\s+)?the)?)\b", text,
                     re.IGNORECASE)
    return [found.span()] if found else []


def tokens_without(gen, cfg, chunk: NounPhrase, spans: list[tuple[int, int]]) -> list[int]:
    """The indices of `chunk`'s tokens (as the engine takes them: `phrase_tokens`) less those
    overlapping `spans` (character spans within the chunk's text); [] when that leaves all of
    them or none."""
    if not spans:
        return []
    found = find_phrase_tokens(list(gen.prompt_token_spans), [chunk], cfg.phrase_tokens)
    if not found:
        return []
    indices = found[0][1]
    spans = [(chunk.char_start + a, chunk.char_start + b) for a, b in spans]
    kept = [i for i in indices if not any(
        gen.prompt_token_spans[i][0] < end and start < gen.prompt_token_spans[i][1]
        for start, end in spans)]
    return kept if 0 < len(kept) < len(indices) else []
