"""Turn a pasted prompt into the user's own words before the chat template is applied.

Model cards show prompts with the template already written out (LLaVA-1.5
`USER: <image>\\nWhere is the mug? ASSISTANT:`, LLaVA-NeXT `[INST] <image>\\n... [/INST]`,
Qwen2-VL `<|im_start|>user\\n<|vision_start|><|image_pad|><|vision_end|>...<|im_end|>`). Templated
a second time such a prompt changes the answer, so role markers and image placeholders are
removed first. The rule: when the prompt holds a user-turn marker (the loaded model's own, from
its chat template, or one of the common families'), the user text is what follows the last one,
up to the first end-of-turn or assistant marker after it; any system text before it goes too.
Turn markers of any role left after that (a pasted system turn alone) are removed as well.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ros_ground.errors import InputError

# ECMA-48 control sequences (CSI: ESC [ params intermediates final) and two-byte escapes
_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
SENTINEL = "\u2063ros_ground_user_text\u2063"  # invisible separator: never in a real prompt

# user-turn openers and enders of the families whose model cards users copy from; regexes
USER_STARTS = (
    r"<\|im_start\|>\s*user\b",  # chatml: Qwen2-VL, LLaVA-NeXT 34b, Hermes
    r"\[INST\]",  # Mistral / LLaVA-NeXT mistral
    r"\bUSER:",  # LLaVA-1.5, vicuna (LLaVA-NeXT vicuna)
    r"<\|start_header_id\|>\s*user\s*<\|end_header_id\|>",  # Llama 3
    r"<start_of_turn>\s*user\b",  # Gemma
)
USER_ENDS = (
    r"<\|im_end\|>", r"<\|im_start\|>\s*assistant\b", r"\[/INST\]", r"\bASSISTANT:",
    r"<\|eot_id\|>", r"<\|start_header_id\|>\s*assistant", r"<end_of_turn>",
)
# role and turn markers that are special tokens of those families, whatever the role: what is
# left of them once the user's text is cut out (a system turn alone, a stray end) goes too
_ROLE = r"(?:[ \t]*(?:system|developer|user|assistant|model|tool|ipython)\b)?"
TURN_MARKERS = (
    rf"<\|im_start\|>{_ROLE}\n?", r"<\|im_end\|>",
    rf"<\|start_header_id\|>{_ROLE}\s*<\|end_header_id\|>\n?", r"<\|eot_id\|>",
    rf"<start_of_turn>{_ROLE}\n?", r"<end_of_turn>", r"\[/?INST\]",
)
# image placeholders of those families (the loaded model's own are special tokens and are
# removed with the others by the adapter)
IMAGE_PLACEHOLDERS = (
    r"<\|vision_start\|>(?:<\|image_pad\|>)*<\|vision_end\|>", r"<\|image_pad\|>",
    r"<\|vision_start\|>", r"<\|vision_end\|>", r"<image>", r"<start_of_image>",
)


class EmptyPromptError(InputError):
    """Nothing of the user's own text is left once markup is removed."""


@dataclass(frozen=True)
class ChatMarkers:
    """Regexes for where the user's text starts and ends, and for image placeholders."""

    user_starts: tuple[str, ...] = USER_STARTS
    user_ends: tuple[str, ...] = USER_ENDS
    placeholders: tuple[str, ...] = IMAGE_PLACEHOLDERS


def _flexible(literal: str, special_tokens: Iterable[str]) -> str:
    """Regex matching `literal` with any whitespace run (and none) where it has whitespace,
    and optional whitespace after a special token."""
    specials = sorted((s for s in special_tokens if s and s.strip() and s in literal), key=len,
                      reverse=True)
    parts, rest = [], literal.strip()
    while rest:
        for special in specials:
            if rest.startswith(special):
                parts.append(re.escape(special) + r"\s*")
                rest = rest[len(special):].lstrip()
                break
        else:
            char, rest = rest[0], rest[1:]
            if char.isspace():
                parts.append(r"\s*")
                rest = rest.lstrip()
            else:
                parts.append(re.escape(char))
    pattern = "".join(parts)
    while pattern.endswith(r"\s*"):
        pattern = pattern[:-3]
    return pattern


def _last_marker(text: str, special_tokens: Iterable[str]) -> str:
    """The piece of `text` from its last special token on (a chatml `<|im_start|>user`), or
    its last line when it holds none (`USER:`); empty when that is only whitespace."""
    specials = [s for s in special_tokens if s and s.strip()]
    at = max((text.rfind(s) for s in specials), default=-1)
    piece = text[at:] if at >= 0 else text.rstrip().rsplit("\n", 1)[-1]
    if at >= 0 and not piece.strip():
        return ""
    return piece.strip()


def _first_marker(text: str, special_tokens: Iterable[str]) -> str:
    """The first special token of `text` if it starts with one (`<|im_end|>`), else the text
    up to the next special token or line break (` ASSISTANT:`), stripped."""
    text = text.strip()
    specials = [s for s in special_tokens if s and s.strip()]
    for special in sorted(specials, key=len, reverse=True):
        if text.startswith(special):
            return special
    cut = min([i for i in (text.find(s) for s in specials) if i > 0] + [len(text)])
    return text[:cut].split("\n", 1)[0].strip()


def markers_from_template(render: Callable[[str], str], special_tokens: Iterable[str],
                          sequence_tokens: Iterable[str] = ()) -> ChatMarkers:
    """ChatMarkers with the loaded model's own user-turn opener and end added.

    `render(text)` applies the model's chat template to one user turn holding `text` (generation
    prompt added). The opener is the template's text just before the user text (from its last
    special token, or its last line); the end is what comes right after it. `sequence_tokens`
    (BOS, EOS) are removed first: they frame the sequence, not a turn, and a pasted prompt
    rarely has them. A template that cannot be rendered gives the common families' markers.
    """
    sequence_tokens = [t for t in sequence_tokens if t]
    special_tokens = [t for t in special_tokens if t not in sequence_tokens]
    try:
        rendered = render(SENTINEL)
    except Exception:  # noqa: BLE001 - a template we cannot render teaches us nothing
        return ChatMarkers()
    if rendered.count(SENTINEL) != 1:
        return ChatMarkers()
    for token in sequence_tokens:
        rendered = rendered.replace(token, "")
    before, after = rendered.split(SENTINEL)
    starts, ends = list(USER_STARTS), list(USER_ENDS)
    for placeholder in IMAGE_PLACEHOLDERS:  # the image the template puts before the text
        before = re.sub(rf"{placeholder}\s*$", "", before)
    opener, end = _last_marker(before, special_tokens), _first_marker(after, special_tokens)
    if opener:
        starts.insert(0, _flexible(opener, special_tokens))
    if end:
        ends.insert(0, _flexible(end, special_tokens))
    return ChatMarkers(tuple(dict.fromkeys(starts)), tuple(dict.fromkeys(ends)),
                       IMAGE_PLACEHOLDERS)


def strip_chat_markup(prompt: str, markers: ChatMarkers | None = None) -> str:
    """The user's text of `prompt`: the last user turn's content when the prompt is a
    templated conversation, with the families' image placeholders removed and whitespace
    stripped. A plain prompt comes back stripped and otherwise unchanged; so does a prompt
    already cleaned (the function is idempotent)."""
    markers = markers or ChatMarkers()
    text = prompt
    last_start = None
    for pattern in markers.user_starts:
        for match in re.finditer(pattern, text):
            if last_start is None or match.end() > last_start:
                last_start = match.end()
    if last_start is not None:
        text = text[last_start:]
    ends = [m.start() for pattern in markers.user_ends for m in [re.search(pattern, text)] if m]
    if ends:
        text = text[: min(ends)]
    # each run of placeholders at once ("red<image><image>mug"), with the line break or space
    # that follows each
    text = _cut(r"(?:(?:" + "|".join(markers.placeholders) + r")[ \t]*\n?)+", text)
    # format characters (zero-width spaces and joiners, direction marks) would end up inside
    # phrases: "the duck\u200b"; control characters but line breaks and tabs split the words
    # they sit in for the tagger ("is\x01 the mug" had no noun phrase): a space each
    text = _ANSI_ESCAPE.sub(" ", text)  # a terminal's colour codes: "the\x1b[31m mug"
    text = "".join(" " if unicodedata.category(c) == "Cc" and c not in "\t\n\r" else c
                   for c in text if unicodedata.category(c) != "Cf")
    while True:  # until none is left: removing one can join the pieces of another
        cleaned = text
        for pattern in TURN_MARKERS:
            cleaned = re.sub(pattern, "", cleaned)  # no space: one may sit inside another
        if cleaned == text:
            return text.strip()
        text = cleaned


def _cut(pattern: str, text: str) -> str:
    """`text` without the matches of `pattern`, each replaced by a space where it stood between
    two words ("the mug<image>on the left" is "the mug on the left", not "the mugon ...")."""
    def space_or_nothing(m: re.Match) -> str:
        before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
        return " " if before.isalnum() and after.isalnum() else ""
    return re.sub(pattern, space_or_nothing, text)


def require_text(prompt: str, original: str) -> str:
    """`prompt` if it holds any non-space character, else EmptyPromptError naming `original`."""
    if not prompt.strip():
        raise EmptyPromptError(f"the prompt has no text of its own once chat markup and image "
                               f"placeholders are removed (of a conversation, only its last user "
                               f"turn is kept): {original!r}")
    return prompt
