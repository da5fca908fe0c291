"""masks.py: the pairwise comparisons of one frame's masks, against the dense reference."""

import tracemalloc

import numpy as np
import pytest

from ros_ground.masks import iou, iou_matrix, overlap_matrix, pair_intersections, self_iou_matrix


def _blobs(rng, n: int, shape=(60, 80)) -> list[np.ndarray]:
    masks = []
    for _ in range(n):
        m = np.zeros(shape, dtype=bool)
        y, x = rng.integers(0, shape[0] - 5), rng.integers(0, shape[1] - 5)
        h, w = rng.integers(1, 25, size=2)
        m[y:y + h, x:x + w] = rng.random((min(h, shape[0] - y), min(w, shape[1] - x))) < 0.8
        masks.append(m)
    masks.append(np.zeros(shape, dtype=bool))  # an empty one
    masks.append(masks[0].copy())  # a duplicate
    return masks


@pytest.mark.parametrize("seed", range(5))
def test_self_iou_matrix_equals_the_dense_iou_matrix(seed):
    masks = _blobs(np.random.default_rng(seed), 12)
    np.testing.assert_allclose(self_iou_matrix(masks), iou_matrix(masks, masks), atol=1e-6)
    assert self_iou_matrix(masks)[0, len(masks) - 1] == 1.0  # the duplicate


@pytest.mark.parametrize("seed", range(5))
def test_overlap_matrix_is_the_intersection_over_the_smaller_area(seed):
    masks = _blobs(np.random.default_rng(seed), 12)
    got = overlap_matrix(masks)
    for i, a in enumerate(masks):
        for j, b in enumerate(masks):
            smaller = min(a.sum(), b.sum())
            want = (a & b).sum() / smaller if smaller else 0.0
            assert got[i, j] == pytest.approx(want), (i, j)


def test_pairs_that_touch_only_at_a_box_corner_are_counted():
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[0:5, 0:5] = True
    b[4:9, 4:9] = True  # one shared pixel, (4, 4)
    inter, area = pair_intersections([a, b])
    assert inter[0, 1] == inter[1, 0] == 1 and list(area) == [25, 25]
    assert self_iou_matrix([a, b])[0, 1] == pytest.approx(iou(a, b)) == pytest.approx(1 / 49)


def test_no_masks_and_shapes_that_differ():
    assert self_iou_matrix([]).shape == (0, 0) and overlap_matrix([]).shape == (0, 0)
    with pytest.raises(ValueError, match="shapes differ"):
        overlap_matrix([np.zeros((4, 4), bool), np.zeros((4, 5), bool)])
    # a 4x6 and a 6x4 mask hold as many pixels: compared flattened they would score IoU 1
    with pytest.raises(ValueError, match="shapes differ"):
        iou_matrix([np.ones((4, 6), bool)], [np.ones((6, 4), bool)])
    with pytest.raises(ValueError, match="shapes differ"):
        iou_matrix([np.ones((4, 6), bool), np.ones((6, 4), bool)], [np.ones((4, 6), bool)])


def test_a_large_frame_is_not_copied_once_per_mask():
    """20 masks of a 2048x2048 frame: the dense product would allocate 20 float32 frames (336 MB)."""
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(20):
        m = np.zeros((2048, 2048), dtype=bool)
        y, x = rng.integers(0, 1800, size=2)
        m[y:y + 200, x:x + 200] = True
        masks.append(m)
    tracemalloc.start()
    try:
        overlap_matrix(masks)
        self_iou_matrix(masks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2048 * 2048, peak  # a mask's uint8 copy for its box, not N float copies
