"""GROUNDHOG-style retrieval: score each entity token against a phrase, beside attention
(Zhang et al., "GROUNDHOG: Grounding Large Language Models to Holistic Segmentation", 2024,
arXiv:2402.16846).

A phrase is represented by the mean of its tokens' input embeddings; an entity by its token
pooled from the LMM's projected image tokens (lmm.tokens). The score is the cosine between the
entity token and `W @ phrase`: W is the identity for a model whose image tokens already share
the words' space, or a retrieval head trained on (phrase, entity) pairs with mask supervision
(ros_ground.train.retrieval_head; the sim model ships one). `entity_scoring` chooses attention
only, tokens only, or their sum (both scores lie in [-1, 1]).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCORINGS = ("attention", "tokens", "combined")
SIM_HEAD_PATH = Path(__file__).resolve().parent / "models" / "sim_retrieval" / "head.npy"
_EPS = 1e-6


def unit(x: np.ndarray) -> np.ndarray:
    """float32 `x` ([..., D]) scaled to unit length along its last axis, same shape (zero
    vectors stay ~zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + _EPS)


def phrase_vectors(embedding: np.ndarray, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """float32 [P, D]: mean input embedding (`embedding`, [vocab, D]) of each phrase's token
    ids; a phrase without tokens gets zeros."""
    embedding = np.asarray(embedding, dtype=np.float32)
    if not len(token_ids):
        return np.zeros((0, embedding.shape[1]), np.float32)
    return np.stack([embedding[list(ids)].mean(axis=0) if len(ids) else
                     np.zeros(embedding.shape[1], np.float32) for ids in token_ids])


def token_scores(phrases: np.ndarray, tokens: np.ndarray,
                 head: np.ndarray | None = None) -> np.ndarray:
    """float32 [P, N] cosine of each entity token ([N, Dv]) with each projected phrase
    ([P, Dt]; `head` [Dv, Dt], identity when None, needs Dv == Dt). Zero vectors score 0."""
    phrases = unit(phrases)
    projected = phrases if head is None else phrases @ np.asarray(head, np.float32).T
    return np.clip(unit(projected) @ unit(tokens).T, -1.0, 1.0)


def combine(attention: np.ndarray, tokens: np.ndarray | None, scoring: str) -> np.ndarray:
    """The entity scores `scoring` names from attention scores and token scores (both [P, N], or
    any one shape): "attention" (also when `tokens` is None), "tokens" or "combined" (their sum,
    in [-2, 2]). Raises ValueError for any other `scoring`."""
    if scoring not in SCORINGS:
        raise ValueError(f"entity_scoring must be one of {SCORINGS}, got {scoring!r}")
    if scoring == "attention" or tokens is None:
        return attention
    return tokens if scoring == "tokens" else attention + tokens


RETRAIN_HEAD = ("python -m ros_ground.train.retrieval_head --scenes 120 --epochs 30 "
                "--scene-set mixed, as `ros-ground train all` does")


def load_head(path: str | Path | None = None, lmm_sha256: str | None = None) -> np.ndarray | None:
    """The retrieval head [Dv, Dt] at `path` (default: the sim model's), None when the file is
    absent. Given `lmm_sha256` (lmm.fingerprint.lmm_sha256 of the LMM it would serve), also None,
    with a warning, unless its record (`head_record`) names that LMM: a head fitted to other
    weights' tokens would rank entities at random."""
    path = Path(path or SIM_HEAD_PATH)
    if not path.is_file():
        return None
    if lmm_sha256 is not None:
        from ros_ground.lmm.fingerprint import KEY, trained_for

        if not trained_for(head_record(path).get(KEY), lmm_sha256, path, RETRAIN_HEAD):
            return None
    return np.load(path).astype(np.float32)


def head_record(path: str | Path | None = None) -> dict:
    """What the head at `path` (default: the sim model's) was trained on, from the JSON file
    beside it (`train.retrieval_head` writes it): "entity_token_window" (the entity tokens it
    learnt: 0 the frame's, else a window's), "scene_set", "scenes", "epochs",
    "held_out_accuracy", "lmm_sha256" (lmm.fingerprint: the LMM it was trained for). {} when
    there is none."""
    record = Path(path or SIM_HEAD_PATH).with_suffix(".json")
    return json.loads(record.read_text()) if record.is_file() else {}
