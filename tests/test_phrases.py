"""Token <-> character spans on real (in-process) tokenizers, and spaCy noun phrases."""

from __future__ import annotations

import json

import pytest

from ros_ground.phrases import (
    NounPhrase,
    SpacyUnavailableError,
    later_mentions,
    load_spacy,
    noun_phrases,
    token_char_spans,
    tokens_in_span,
)

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

CORPUS = [
    "The red mug is left of the small tray.",
    "A café sells crème brûlée near the café.",
    "I love 🍕 and 🐶!",
    "東京の猫は可愛い。",
    "  leading spaces here",
    "The mug, the tray, the café.",
] * 3

TRICKY = [
    "  The café 🍕 東京 mug!",
    "The red mug is left of the small tray.",
    " 猫🐶  crème brûlée.",
    "",
]


def _byte_level_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<s>", "</s>"],
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def _sentencepiece_style() -> Tokenizer:
    """Llama-style: Metaspace pieces, <0xXX> byte fallback, decoder strips the first space."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=120,
        special_tokens=["<unk>", "<s>", "</s>"],
        limit_alphabet=60,
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    base = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = base + b
    spec["model"]["byte_fallback"] = True
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    return tok


def _ids(tok: Tokenizer, text: str) -> list[int]:
    return [tok.token_to_id("<s>")] + tok.encode(text).ids + [tok.token_to_id("</s>")]


def _check_cover(spans, full):
    assert spans[0][0] == 0 if spans else True
    previous = 0
    for start, end in spans:
        assert start == previous and start <= end <= len(full)
        previous = end
    if spans:
        assert spans[-1][1] == len(full)
    assert "".join(full[s:e] for s, e in spans) == full


@pytest.mark.parametrize("text", TRICKY)
def test_byte_level_bpe_spans(text):
    tok = _byte_level_bpe()
    ids = _ids(tok, text)
    decode = lambda x: tok.decode(x, skip_special_tokens=True)  # noqa: E731
    full = decode(ids)
    assert full == text
    spans = token_char_spans(decode, ids)
    assert len(spans) == len(ids)
    _check_cover(spans, full)
    assert spans[0] == (0, 0) and spans[-1][0] == spans[-1][1]  # special tokens: zero width
    for (start, end), tid in zip(spans, ids):
        piece = decode([tid])
        if "\ufffd" not in piece and piece:
            assert full[start:end] == piece
    if text.startswith("  The café"):
        pieces = [full[s:e] for s, e in spans]
        assert " café" in pieces and "🍕" in pieces and " mug" in pieces


@pytest.mark.parametrize("text", TRICKY)
def test_sentencepiece_byte_fallback_spans(text):
    tok = _sentencepiece_style()
    ids = _ids(tok, text)
    decode = lambda x: tok.decode(x, skip_special_tokens=True)  # noqa: E731
    full = decode(ids)
    spans = token_char_spans(decode, ids)
    _check_cover(spans, full)
    first_content = True
    for (start, end), tid in zip(spans, ids):
        token = tok.id_to_token(tid)
        if token in ("<s>", "</s>"):
            assert start == end
            continue
        if token.startswith("<0x"):
            continue  # one byte of a multi-byte character: not a complete piece
        piece = token.replace("▁", " ")
        if first_content:
            piece = piece[1:] if piece.startswith(" ") else piece
        first_content = False
        assert full[start:end] == piece


def test_split_character_is_credited_to_completing_token():
    tok = _sentencepiece_style()
    ids = _ids(tok, "The € mug")  # "€" is not in the corpus: three <0xXX> pieces
    decode = lambda x: tok.decode(x, skip_special_tokens=True)  # noqa: E731
    full = decode(ids)
    spans = token_char_spans(decode, ids)
    pieces = [full[s:e] for s, e in spans]
    assert "€" in pieces
    assert all("\ufffd" not in p for p in pieces)


def test_linear_number_of_decodes_and_monotone_on_odd_decoder():
    calls = []
    words = [
        "a",
        "\ufffd",
        "bc",
        "",
        "d",
    ]  # a decoder whose prefix output is not a prefix of the full text

    def decode(ids):
        calls.append(len(ids))
        out = "".join(words[i] for i in ids)
        return out.replace("a\ufffdbc", "abc")

    ids = list(range(len(words)))
    spans = token_char_spans(decode, ids)
    assert len(calls) <= len(ids) + 1
    _check_cover(spans, decode(ids))
    assert token_char_spans(decode, []) == []


def test_tokens_in_span():
    spans = [(0, 0), (0, 3), (3, 7), (7, 7), (7, 12)]
    assert tokens_in_span(spans, 4, 6) == [2]
    assert tokens_in_span(spans, 0, 12) == [1, 2, 4]  # zero-width (special) tokens never match
    assert tokens_in_span(spans, 2, 8) == [1, 2, 4]
    assert tokens_in_span(spans, 12, 15) == []


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_spacy()
    except SpacyUnavailableError as exc:
        pytest.skip(str(exc))


def test_load_spacy_is_cached(nlp):
    assert load_spacy() is nlp
    assert "ner" not in nlp.pipe_names and "parser" in nlp.pipe_names


def test_unknown_pipeline_raises_with_hint():
    with pytest.raises(SpacyUnavailableError, match="not installed"):
        load_spacy("xx_no_such_pipeline_sm")


def test_check_spacy_refuses_what_load_spacy_would_in_its_words_without_loading(tmp_path):
    """A node checks spacy_model when it is set: the same error as the load, found by looking
    at the installed packages and paths only."""
    from ros_ground.phrases import check_spacy

    for name in ("xx_no_such_pipeline_sm", " "):
        with pytest.raises(SpacyUnavailableError) as checked:
            check_spacy(name)
        with pytest.raises(SpacyUnavailableError) as loaded:
            load_spacy(name)
        assert str(checked.value) == str(loaded.value)
    check_spacy(str(tmp_path))  # a path is spaCy's to read at the load
    check_spacy("blank:en")
    try:
        load_spacy()
    except SpacyUnavailableError:
        return
    check_spacy()  # installed (or its PyPI re-upload): passes


def test_noun_phrases_known_chunks(nlp):
    text = "The red mug is left of the small tray."
    phrases = noun_phrases(nlp, text)
    assert [p.text for p in phrases] == ["The red mug", "the small tray"]
    mug, tray = phrases
    assert isinstance(mug, NounPhrase)
    assert (mug.char_start, mug.char_end) == (0, 11)
    assert text[mug.root_start : mug.root_end] == "mug"
    assert text[tray.char_start : tray.char_end] == "the small tray"
    assert text[tray.root_start : tray.root_end] == "tray"


@pytest.mark.parametrize("text,counts", [
    ("Two red mugs and a blue tray on a wooden table.", [2, 1, 1]),
    ("There are 3 blocks, some spheres and one duck.", [3, None, 1]),
    ("Pick up both mugs.", [2]),
    ("The cubes are left of the mug.", [None, 1]),
])
def test_noun_phrases_count_what_they_name(nlp, text, counts):
    assert [p.count for p in noun_phrases(nlp, text)] == counts


@pytest.mark.parametrize("text,kept", [
    ("The purple tray is in front of the blue cube.", ["The purple tray", "the blue cube"]),
    ("The mug is to the left of the tray.", ["The mug", "the tray"]),
    ("The cube is on top of the box.", ["The cube", "the box"]),
    ("The duck is on the left.", ["The duck"]),
    ("Put it on the right side of the tray.", ["the tray"]),
    ("The top of the box is red.", ["The top", "the box"]),  # a part, not a place: kept
])
def test_noun_phrases_leave_out_places(nlp, text, kept):
    assert [p.text for p in noun_phrases(nlp, text)] == kept


@pytest.mark.parametrize("text,kept,roots", [
    # the tagger takes the noun "can" for the modal verb and ends the chunk before it
    ("Pick up the soda can.", ["the soda can"], ["can"]),
    ("A red can left of a blue cube.", ["A red can", "a blue cube"], ["can", "cube"]),
    ("There are two tin cans and a mug.", ["two tin cans", "a mug"], ["cans", "mug"]),
    # the modal stays a verb
    ("The robot can reach the cup.", ["The robot", "the cup"], ["robot", "cup"]),
    ("The cube can be moved.", ["The cube"], ["cube"]),
])
def test_noun_phrases_keep_the_noun_can(nlp, text, kept, roots):
    phrases = noun_phrases(nlp, text)
    assert [p.text for p in phrases] == kept
    assert [text[p.root_start:p.root_end] for p in phrases] == roots


def test_noun_phrases_drop_pronouns_and_empty(nlp):
    phrases = noun_phrases(nlp, "It is on the table and they are near it.")
    assert [p.text for p in phrases] == ["the table"]
    assert noun_phrases(nlp, "   ") == []


def test_phrase_tokens_through_root(nlp):
    tok = _byte_level_bpe()
    text = "The red mug is left of the small tray."
    ids = _ids(tok, text)
    decode = lambda x: tok.decode(x, skip_special_tokens=True)  # noqa: E731
    spans = token_char_spans(decode, ids)
    tray = noun_phrases(nlp, text)[1]
    chosen = tokens_in_span(spans, tray.root_start, tray.root_end)
    assert chosen
    assert "tray" in "".join(text[spans[i][0] : spans[i][1]] for i in chosen)


def test_later_definite_mentions_of_a_said_noun_are_marked(nlp):
    text = "A red mug and a blue mug. The mug is left of the tray. That mug is big."
    phrases = noun_phrases(nlp, text)
    assert [p.text for p in phrases] == ["A red mug", "a blue mug", "The mug", "the tray", "That mug"]
    assert later_mentions(phrases, text) == [False, False, True, False, True]
