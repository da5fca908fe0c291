"""How well each mask proposal fits each phrase: attention alone, or beside the LMM's own tokens.

The `entity_scoring` setting chooses: "attention" scores a proposal by the phrase's heat map on
its mask (entities.score_entities); "tokens" by the cosine of the proposal's entity token,
pooled from this LMM's projected image tokens (lmm.tokens) of the whole frame or, with
`entity_token_window`, of a window around the proposal, with the phrase's word embeddings
(retrieval.py); "combined" by their sum. `EntityScorer` keeps what that needs per model: the
last frame's image tokens and entity tokens, and the retrieval head.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch

from ros_ground import retrieval
from ros_ground.entities import score_entities
from ros_ground.lmm import LMMAdapter
from ros_ground.lmm import tokens as lmm_tokens
from ros_ground.maps import no_peak_reason
from ros_ground.results import Proposal
from ros_ground.sam.predictor import cache_key_of

LOG = logging.getLogger(__name__)


class EntityScorer:
    """Entity scores for one LMM; the image tokens of one frame are computed once (`image_key`)."""

    def __init__(self, lmm: LMMAdapter):
        self.lmm = lmm
        self._features = None  # (image_key, LMM image tokens, geometry) of the last frame
        self._windowed = None  # ((image_key, window, the proposals' masks), window tokens)
        self._retrieval_head = False  # loaded on first use
        self._head_window: float | None = None  # the entity_token_window the head learnt
        self._warned_windows: set[float] = set()

    def scores(self, image: np.ndarray, heats: list[np.ndarray], proposals: list[Proposal],
               phrase_ids: list[list[int]], *, scoring: str, image_key=None,
               token_window: float = 0.0) -> np.ndarray:
        """[phrases, proposals] scores per `scoring` (see the module docstring).

        heats: each phrase's heat map on `image` (HxW); phrase_ids: each phrase's token ids;
        token_window: entity tokens from a window this many box sides tall around each proposal
        (lmm.tokens.window_entity_tokens), 0: from the whole frame. With attention scoring, the
        row of a phrase whose map has no peak (maps.no_peak_reason) is NaN: nothing to choose by.
        """
        masks = [p.mask for p in proposals]
        attention = np.stack([score_entities(h, masks) for h in heats])
        if scoring == "attention":
            # a map without a peak tells no proposal from another: no score, no entity
            attention[[no_peak_reason(h) is not None for h in heats]] = np.nan
            return attention
        tokens = self.entity_tokens(image, masks, image_key, token_window)
        phrases = self.phrase_vectors(phrase_ids)
        head = self._head(token_window)
        return retrieval.combine(attention, retrieval.token_scores(phrases, tokens, head),
                                 scoring)

    def entity_tokens(self, image: np.ndarray, masks: list[np.ndarray], image_key=None,
                      window: float = 0.0) -> np.ndarray:
        """float32 [N, D] entity tokens of `masks` (HxW each) pooled from this LMM's projected
        image tokens (lmm.tokens; feature_source "lmm_projector"), whatever tokens proposals
        came with: SAM's share no space with the language model.

        window: 0, pooled from the whole frame's tokens (one vision pass per frame); else each
        from a window this many box sides tall around it (lmm.tokens.window_entity_tokens, one
        pass per mask), computed once per frame and set of masks, since a command's phrases are
        scored against the same proposals as its answer's. A frame is named by `image_key`, or
        without one by a hash of its pixels (sam.predictor.cache_key_of).
        """
        if window <= 0:
            return lmm_tokens.entity_tokens(*self.image_tokens(image, image_key), masks)
        digest = hashlib.blake2b(digest_size=16)
        for mask in masks:
            digest.update(np.packbits(np.asarray(mask, dtype=bool)).tobytes())
        key = (cache_key_of(image, "RGB", image_key), window, len(masks), digest.hexdigest())
        cached = self._windowed
        if cached is not None and cached[0] == key:
            return cached[1]
        tokens = lmm_tokens.window_entity_tokens(self.lmm, image, masks, window)
        self._windowed = (key, tokens)
        return tokens

    def image_tokens(self, image: np.ndarray, image_key=None):
        """(float32 [grid_h * grid_w, D] projected image tokens, their geometry) of `image`,
        computed once per frame (lmm.tokens.image_features; named as in `entity_tokens`)."""
        key = cache_key_of(image, "RGB", image_key)
        cached = self._features
        if cached is None or cached[0] != key:
            cached = self._features = (key, *lmm_tokens.image_features(self.lmm, image))
        return cached[1], cached[2]

    def phrase_vectors(self, phrase_ids: list[list[int]]) -> np.ndarray:
        """float32 [P, D]: each phrase's mean input embedding (retrieval.phrase_vectors), from
        the rows its token ids name alone: a 7B model's whole matrix is ~0.5 GB as float32."""
        wanted = sorted({int(i) for ids in phrase_ids for i in ids})
        weight = self.lmm.model.get_input_embeddings().weight
        with torch.no_grad():
            rows = weight[torch.tensor(wanted, dtype=torch.long, device=weight.device)]
            rows = rows.float().cpu().numpy()
        row_of = {token: k for k, token in enumerate(wanted)}
        return retrieval.phrase_vectors(rows, [[row_of[int(i)] for i in ids] for ids in phrase_ids])

    def _head(self, token_window: float) -> np.ndarray | None:
        # the sim model's head was trained on its own tokens; other models compare directly
        if self._retrieval_head is False:
            self._retrieval_head = None
            if self.lmm.name == "sim":  # only the one it was trained for: warns otherwise
                from ros_ground.lmm.fingerprint import lmm_sha256

                self._retrieval_head = retrieval.load_head(lmm_sha256=lmm_sha256() or "")
            if self._retrieval_head is not None:  # only a loaded head has a record to read
                self._head_window = retrieval.head_record().get("entity_token_window")
        learnt = self._head_window
        if learnt is not None and token_window != learnt and token_window not in self._warned_windows:
            self._warned_windows.add(token_window)
            LOG.warning("the sim retrieval head learnt entity tokens of entity_token_window %s, "
                        "not %s: its token scores will be worse (retrain it with python -m "
                        "ros_ground.train.retrieval_head --token-window %s)",
                        learnt, token_window, token_window)
        return self._retrieval_head
