"""Flipped views: images and maps flip consistently, bad view lists are refused."""

import numpy as np
import pytest

from ros_ground.views import FLIPS, VIEWS, check_views, flip_image, unflip_maps


def test_a_mark_read_on_any_view_lands_back_where_it_is():
    image = np.zeros((6, 10, 3), np.uint8)
    image[1, 7] = 255  # top right
    for view in VIEWS:
        seen = flip_image(image, view)
        assert seen.shape == image.shape and seen.flags["C_CONTIGUOUS"]
        grid = seen[..., 0][None].astype(np.float32)  # a "map" that is the image itself
        back = unflip_maps(grid, view)
        assert back.shape == (1, 6, 10)
        assert np.argwhere(back[0]).tolist() == [[1, 7]], view
    assert np.argwhere(flip_image(image, "hflip")[..., 0]).tolist() == [[1, 2]]
    assert np.argwhere(flip_image(image, "vflip")[..., 0]).tolist() == [[4, 7]]
    assert np.argwhere(flip_image(image, "rot180")[..., 0]).tolist() == [[4, 2]]


def test_check_views():
    assert check_views(["identity", "vflip"]) == ("identity", "vflip")
    assert check_views(FLIPS) == VIEWS
    for bad, match in (([], "at least one"), (["identity", "identity"], "repeated"),
                       (["mirror"], "unknown")):
        with pytest.raises(ValueError, match=match):
            check_views(bad)
    with pytest.raises(ValueError, match="unknown view"):
        flip_image(np.zeros((2, 2, 3), np.uint8), "transpose")
