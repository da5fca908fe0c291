"""Entity scoring and selection on synthetic heatmaps."""

from __future__ import annotations

import numpy as np
import pytest

from ros_ground.entities import EntitySelection, assign_entities, score_entities, select_entities
from ros_ground.results import Proposal

H, W = 60, 90


def _box(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _blob(cx: float, cy: float, sigma: float = 5.0) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))


MASKS = [_box(5, 5, 25, 25), _box(35, 10, 55, 30), _box(62, 32, 82, 52)]  # equal areas


def _proposals(masks=MASKS) -> list[Proposal]:
    return [Proposal(id=10 + i, mask=m) for i, m in enumerate(masks)]


def test_peaked_heatmap_selects_its_mask():
    heat = _blob(45, 20)
    heat = heat - heat.mean()  # a normalised map has negative values too
    sel = select_entities(heat, _proposals())
    assert isinstance(sel, EntitySelection)
    assert sel.ids == [11]
    np.testing.assert_array_equal(sel.mask, MASKS[1])
    assert sel.score == pytest.approx(sel.scores[11]) and sel.score == max(sel.scores.values())
    assert set(sel.scores) == {10, 11, 12}


def test_two_equally_hot_masks_are_both_selected():
    heat = _blob(15, 15) + _blob(72, 42)
    sel = select_entities(heat, _proposals())
    assert sorted(sel.ids) == [10, 12]
    np.testing.assert_array_equal(sel.mask, MASKS[0] | MASKS[2])


def test_tiny_and_huge_masks_do_not_win():
    heat = _blob(45, 20)
    peak_pixel = np.zeros((H, W), dtype=bool)
    peak_pixel[20, 45] = True
    whole = np.ones((H, W), dtype=bool)
    scores = score_entities(heat, [MASKS[1], peak_pixel, whole, np.zeros((H, W), dtype=bool)])
    assert np.argmax(scores) == 0
    assert scores[2] == 0.0 and scores[3] == -1.0
    assert np.all(scores <= 1.0) and np.all(scores >= -1.0)


def test_scores_ignore_heatmap_units():
    heat = _blob(45, 20)
    np.testing.assert_allclose(score_entities(heat, MASKS), score_entities(3.0 * heat - 7.0, MASKS))
    np.testing.assert_array_equal(score_entities(np.ones((H, W)), MASKS), 0.0)


def test_min_score_and_fallback():
    heat = _blob(15, 15) + 0.9 * _blob(72, 42)
    assert sorted(select_entities(heat, _proposals(), margin=0.5).ids) == [10, 12]
    assert select_entities(heat, _proposals(), margin=0.5, min_score=0.99).ids == [10]  # best kept
    assert select_entities(heat, _proposals(), margin=0.0).ids == [10]


def test_no_proposals_and_shape_errors():
    assert select_entities(_blob(1, 1), []) is None
    with pytest.raises(ValueError):
        score_entities(_blob(1, 1), [np.ones((3, 3), dtype=bool)])


def test_entity_tokens_shape():
    sam = pytest.importorskip("ros_ground.sam")
    seg = sam.load_sam("tiny")
    seg.set_image(np.zeros((H, W, 3), dtype=np.uint8))
    tokens = seg.entity_tokens(MASKS)
    assert tokens.shape == (3, 32) and tokens.dtype == np.float32
    assert seg.entity_tokens([]).shape == (0, 32)


def test_assignment_gives_the_shared_favourite_to_the_phrase_that_needs_it():
    # both phrases like mask 0 best; the second barely likes anything else, the first likes mask 1
    first = _blob(15, 15) + 0.9 * _blob(45, 20)
    second = _blob(15, 15)
    alone = [select_entities(h, _proposals(), margin=0.0).ids for h in (first, second)]
    assert alone == [[10], [10]]
    chosen = assign_entities([first, second], _proposals())
    assert [c.ids for c in chosen] == [[11], [10]]
    assert chosen[0].mask.sum() == MASKS[1].sum() and chosen[0].score == chosen[0].scores[11]


def test_free_phrases_and_leftover_phrases_take_their_best():
    same = [_blob(15, 15)] * 2
    assert [c.ids for c in assign_entities(same, _proposals(), free=[False, True])] == [[10], [10]]
    assert [c.ids[0] for c in assign_entities(same, _proposals())] != [10, 10]
    four = [_blob(15, 15), _blob(45, 20), _blob(72, 42), _blob(16, 16)]
    two = _proposals(MASKS[:2])
    assert [c.ids for c in assign_entities(four, two)][:2] == [[10], [11]]
    assert len(assign_entities(four, two)) == 4  # the last two phrases share, none is dropped


def test_assignment_edge_cases():
    assert assign_entities([_blob(15, 15)], []) is None
    assert assign_entities([], _proposals()) == []
    with pytest.raises(ValueError, match="free flags"):
        assign_entities([_blob(15, 15)], _proposals(), free=[True, False])
