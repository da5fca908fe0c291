"""Attention-map arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from ros_ground.maps import contrast_phrase_maps, normalise_maps, peak_point, phrase_map


def _maps() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((5, 4, 6)).astype(np.float32)


def test_normalise_subtracts_mean_over_steps():
    maps = _maps()
    out = normalise_maps(maps)
    assert out.shape == maps.shape
    np.testing.assert_allclose(out, maps - maps.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_array_equal(maps, _maps())  # input untouched


def test_normalise_disabled_is_identity():
    maps = _maps()
    np.testing.assert_array_equal(normalise_maps(maps, enabled=False), maps)


def test_normalise_rejects_wrong_rank_and_accepts_empty():
    with pytest.raises(ValueError):
        normalise_maps(np.zeros((4, 4)))
    assert normalise_maps(np.zeros((0, 3, 3))).shape == (0, 3, 3)


def test_phrase_map_is_mean_of_steps():
    maps = _maps()
    np.testing.assert_allclose(phrase_map(maps, [1, 3]), (maps[1] + maps[3]) / 2, atol=1e-6)
    np.testing.assert_allclose(phrase_map(maps, [2]), maps[2])
    with pytest.raises(ValueError):
        phrase_map(maps, [])
    with pytest.raises(IndexError):
        phrase_map(maps, [5])


def test_peak_point_is_col_row():
    heat = np.zeros((4, 6))
    heat[3, 1] = 2.0
    assert peak_point(heat) == (1.0, 3.0)
    heat[0, 5] = np.nan
    assert peak_point(heat) == (1.0, 3.0)
    with pytest.raises(ValueError):
        peak_point(np.full((2, 2), np.nan))


def test_contrast_subtracts_the_other_phrases_mean():
    maps, shared = _maps()[:3], _maps()[4]
    out = contrast_phrase_maps(maps)
    np.testing.assert_allclose(out[0], maps[0] - (maps[1] + maps[2]) / 2, atol=1e-6)
    np.testing.assert_allclose(out[2], maps[2] - (maps[0] + maps[1]) / 2, atol=1e-6)
    # a map every phrase shares (the sequence mean) cancels
    np.testing.assert_allclose(contrast_phrase_maps(maps - shared), out, atol=1e-6)
    half = contrast_phrase_maps(maps, 0.5)
    np.testing.assert_allclose(half[1], maps[1] - 0.25 * (maps[0] + maps[2]), atol=1e-6)
    np.testing.assert_array_equal(contrast_phrase_maps(maps, 0.0), maps)


def test_contrast_of_one_phrase_is_identity_and_rank_is_checked():
    one = _maps()[:1]
    np.testing.assert_array_equal(contrast_phrase_maps(one), one)
    with pytest.raises(ValueError, match="P, h, w"):
        contrast_phrase_maps(one[0])


def test_no_peak_reason_names_flat_and_non_finite_maps():
    from ros_ground.maps import no_peak_reason, point_on_mask

    peaked = np.zeros((3, 4), np.float32)
    peaked[2, 1] = 1e-4  # small attention is still a peak
    assert no_peak_reason(peaked) is None
    assert "flat" in no_peak_reason(np.zeros((3, 4)))
    assert "flat" in no_peak_reason(np.full((3, 4), 0.3) + np.float32(1e-9))
    assert "no finite value" in no_peak_reason(np.full((3, 4), np.nan))
    mask = np.zeros((3, 4), bool)
    mask[1:, 2:] = True
    assert point_on_mask(np.full((3, 4), np.nan), mask) == (2.0, 1.0)  # on the mask, no error
    assert point_on_mask(peaked + mask, mask) == (2.0, 1.0)
