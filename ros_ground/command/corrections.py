"""The words of a spoken self-correction: "pick up the red mug, *no wait*, the blue one", "put it
on the tray, *I mean* behind the tray".

People correct themselves mid-command, and speech to text keeps every word, so the object or
place said after such words replaces the one said before them (parse.py for the target,
relations.py for the destination). Only the words are here: which phrase they replace
is the reader's.
"""

from __future__ import annotations

import re

# corrections the tagger reads a noun phrase in ("scratch", "second thought", "plans"): blanked
# before phrases are found
IDIOMS = re.compile(r"\b(?:scratch\s+that|on\s+(?:second|further)\s+thoughts?|change\s+of\s+plans?)\b",
                    re.IGNORECASE)
# the words themselves: "no wait", "I mean", "sorry", "or rather", "actually no", "never mind"
WORDS = (r"(?:no+\s+wait|wait(?:\s+no)?|i\s+meant?|actually(?:\s+no)?|sorry|(?:or\s+)?rather|no+|"
         r"make\s+(?:that|it)|never\s*mind|nvm|forget\s+(?:it|that)|" + IDIOMS.pattern + ")")
# words that take back what was asked before them, whatever follows ("Pick up the mug. *Never
# mind*, where is the ball?", "*wait, don't touch anything*"), unless an object follows, which
# they dismiss ("never mind *the mug*")
CANCELS = re.compile(r"\b(?:(?:never\s*mind|nvm)(?!\s+(?:the|a|an|this|that|these|those|my|your)\b)|"
                     r"scratch\s+that|forget\s+(?:it|that|about\s+it)|cancel\s+(?:it|that)|"
                     r"change\s+of\s+plans?|on\s+(?:second|further)\s+thoughts?|"
                     r"wait[\s,.;:!-]+(?:don['\u2019]?t|do\s+not)\s+\w+\s+(?:anything|it|that))\b",
                     re.IGNORECASE)
# what makes an object said after a correction an addition, not a replacement: "no wait, grab
# the ball *too*"
ADDED = re.compile(r"[\s,]*(?:too|as\s+well|also)\b", re.IGNORECASE)
_OPENING = re.compile(r"[\s,.;:!?-]*" + WORDS + r"[\s,.;:!?-]+", re.IGNORECASE)


def after_correction(gap: str) -> str | None:
    """The words after the self-correction `gap` opens with (`gap`: the text between two phrases;
    "next to " of "*, no wait, next to *the tray"), None when it opens with none."""
    found = _OPENING.match(gap)
    return gap[found.end():] if found else None


def last_cancel(text: str) -> re.Match | None:
    """The last of `text`'s words that take back what was asked before them (`CANCELS`), None
    when it has none: what was asked before it is asked no more."""
    return max(CANCELS.finditer(text), key=lambda m: m.start(), default=None)
