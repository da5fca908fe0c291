"""Windows of a large frame at SAM's input scale: point prompts (point_zoom) and mask
proposals (proposal_zoom)."""

from __future__ import annotations

import numpy as np
import pytest

from ros_ground.sam import load_sam
from ros_ground.sam.windows import (
    MIN_ZOOM,
    point_windows,
    proposal_windows,
    reaches_inner_edge,
    window_size,
    zoom_crops_text,
    zoom_side,
)


def test_a_window_has_the_frames_aspect_and_sams_input_on_its_longer_side():
    assert window_size(450, 800, 320) == (320, 180)
    assert window_size(1944, 2592, 1024) == (1024, 768)
    assert window_size(240, 320, 320) is None and window_size(480, 640, 1024) is None


@pytest.mark.parametrize("height,width,side", [(776, 1032, 1024), (720, 1280, 1024),
                                               (1024, 1280, 1024), (240, 400, 320)])
def test_a_frame_at_most_min_zoom_times_sams_input_gets_no_point_windows(height, width, side):
    # as proposal crops: SAM would read a window at most 1.25x larger, for an encoder pass each
    assert max(height, width) <= MIN_ZOOM * side
    assert window_size(height, width, side) is None
    assert point_windows([(5, 5), (width - 5, height - 5)], height, width, side) == [
        ((0, 0, width, height), [0, 1])]
    assert proposal_windows(height, width, side) == []
    assert window_size(240, 401, 320) == (320, 192)  # just beyond: windows, as crops


def test_points_share_a_window_only_well_inside_it():
    windows = point_windows([(400, 200), (430, 220), (700, 400), (10, 10)], 450, 800, 320)
    assert windows == [((240, 110, 320, 180), [0, 1]),  # centred on the first; the second inside
                       ((480, 270, 320, 180), [2]),  # moved inside the frame
                       ((0, 0, 320, 180), [3])]
    # a point near a window's inner edge gets its own, centred window
    assert len(point_windows([(400, 200), (540, 200)], 450, 800, 320)) == 2
    # at the frame's edge the window cannot move further, so the edge counts as inside
    assert point_windows([(2, 2), (1, 1)], 450, 800, 320) == [((0, 0, 320, 180), [0, 1])]
    # windows kept from an earlier call are tried first; one holding no point is left out
    kept = [(240, 110, 320, 180)]
    assert point_windows([(430, 220)], 450, 800, 320, kept) == [((240, 110, 320, 180), [0])]
    assert point_windows([(10, 10), (430, 220)], 450, 800, 320, kept) == [
        ((240, 110, 320, 180), [1]), ((0, 0, 320, 180), [0])]
    assert point_windows([(10, 10)], 450, 800, 320, kept) == [((0, 0, 320, 180), [0])]


def test_a_frame_no_larger_than_sams_input_is_one_window_and_bad_points_are_refused():
    assert point_windows([(5, 5), (300, 200)], 240, 320, 320) == [((0, 0, 320, 240), [0, 1])]
    assert point_windows([], 450, 800, 320) == []
    with pytest.raises(ValueError, match="outside"):
        point_windows([(801, 5)], 450, 800, 320)
    with pytest.raises(ValueError):
        point_windows([(5, 5)], 450, 800, 0)
    with pytest.raises(ValueError, match="outside"):
        point_windows([(float("nan"), 5)], 450, 800, 320)


@pytest.mark.parametrize("height, width, side", [(450, 800, 320), (1944, 2592, 1024),
                                                  (100, 800, 320), (420, 401, 320), (300, 500, 256)])
def test_every_object_up_to_a_quarter_crop_is_kept_by_some_zoom_crop(height, width, side):
    """The generator drops a crop's mask near one of the crop's inner edges
    (segment-anything's is_box_near_crop_edge): the crops must overlap enough that each small
    object lies well inside one of them, wherever it is. (320x180 crops overlapping by a
    quarter, tried first, lost 13% of the positions of a 33-px object on an 800x450 frame.)"""
    import torch
    from segment_anything.utils.amg import is_box_near_crop_edge

    boxes = proposal_windows(height, width, side)
    assert boxes and all(x1 - x0 == min(side, width) and y1 - y0 == min(side, height)
                         and 0 <= x0 and 0 <= y0 and x1 <= width and y1 <= height
                         for x0, y0, x1, y1 in boxes)
    size = min(side, width, height) // 4
    step = max(1, min(width, height) // 60)
    objects = torch.tensor([[x, y, x + size, y + size] for y in range(0, height - size + 1, step)
                            for x in range(0, width - size + 1, step)], dtype=torch.float32)
    kept = torch.zeros(len(objects), dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:  # a crop's mask of an object: its box clipped to the crop
        inside = (objects[:, 0] < x1) & (objects[:, 2] > x0) & (objects[:, 1] < y1) \
            & (objects[:, 3] > y0)
        local = torch.stack([objects[:, 0].clamp(x0, x1) - x0, objects[:, 1].clamp(y0, y1) - y0,
                             objects[:, 2].clamp(x0, x1) - x0, objects[:, 3].clamp(y0, y1) - y0], 1)
        kept |= inside & ~is_box_near_crop_edge(local, [x0, y0, x1, y1], [0, 0, width, height])
    assert kept.all(), objects[~kept][:3]


@pytest.mark.parametrize("height, width, side, max_crops", [
    (4096, 4096, 320, 16), (2048, 2048, 320, 9), (450, 800, 320, 4), (1944, 2592, 1024, 4)])
def test_max_zoom_crops_grows_the_crops_until_their_count_fits(height, width, side, max_crops):
    """A camera far larger than SAM's input would cost an encoder pass per crop (4096x4096 on
    the sim SAM: 400); the cap trades the crops' scale for their count, and they still tile
    the frame with the overlap that keeps a small object inside one of them."""
    uncapped = proposal_windows(height, width, side)
    capped = proposal_windows(height, width, side, max_crops)
    assert len(uncapped) > max_crops >= len(capped) > 0
    size = max(capped[0][2] - capped[0][0], capped[0][3] - capped[0][1])
    assert size > side
    # crops just a tenth smaller would be too many: the cap shrinks them no more than it must
    assert len(proposal_windows(height, width, int(size / 1.1))) > max_crops
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in capped:
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert (x1 - x0, y1 - y0) == (min(size, width), min(size, height))
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert proposal_windows(height, width, side, len(uncapped)) == uncapped  # a cap not reached


def test_a_cap_too_small_for_any_zoom_gives_none_and_the_log_says_why():
    assert len(proposal_windows(400, 400, 300)) == 4
    assert proposal_windows(400, 400, 300, 3) == []  # 3 crops would be near the frame's size
    assert "max_zoom_crops 3" in zoom_crops_text(400, 400, 300, 3)
    # a huge thin frame (max_image_pixels allows 1 x 16.7 M) is planned without listing boxes
    assert len(proposal_windows(1, 4096 * 4096, 320, 16)) == 16
    assert zoom_crops_text(450, 800, 320, 16) == (
        "800x450 frames: 8 zoom crops of 320x320 px besides the whole frame, one SAM encoder "
        "pass each")
    assert "shrunk 4.21x" in zoom_crops_text(4096, 4096, 320, 16)
    assert "within 1.25 x a 320-px zoom crop" in zoom_crops_text(240, 320, 320, 16)
    # magnified crops: smaller ones, more of them, grown back only as far as the cap needs
    assert zoom_side(320, 1.6) == 200 and zoom_side(320, 1.0) == 320
    assert len(proposal_windows(450, 800, zoom_side(320, 1.6))) == 28
    assert zoom_crops_text(450, 800, 320, 16, 1.6) == (
        "800x450 frames: 15 zoom crops of 244x244 px besides the whole frame, one SAM encoder "
        "pass each, magnified 1.31x to SAM's 320-px input (max_zoom_crops 16)")
    # a frame within SAM's input gets crops when they are magnified enough
    assert len(proposal_windows(240, 320, zoom_side(320, 1.6))) == 6
    for bad in (0.5, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="zoom_magnification"):
            zoom_side(320, bad)
    for cap in (0, 1):
        with pytest.raises(ValueError, match="max_crops"):
            proposal_windows(450, 800, 320, cap)


def test_zoom_crops_are_square_and_none_for_a_frame_near_sams_input():
    assert proposal_windows(450, 800, 320) == [
        [x, y, x + 320, y + 320] for y in (0, 130) for x in (0, 160, 320, 480)]
    assert len(proposal_windows(1080, 1920, 1024)) == 6
    # at most 1.25 times SAM's input: SAM shrinks it by less than that, no crops
    for height, width, side in ((240, 320, 320), (240, 400, 320), (720, 1280, 1024)):
        assert proposal_windows(height, width, side) == []
    assert len(proposal_windows(240, 401, 320)) == 2
    with pytest.raises(ValueError):
        proposal_windows(450, 800, 0)


def test_a_mask_reaching_a_window_edge_inside_the_frame_is_cut_there():
    edge = np.zeros((180, 320), bool)
    edge[50:60, 300:320] = True  # reaches the right edge
    assert reaches_inner_edge(edge, (100, 100, 320, 180), 450, 800)
    assert not reaches_inner_edge(edge, (480, 100, 320, 180), 450, 800)  # the frame's edge
    inside = np.zeros((180, 320), bool)
    inside[50:60, 50:60] = True
    assert not reaches_inner_edge(inside, (100, 100, 320, 180), 450, 800)


@pytest.mark.parametrize("cut", [False, True])
def test_zoomed_points_are_the_windows_own_masks_unless_a_window_cuts_them(monkeypatch, cut):
    from ros_ground.sam import segmenter

    seg = load_sam("tiny")
    side = seg.img_size
    image = np.random.default_rng(0).integers(0, 256, (side + side // 2, 2 * side, 3), dtype=np.uint8)
    points = [(20.0, 30.0), (2 * side - 40.0, side + 10.0), (side, side // 2)]
    frame = seg.segment_points(image, points)
    # the tiny random SAM's masks are arbitrary: decide the cut here, test it with the sim SAM
    monkeypatch.setattr(segmenter, "reaches_inner_edge", lambda *args: cut)
    passes = seg.embedding_passes
    zoomed = seg.segment_points(image, points, zoom=True)
    windows = point_windows(points, *image.shape[:2], side)
    assert len(windows) == 3  # far apart: a window each
    assert seg.embedding_passes - passes == 3  # the windows; the frame's stayed current
    for (box, members), (x, y) in zip(windows, points):
        x0, y0, w, h = box
        (got, got_score), = [zoomed[i] for i in members]
        assert got.shape == image.shape[:2]
        if cut:  # cut by its window: the whole frame's mask instead
            np.testing.assert_array_equal(got, frame[members[0]][0])
            continue
        mask, score = seg.segment_point(image[y0:y0 + h, x0:x0 + w].copy(), (x - x0, y - y0))
        np.testing.assert_array_equal(got[y0:y0 + h, x0:x0 + w], mask)
        assert got.sum() == mask.sum() and got_score == pytest.approx(score)
    # the same frame again (the command's phrases, a streamed update): its windows are kept
    passes = seg.embedding_passes
    again = seg.segment_points(image, points, zoom=True)
    assert seg.embedding_passes == passes
    assert all((a[0] == b[0]).all() for a, b in zip(again, zoomed))
    # another point well inside a kept window is prompted there, at no new encoder pass
    x, y = points[2]
    seg.segment_points(image, [(x + 10, y + 5)], zoom=True)
    assert seg.embedding_passes == passes
    # in a frame SAM reads whole, zoom changes nothing
    small = image[:side // 2, :side]
    np.testing.assert_array_equal(seg.segment_points(small, [(5, 5)], zoom=True)[0][0],
                                  seg.segment_points(small, [(5, 5)])[0][0])


def test_a_window_cutting_a_large_object_gives_the_frames_mask():
    """With the sim SAM: a table-sized object seen through a window reaches its inner edges."""
    from ros_ground.evaluate.scenes import scene_for

    seg = load_sam("sim")
    scene = scene_for(0, "ood")
    h, w = scene.rgb.shape[:2]
    point = (w / 2, h - 20.0)  # on the table, near the camera
    frame_mask = seg.segment_points(scene.rgb, [point])[0][0]
    zoomed = seg.segment_points(scene.rgb, [point], zoom=True)[0][0]
    (box, _), = point_windows([point], h, w, seg.img_size)
    x0, y0, bw, bh = box
    window_mask = zoomed[y0:y0 + bh, x0:x0 + bw]
    # the contract: the frame's mask, or the window's own that no inner window edge cuts
    assert zoomed.any()
    assert (zoomed == frame_mask).all() or (
        window_mask.sum() == zoomed.sum() and not reaches_inner_edge(window_mask, box, h, w))


def test_zoom_gives_better_masks_of_far_objects_with_the_sim_sam():
    """The sim SAM reads 320 px; ood frames are 800x450 with far, small objects."""
    import cv2

    from ros_ground.evaluate.scenes import scene_for
    from ros_ground.masks import iou

    seg = load_sam("sim")
    whole, zoomed = [], []
    for seed in range(3):
        scene = scene_for(seed, "ood")
        for obj in scene.objects:
            depth = cv2.distanceTransform(obj.mask.astype(np.uint8), cv2.DIST_L2, 3)
            y, x = np.unravel_index(np.argmax(depth), depth.shape)
            whole.append(iou(seg.segment_point(scene.rgb, (x, y), key=("w", seed))[0], obj.mask))
            zoomed.append(iou(seg.segment_points(scene.rgb, [(x, y)], zoom=True)[0][0], obj.mask))
    assert len(whole) >= 10
    assert np.mean(zoomed) > np.mean(whole) + 0.2, (np.mean(whole), np.mean(zoomed))


def test_the_engines_point_mode_zooms_as_its_config_says(monkeypatch):
    """point_zoom reaches SAM, for the answer's phrases and the command's alike."""
    from dataclasses import replace

    from ros_ground.engine import EngineConfig, build_engine

    engine = build_engine(model="tiny", sam_model="tiny", device="cpu",
                          config=EngineConfig(max_new_tokens=16, attention_views=("identity",)))
    side = engine.sam.img_size
    image = np.random.default_rng(4).integers(0, 256, (side, 2 * side, 3), dtype=np.uint8)
    seen = []
    original = engine.sam.segment_points
    monkeypatch.setattr(engine.sam, "segment_points",
                        lambda *a, **k: seen.append(k.get("zoom")) or original(*a, **k))
    for zoom in (True, False):
        seen.clear()
        result = engine.ground(image, "Where is the red cube?",
                               config=replace(engine.config, mode="point", point_zoom=zoom))
        assert seen and set(seen) == {zoom}
        assert all(p.mask.shape == image.shape[:2] for p in result.phrases + result.prompt_phrases)
