"""Entity tokens pooled from the LMM's image tokens, and retrieval of entities with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros_ground.geometry import ImageGeometry
from ros_ground.lmm.tokens import (
    entity_tokens,
    image_features,
    token_grid_weights,
    window_entity_tokens,
)
from ros_ground.masks import pool_tokens
from ros_ground.retrieval import combine, phrase_vectors, token_scores
from ros_ground.train.retrieval_head import train_head


def test_pooled_tokens_equal_a_hand_computation_on_a_known_grid():
    # 40x40 image on a 4x4 grid: 10x10 pixels per cell
    geometry = ImageGeometry(40, 40, 4, 4, "resize")
    features = np.arange(16 * 2, dtype=np.float32).reshape(16, 2)
    mask = np.zeros((40, 40), bool)
    mask[0:10, 0:15] = True  # cell (0, 0) whole, half of cell (0, 1)
    mask[30:40, 30:40] = True  # cell (3, 3) whole
    weights = token_grid_weights(mask, geometry)
    expected = np.zeros((4, 4), np.float32)
    expected[0, 0], expected[0, 1], expected[3, 3] = 1.0, 0.5, 1.0
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    pooled = entity_tokens(features, geometry, [mask, np.zeros((40, 40), bool)])
    hand = (1.0 * features[0] + 0.5 * features[1] + 1.0 * features[15]) / 2.5
    np.testing.assert_allclose(pooled[0], hand, rtol=1e-6)
    np.testing.assert_array_equal(pooled[1], 0.0)  # an empty mask gets zeros


def test_grid_weights_follow_a_padded_window():
    # 20 wide, 10 high, padded to a 20x20 square: rows 5..15 of the window hold the image
    geometry = ImageGeometry(10, 20, 2, 2, "pad")
    mask = np.ones((10, 20), bool)
    np.testing.assert_allclose(token_grid_weights(mask, geometry), [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError):
        token_grid_weights(np.ones((5, 5), bool), geometry)
    with pytest.raises(ValueError):
        pool_tokens(np.zeros((3, 2)), np.zeros((1, 4)))


def test_image_features_are_the_projected_tokens_the_language_model_receives():
    from ros_ground.lmm import load_lmm

    lmm = load_lmm("tiny", device="cpu")
    image = np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)
    features, geometry = image_features(lmm, image)
    inputs, _, _ = lmm.prepare(image, "x")
    cfg = lmm.model.config
    with torch.no_grad():
        out = lmm.model.model.get_image_features(
            pixel_values=inputs["pixel_values"], vision_feature_layer=cfg.vision_feature_layer,
            vision_feature_select_strategy=cfg.vision_feature_select_strategy)
    expected = out.pooler_output[0].float().numpy()
    assert features.shape == (geometry.grid_h * geometry.grid_w, cfg.text_config.hidden_size)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def _planted(rng, dim=16, entities=5):
    tokens = rng.normal(size=(entities, dim)).astype(np.float32)
    return tokens


def test_retrieval_picks_the_planted_entity():
    rng = np.random.default_rng(0)
    tokens = _planted(rng)
    phrase = tokens[3] + 0.1 * rng.normal(size=16).astype(np.float32)
    scores = token_scores(phrase[None], tokens)
    assert scores.shape == (1, 5) and int(np.argmax(scores)) == 3
    assert np.all(np.abs(scores) <= 1.0)
    # combined: the tokens break a tie the attention cannot
    attention = np.zeros((1, 5))
    assert int(np.argmax(combine(attention, scores, "combined"))) == 3
    assert combine(attention, scores, "attention") is attention
    with pytest.raises(ValueError):
        combine(attention, scores, "both")


def test_phrase_vectors_average_the_tokens_embeddings():
    embedding = np.arange(12, dtype=np.float32).reshape(4, 3)
    vectors = phrase_vectors(embedding, [[1, 3], []])
    np.testing.assert_allclose(vectors[0], (embedding[1] + embedding[3]) / 2)
    np.testing.assert_array_equal(vectors[1], 0.0)
    assert phrase_vectors(embedding, []).shape == (0, 3)


def test_the_scorer_reads_only_the_rows_its_phrases_name():
    from ros_ground.entity_scoring import EntityScorer
    from ros_ground.lmm import load_lmm

    lmm = load_lmm("tiny", device="cpu")
    embedding = lmm.model.get_input_embeddings().weight.detach().float().numpy()
    phrase_ids = [[7, 3, 7], [], [3], [embedding.shape[0] - 1]]
    np.testing.assert_allclose(EntityScorer(lmm).phrase_vectors(phrase_ids),
                               phrase_vectors(embedding, phrase_ids), rtol=1e-6)


def test_a_trained_head_retrieves_entities_in_another_space():
    # phrases live in another space than the tokens: a hidden linear map relates them
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(8, 8)).astype(np.float32)
    pairs, tests = [], []
    for k in range(80):
        tokens = _planted(rng, dim=8, entities=4)
        index = int(rng.integers(4))
        phrase = np.linalg.solve(mix, tokens[index]).astype(np.float32)
        (pairs if k < 60 else tests).append((phrase, tokens, index))
    assert np.mean([np.argmax(token_scores(p[None], t)) == i for p, t, i in tests]) < 0.8
    state = torch.random.get_rng_state()
    head = train_head(pairs, epochs=150, lr=0.05)
    assert torch.equal(torch.random.get_rng_state(), state)  # seeded on a fork of the RNG
    hits = [int(np.argmax(token_scores(p[None], t, head))) == i for p, t, i in tests]
    assert np.mean(hits) >= 0.9


def test_engine_scores_entities_by_tokens_when_asked():
    from dataclasses import replace

    from ros_ground.engine import EngineConfig, build_engine
    from ros_ground.results import Proposal

    engine = build_engine(model="tiny", sam_model="tiny", device="cpu",
                          config=EngineConfig(max_new_tokens=12, attention_views=("identity",)))
    image = np.random.RandomState(3).randint(0, 255, (64, 96, 3), dtype=np.uint8)
    masks = []
    for i in range(3):
        m = np.zeros((64, 96), bool)
        m[:, i * 32:(i + 1) * 32] = True
        masks.append(m)
    proposals = [Proposal(id=i, mask=m) for i, m in enumerate(masks)]
    gen = engine.generate(image, "Describe the image in detail.")
    for window in (0.0, 3.0):
        cfg = replace(engine.config, mode="entities", entity_scoring="tokens",
                      entity_token_window=window)
        result = engine.ground_generation(image, gen, cfg, proposals=proposals, command=False)
        assert result.phrases
        if window:
            tokens = window_entity_tokens(engine.lmm, image, masks, window)
        else:
            tokens = entity_tokens(*image_features(engine.lmm, image), masks)
        _assert_scores(engine, gen, result, tokens)


def _assert_scores(engine, gen, result, tokens):
    embedding = engine.lmm.model.get_input_embeddings().weight.detach().float().numpy()
    for phrase in result.phrases:
        ids = [gen.token_ids[i] for i in phrase.token_indices]
        expected = token_scores(phrase_vectors(embedding, [ids]), tokens)[0]
        got = [phrase.entity_scores[i] for i in range(3)]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
