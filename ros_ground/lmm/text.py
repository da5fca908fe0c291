"""A model's text side: its special token strings, removing them from a prompt, and where the
user's own text sits among the model's input tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PromptTokens:
    """Where the user's text sits in the model input: sequence positions, ids, char spans."""

    text: str
    positions: list[int]
    token_ids: list[int]
    spans: list[tuple[int, int]]


def special_strings(tokenizer, processor, image_token: str) -> list[str]:
    """The tokenizer's added/special token strings (image token, chat markers), longest
    first."""
    specials = {image_token}
    specials.update(str(t) for t in getattr(tokenizer, "all_special_tokens", []))
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials.update(getattr(t, "content", str(t)) for t in decoder.values())
    for attr in ("video_token", "audio_token", "boi_token", "eoi_token"):
        if isinstance(getattr(processor, attr, None), str):
            specials.add(getattr(processor, attr))
    return sorted((s for s in specials if s and s.strip()), key=len, reverse=True)


def strip_special_strings(prompt: str, specials: list[str]) -> str:
    """`prompt` with the strings `specials` (`special_strings`) removed."""
    previous = None
    while previous != prompt:  # removal can join fragments into a new marker: repeat
        previous = prompt
        for s in specials:
            prompt = prompt.replace(s, "")
    return prompt.strip()


def find_prompt_tokens(tokenizer, templated: str, text: str, input_ids: torch.Tensor,
                       image_token_id: int) -> PromptTokens:
    """The input positions of `text`'s tokens (the user's cleaned text, as chat-templated in
    `templated`), with their character spans in `text`. `input_ids` ([1, L], the processor's,
    image tokens expanded) must come from `templated`. Tokens are matched to characters with
    the tokenizer's offsets on the templated text; positions stay empty when the tokenizer
    gives none (a slow tokenizer) or its tokens do not line up with the processor's."""
    start = templated.rfind(text)
    empty = PromptTokens(text, [], [], [])
    try:
        encoded = tokenizer(templated, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, ValueError, TypeError):
        return empty
    ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
    full = input_ids[0].tolist()
    # the processor expands each image placeholder into a run of image tokens: one entry
    # per run, and any tokens it adds in front (BOS) skipped
    index, collapsed = [], []
    for i, token in enumerate(full):
        if token == image_token_id and collapsed and collapsed[-1] == token:
            continue
        index.append(i)
        collapsed.append(token)
    shift = len(collapsed) - len(ids)
    if shift < 0 or collapsed[shift:] != ids:
        return empty
    end = start + len(text)
    positions, token_ids, spans = [], [], []
    for j, (a, b) in enumerate(offsets):
        if b > a and a < end and b > start and ids[j] != image_token_id:
            positions.append(index[shift + j])
            token_ids.append(ids[j])
            spans.append((max(a, start) - start, min(b, end) - start))
    return PromptTokens(text, positions, token_ids, spans)
