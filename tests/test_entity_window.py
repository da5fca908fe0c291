"""Entity tokens pooled from a window around each entity (entity_token_window)."""

from __future__ import annotations

import numpy as np
import pytest

from ros_ground.lmm.tokens import (
    MIN_WINDOW,
    entity_tokens,
    entity_window,
    image_features,
    window_entity_tokens,
)


def _box_mask(shape, x0, y0, w, h):
    mask = np.zeros(shape, bool)
    mask[y0:y0 + h, x0:x0 + w] = True
    return mask


def test_the_window_is_4_3_context_sides_tall_and_centred_on_the_box():
    mask = _box_mask((450, 800), 390, 200, 20, 30)  # longer side 30, centre (400, 215)
    x0, y0, w, h = entity_window(mask, 3.0)
    assert (w, h) == (120, 90)
    assert (x0 + w / 2, y0 + h / 2) == (400, 215)
    assert entity_window(mask, 1.0)[2:] == MIN_WINDOW  # 30 px tall would be too few pixels


def test_the_window_moves_inside_the_image_and_is_clipped_to_it():
    corner = _box_mask((240, 320), 300, 0, 20, 20)
    x0, y0, w, h = entity_window(corner, 3.0)
    assert (x0, y0, w, h) == (240, 0, 80, 60)  # moved left and down, size kept
    large = _box_mask((240, 320), 0, 0, 200, 200)
    assert entity_window(large, 3.0) == (0, 0, 320, 240)
    assert entity_window(np.zeros((240, 320), bool), 3.0) == (0, 0, 320, 240)  # empty: all
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            entity_window(corner, bad)


@pytest.mark.parametrize("box", [(0, 0, 800, 450), (50, 200, 700, 40), (300, 10, 40, 430)])
def test_the_window_always_holds_the_box(box):
    """Each side is clipped to the frame on its own: a wide box in a wide frame is not cut to
    4:3 of a clipped height."""
    x, y, bw, bh = box
    for context in (1.0, 3.0, 20.0):
        x0, y0, w, h = entity_window(_box_mask((450, 800), x, y, bw, bh), context)
        assert x0 <= x and y0 <= y and x + bw <= x0 + w and y + bh <= y0 + h, (box, context)
        assert 0 <= x0 and 0 <= y0 and x0 + w <= 800 and y0 + h <= 450
    assert entity_window(np.ones((450, 800), bool), 3.0) == (0, 0, 800, 450)


def test_bad_window_settings_are_refused():
    from ros_ground.engine import EngineConfig

    for bad in (-1.0, 0.5, float("inf"), float("nan"), 21.0):
        with pytest.raises(ValueError, match="entity_token_window"):
            EngineConfig(entity_token_window=bad).validate()
    assert EngineConfig(entity_token_window=0.0).validate().entity_token_window == 0.0


@pytest.fixture(scope="module")
def tiny_lmm():
    from ros_ground.lmm import load_lmm

    return load_lmm("tiny", device="cpu")


def test_a_window_token_is_the_windows_own_pooled_token(tiny_lmm):
    rng = np.random.RandomState(0)
    image = rng.randint(0, 255, (120, 200, 3), dtype=np.uint8)
    masks = [_box_mask((120, 200), 20, 30, 10, 12), _box_mask((120, 200), 150, 80, 30, 20)]
    tokens = window_entity_tokens(tiny_lmm, image, masks, 3.0)
    assert tokens.shape == (2, tiny_lmm.model.get_input_embeddings().weight.shape[1])
    assert tokens.dtype == np.float32
    for mask, token in zip(masks, tokens):
        x0, y0, w, h = entity_window(mask, 3.0)
        features, geometry = image_features(tiny_lmm, image[y0:y0 + h, x0:x0 + w].copy())
        np.testing.assert_allclose(token, entity_tokens(features, geometry,
                                                        [mask[y0:y0 + h, x0:x0 + w]])[0], rtol=1e-5)
    frame = entity_tokens(*image_features(tiny_lmm, image), masks)
    assert not np.allclose(tokens, frame, atol=1e-4)  # the frame's grid pools other cells
    assert window_entity_tokens(tiny_lmm, image, [], 3.0).shape == (0, tokens.shape[1])


def test_a_window_token_ignores_what_lies_outside_its_window(tiny_lmm):
    """What makes it a far object's token: the rest of the frame does not dilute it."""
    rng = np.random.RandomState(1)
    image = rng.randint(0, 255, (240, 320, 3), dtype=np.uint8)
    mask = _box_mask((240, 320), 40, 40, 16, 16)
    x0, y0, w, h = entity_window(mask, 3.0)
    other = image.copy()
    other[:, x0 + w:] = 255 - other[:, x0 + w:]  # repaint everything right of the window
    np.testing.assert_allclose(window_entity_tokens(tiny_lmm, image, [mask], 3.0),
                               window_entity_tokens(tiny_lmm, other, [mask], 3.0), rtol=1e-6)
    assert not np.allclose(entity_tokens(*image_features(tiny_lmm, image), [mask]),
                           entity_tokens(*image_features(tiny_lmm, other), [mask]), atol=1e-4)


def test_window_tokens_are_computed_once_per_frame_and_proposals(tiny_lmm, monkeypatch):
    """A command's phrases are scored against the answer's proposals: one pass per entity."""
    from ros_ground.entity_scoring import EntityScorer
    from ros_ground.lmm import tokens
    from ros_ground.results import Proposal

    image = np.random.RandomState(2).randint(0, 255, (96, 128, 3), dtype=np.uint8)
    proposals = [Proposal(id=i, mask=_box_mask((96, 128), 10 + 40 * i, 20, 20, 20)) for i in range(3)]
    calls = []
    real = tokens.window_entity_tokens
    monkeypatch.setattr(tokens, "window_entity_tokens",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    scorer = EntityScorer(tiny_lmm)
    heats = [np.random.RandomState(3).rand(96, 128).astype(np.float32)]
    first = scorer.scores(image, heats, proposals, [[5, 6]], scoring="tokens", image_key=7,
                          token_window=3.0)
    again = scorer.scores(image, heats, proposals, [[8]], scoring="tokens", image_key=7,
                          token_window=3.0)
    assert len(calls) == 1 and first.shape == again.shape == (1, 3)
    scorer.scores(image, heats, proposals[:2], [[5]], scoring="tokens", image_key=7, token_window=3.0)
    scorer.scores(image, heats, proposals, [[5]], scoring="tokens", image_key=8, token_window=3.0)
    scorer.scores(image, heats, proposals, [[5]], scoring="tokens", image_key=None, token_window=3.0)
    assert len(calls) == 4  # other proposals, another frame, no frame key: computed again
    scorer.scores(image, heats, proposals, [[5]], scoring="tokens", image_key=9, token_window=0.0)
    assert len(calls) == 4  # 0: the whole frame's tokens
    # the same ids and areas, other pixels: other tokens
    moved = [Proposal(id=p.id, mask=np.roll(p.mask, 30, axis=0)) for p in proposals]
    scorer.scores(image, heats, proposals, [[5]], scoring="tokens", image_key=7, token_window=3.0)
    scorer.scores(image, heats, moved, [[5]], scoring="tokens", image_key=7, token_window=3.0)
    assert len(calls) == 6


def test_the_sim_head_warns_once_when_scoring_tokens_of_a_window_it_did_not_learn(
        tiny_lmm, monkeypatch, caplog):
    from ros_ground import retrieval
    from ros_ground.entity_scoring import EntityScorer
    from ros_ground.results import Proposal

    assert retrieval.head_record()["entity_token_window"] == 3.0  # the shipped head's record
    dim = tiny_lmm.model.get_input_embeddings().weight.shape[1]
    monkeypatch.setattr(tiny_lmm, "name", "sim")  # the head is loaded for the sim model only
    monkeypatch.setattr(retrieval, "load_head", lambda **_: np.eye(dim, dtype=np.float32))
    image = np.random.RandomState(2).randint(0, 255, (96, 128, 3), dtype=np.uint8)
    proposals = [Proposal(id=0, mask=_box_mask((96, 128), 10, 20, 20, 20))]
    heats = [np.random.RandomState(3).rand(96, 128).astype(np.float32)]
    scorer = EntityScorer(tiny_lmm)
    with caplog.at_level("WARNING", logger="ros_ground.entity_scoring"):
        for window in (3.0, 3.0, 0.0, 0.0, 5.0):
            scorer.scores(image, heats, proposals, [[5]], scoring="combined", image_key=1,
                          token_window=window)
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and "window 3.0, not 0.0" in warned[0] and "not 5.0" in warned[1]
