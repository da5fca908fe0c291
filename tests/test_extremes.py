"""extremes._unions: which proposals are two other objects together, on a small and a large frame."""

import tracemalloc

import numpy as np

from ros_ground.extremes import _unions


def _box(shape, y0, x0, y1, x1):
    m = np.zeros(shape, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_a_mask_of_two_objects_together_is_a_union_and_an_object_is_not():
    shape = (60, 80)
    mug, tray = _box(shape, 10, 10, 30, 30), _box(shape, 10, 32, 30, 60)
    both = mug | tray | _box(shape, 10, 30, 30, 32)  # SAM's mask over the two and the gap
    handle = _box(shape, 12, 30, 16, 32)  # too small a part to be an object
    masks = [mug, tray, both, handle]
    got = _unions(masks, np.ones(len(masks), dtype=bool))
    assert got.tolist() == [False, False, True, False]
    # only the masks asked about are judged
    assert not _unions(masks, np.array([True, True, False, True])).any()


def test_a_large_frame_is_not_copied_once_per_mask():
    """64 masks of 2048x2048 (the proposal budget's 2^30 pixels at 4096x4096 holds as many): the
    dense half-resolution product would allocate 64 float32 quarter frames (268 MB)."""
    shape = (2048, 2048)
    masks = [_box(shape, 30 * i, 30 * i, 30 * i + 100, 30 * i + 100) for i in range(64)]
    tracemalloc.start()
    try:
        got = _unions(masks, np.ones(len(masks), dtype=bool))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not got.any()
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB"
