"""masks.hottest_piece: a command's target is one object, not a proposal's pieces."""

import numpy as np

from ros_ground.masks import hottest_piece


def test_the_target_keeps_the_piece_with_the_most_heat():
    mask = np.zeros((20, 30), bool)
    mask[2:12, 2:12] = True  # a mug, 100 px, where the command's words looked
    mask[4:8, 20:24] = True  # a red brick beside it, 16 px, in the same proposal
    mask[15, 28] = True  # a speck
    heat = np.zeros((20, 30))
    heat[2:12, 2:12] = 0.5
    heat[4:8, 20:24] = 0.9  # hotter per pixel, but holding less heat in all
    kept = hottest_piece(mask, heat)
    assert kept.sum() == 100 and kept[2:12, 2:12].all() and not kept[4:8, 20:24].any()
    heat[4:8, 20:24] = 5.0  # now the brick holds more: 80 against 50
    assert hottest_piece(mask, heat).sum() == 16


def test_a_mask_in_one_piece_is_kept_whole_and_diagonal_pixels_are_one_piece():
    mask = np.eye(6, dtype=bool)  # 8-connected: one piece
    heat = np.random.RandomState(0).rand(6, 6) - 0.5  # negative heat is counted above its least
    kept = hottest_piece(mask, heat)
    assert (kept == mask).all() and kept is not mask
