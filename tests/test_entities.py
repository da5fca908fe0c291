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
    tokens = sam.entity_tokens(seg.predictor, MASKS)
    assert tokens.shape == (3, 32) and tokens.dtype == np.float32
    assert sam.entity_tokens(seg.predictor, []).shape == (0, 32)


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
    with pytest.raises(ValueError, match="counts"):
        assign_entities([_blob(15, 15)], _proposals(), counts=[0])


FOUR = [_box(2, 2, 18, 18), _box(30, 2, 46, 18), _box(2, 40, 18, 56), _box(60, 40, 76, 56)]


def test_a_phrase_naming_two_things_takes_two_entities():
    # "two mugs" (masks 0 and 1) and "a tray" (mask 3); mask 2 draws a little of both
    mugs = _blob(10, 10) + _blob(38, 10) + 0.5 * _blob(10, 48)
    tray = _blob(68, 48) + 0.6 * _blob(10, 48)
    one, two = (assign_entities([mugs, tray], _proposals(FOUR), counts=[k, 1]) for k in (1, 2))
    assert len(one[0].ids) == 1 and one[1].ids == [13]
    assert sorted(two[0].ids) == [10, 11] and two[1].ids == [13]
    np.testing.assert_array_equal(two[0].mask, FOUR[0] | FOUR[1])
    assert two[0].score == max(two[0].scores[10], two[0].scores[11])


def test_a_plural_without_a_number_takes_every_free_entity_near_its_best():
    mugs = _blob(10, 10) + _blob(38, 10) + _blob(10, 48)  # "the mugs": three alike
    tray = _blob(68, 48)
    plural = assign_entities([mugs, tray], _proposals(FOUR), counts=[None, 1])
    assert sorted(plural[0].ids) == [10, 11, 12] and plural[1].ids == [13]  # not the tray's
    single = assign_entities([mugs, tray], _proposals(FOUR))
    assert len(single[0].ids) == 1
    # a later "the mugs" may share the first mention's entities
    again = assign_entities([mugs, tray, mugs], _proposals(FOUR), free=[False, False, True],
                            counts=[None, 1, None])
    assert sorted(again[2].ids) == [10, 11, 12]
