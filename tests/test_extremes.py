"""extremes._unions: which proposals are two other objects together, on a small and a large frame."""

import tracemalloc

import numpy as np

from ros_ground.command.extremes import _unions


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


def _unions_by_pairs(masks, among):
    """The rule as `_unions`'s docstring states it, pair by pair."""
    from ros_ground.command.extremes import UNION_PART
    from ros_ground.masks import pair_intersections

    inter, area = pair_intersections([np.asarray(m, dtype=bool)[::2, ::2] for m in masks])
    out = np.zeros(len(masks), dtype=bool)
    for i in np.flatnonzero(among):
        parts = [j for j in range(len(masks)) if j != i and UNION_PART * area[i] <= area[j] < area[i]
                 and inter[i, j] >= 0.8 * area[j]]
        out[i] = any(inter[a, b] < 0.2 * min(area[a], area[b])
                     and inter[i, a] + inter[i, b] >= 0.8 * area[i]
                     for k, a in enumerate(parts) for b in parts[k + 1:])
    return out


def test_the_unions_follow_the_pairwise_rule_on_random_layouts():
    rng = np.random.default_rng(0)
    shape, found = (64, 96), 0
    for _ in range(150):
        boxes = [_box(shape, *sorted(rng.integers(0, 64, 2)), *sorted(rng.integers(0, 96, 2)))
                 for _ in range(rng.integers(2, 9))]
        boxes += [boxes[a] | boxes[b] for a, b in rng.integers(0, len(boxes), (3, 2))]
        among = rng.random(len(boxes)) < 0.8
        got = _unions(boxes, among)
        assert got.tolist() == _unions_by_pairs(boxes, among).tolist()
        found += int(got.sum())
    assert found > 10  # the layouts hold unions, not only masks that are none
    nested = [_box((256, 256), 128 - r, 128 - r, 128 + r, 128 + r) for r in range(2, 128)]
    assert _unions(nested, np.ones(len(nested), bool)).tolist() == \
        _unions_by_pairs(nested, np.ones(len(nested), bool)).tolist()
