import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as coco_mask

from ros_ground.rle import RLEError, counts_to_mask, mask_to_rle, rle_area, rle_to_mask

masks = st.tuples(st.integers(0, 12), st.integers(0, 12)).flatmap(
    lambda hw: arrays(np.bool_, hw)
)


@settings(max_examples=300, deadline=None)
@given(masks)
def test_round_trip(mask):
    rle = mask_to_rle(mask)
    assert rle["size"] == list(mask.shape)
    assert sum(rle["counts"]) == mask.size
    assert rle_area(rle["counts"]) == int(mask.sum())
    np.testing.assert_array_equal(rle_to_mask(rle), mask)


@settings(max_examples=200, deadline=None)
@given(masks.filter(lambda m: m.size > 0))
def test_matches_pycocotools(mask):
    rle = mask_to_rle(mask)
    coco = coco_mask.frPyObjects(rle, *rle["size"])
    np.testing.assert_array_equal(coco_mask.decode(coco).astype(bool), mask)
    assert int(coco_mask.area(coco)) == int(mask.sum())
    # and pycocotools' own encoding describes the same runs
    ours = coco_mask.frPyObjects(rle, *rle["size"])["counts"]
    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"]
    assert ours == theirs


def test_first_count_zero_when_origin_set():
    mask = np.zeros((3, 4), bool)
    mask[0, 0] = True
    assert mask_to_rle(mask)["counts"][:2] == [0, 1]


def test_column_major_order():
    mask = np.zeros((2, 3), bool)
    mask[0, 1] = True  # column-major index 2
    assert mask_to_rle(mask)["counts"] == [2, 1, 3]


@pytest.mark.parametrize(
    "size,counts",
    [((2, 2), [1, 2]), ((2, 2), [5]), ((2, 2), [-1, 5]), ((-1, 2), []), ((2, 2), ["a", 4]),
     ((2, 2), [[1, 2], [3]]), ((2, 2), [2**70, 4]), ((2, 2), [2.5, 1.5]), ((2, 2), ["2", "2"]),
     ((2, 2), [2.0, 2.0])],
)
def test_inconsistent_counts_raise(size, counts):
    with pytest.raises(RLEError):
        counts_to_mask(size[0], size[1], counts)


def test_compressed_and_garbage_rejected():
    with pytest.raises(RLEError):
        rle_to_mask({"size": [2, 2], "counts": "abc"})
    with pytest.raises(RLEError):
        rle_to_mask({"counts": [4]})
    with pytest.raises(RLEError):
        counts_to_mask(100_000, 100_000, [10_000_000_000])
