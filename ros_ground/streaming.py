"""Phrases grounded while the answer is still being generated, for streaming feedback.

`PhraseStream.on_token` runs after every generated token (lmm.LMMAdapter.generate's
`on_token`); every PARSE_PERIOD_S it looks for noun phrases the text has completed and grounds
the new ones in point mode on the maps so far, then hands the caller the text and every phrase
grounded until now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ros_ground.lmm import Generation
from ros_ground.phrases import noun_phrases
from ros_ground.results import GroundedPhrase

if TYPE_CHECKING:
    from ros_ground.engine import EngineConfig, GroundingEngine

PARSE_PERIOD_S = 0.25  # how often streaming feedback looks for newly completed phrases

ProgressCallback = Callable[[str, list[GroundedPhrase]], None]


class PhraseStream:
    """Grounds phrases as they complete during generation, for streaming feedback.

    Normalises by the mean over the steps so far, on the image as it is (no extra views); the
    final result is recomputed over the whole sequence and every view, as the method defines it.
    """

    def __init__(self, engine: GroundingEngine, image, image_key, cfg: EngineConfig,
                 callback: ProgressCallback):
        self.engine, self.image, self.image_key, self.cfg = engine, image, image_key, cfg
        self.callback = callback
        self.done: dict[tuple[int, int], GroundedPhrase] = {}
        self.attempted: set[tuple[int, int]] = set()
        self.parsed_at = 0.0

    def on_token(self, token_id: int, text: str, partial: Callable[[], Generation]) -> None:
        # parsing every token would cost more than generating it: re-parse every PARSE_PERIOD_S
        now = time.perf_counter()
        complete: set[tuple[int, int]] = set()
        if now - self.parsed_at >= PARSE_PERIOD_S:
            self.parsed_at = now
            complete = {(c.char_start, c.char_end) for c in noun_phrases(self.engine.nlp, text)
                        if c.char_end < len(text)}
        new = complete - self.attempted
        if new:
            self.attempted |= new
            found, _, _ = self.engine.ground_phrases(
                self.image, partial(), replace(self.cfg, mode="point"), None, self.image_key,
                segment_only=new)
            for phrase in found:
                self.done.setdefault((phrase.char_start, phrase.char_end), phrase)
        self.callback(text, sorted(self.done.values(), key=lambda p: p.char_start))

