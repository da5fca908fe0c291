"""Scene ranges: the classic scenes lie inside the training ranges, the ood ranges outside them,
and rendered scenes honour the ranges they were drawn from."""

import math

import numpy as np
import pytest

from ros_ground.sim import scene as S
from ros_ground.sim.assets import ASSETS
from ros_ground.sim.language import COLORS
from ros_ground.sim.ranges import CLASSIC_RANGES, OOD_RANGES, TRAINING_RANGES, scene_set_ranges


def _camera_angles(scene) -> tuple[float, float]:
    """(distance to the look-at point in m, elevation above the table plane in degrees)."""
    offset = np.array(scene.camera.eye) - np.array(scene.camera.target)
    distance = float(np.linalg.norm(offset))
    return distance, math.degrees(math.asin(offset[2] / distance))


def _inside(value: float, bounds: tuple[float, float], slack: float = 1e-6) -> bool:
    return bounds[0] - slack <= value <= bounds[1] + slack


def test_classic_scenes_lie_inside_the_training_ranges():
    assert CLASSIC_RANGES.within(TRAINING_RANGES)
    assert CLASSIC_RANGES.axes_outside(TRAINING_RANGES) == []
    assert not TRAINING_RANGES.within(CLASSIC_RANGES)  # training does randomise


def test_ood_settings_lie_outside_the_training_ranges_on_at_least_two_axes():
    outside = OOD_RANGES.axes_outside(TRAINING_RANGES)
    # a camera lower and farther than any training pose, a resolution never trained on,
    # colours held out of training
    assert {"distance", "elevation_deg", "width", "aspect", "palette"} <= set(outside)
    assert OOD_RANGES.distance[0] > TRAINING_RANGES.distance[1]
    assert OOD_RANGES.elevation_deg[1] < TRAINING_RANGES.elevation_deg[0]
    assert not OOD_RANGES.within(TRAINING_RANGES)


def test_held_out_shades_are_never_painted_in_training():
    for color in COLORS:
        train_lo, train_hi = TRAINING_RANGES.paint_box(color)
        ood_lo, ood_hi = OOD_RANGES.paint_box(color)
        assert np.any((ood_hi < train_lo) | (ood_lo > train_hi)), color


def test_axes_outside_sees_a_single_overlap():
    """An ood set that shares one value with training on an axis is not outside on that axis."""
    import dataclasses

    touching = dataclasses.replace(OOD_RANGES, distance=(TRAINING_RANGES.distance[1], 1.2))
    assert "distance" not in touching.axes_outside(TRAINING_RANGES)
    with pytest.raises(ValueError):
        dataclasses.replace(OOD_RANGES, distance=(1.2, 1.0))


def test_training_axes_bring_just_those_axes_inside():
    """`SET:AXIS,...` (the per-axis diagnostic) moves exactly the axes named into training."""
    pose = scene_set_ranges("ood:distance,elevation_deg")
    assert (pose.distance, pose.elevation_deg) == (TRAINING_RANGES.distance, TRAINING_RANGES.elevation_deg)
    assert set(OOD_RANGES.axes_outside(TRAINING_RANGES)) - set(pose.axes_outside(TRAINING_RANGES)) == {
        "distance", "elevation_deg"}
    paint = scene_set_ranges("ood:palette")
    assert paint.palette is None and paint.color_jitter == TRAINING_RANGES.color_jitter
    assert "palette" not in paint.axes_outside(TRAINING_RANGES)
    assert scene_set_ranges("ood") is OOD_RANGES
    # every axis outside moved in: the ood set becomes the training ranges themselves
    outside = OOD_RANGES.axes_outside(TRAINING_RANGES)
    assert scene_set_ranges("ood:" + ",".join(outside)) == TRAINING_RANGES
    for bad in ("ood:", "ood:height", "ood:width,width", "ood:color_jitter", "train:width"):
        with pytest.raises(ValueError, match="training axes|scene set"):
            scene_set_ranges(bad)


@pytest.mark.parametrize("ranges,seeds", [(TRAINING_RANGES, range(100_000, 100_006)),
                                          (OOD_RANGES, range(0, 6))])
def test_rendered_scenes_honour_their_ranges(ranges, seeds):
    for seed in seeds:
        scene = S.generate_scene(seed, ranges=ranges)
        distance, elevation = _camera_angles(scene)
        assert _inside(distance, ranges.distance) and _inside(elevation, ranges.elevation_deg)
        assert _inside(scene.camera.fov_deg, ranges.fov_deg)
        assert _inside(scene.width, ranges.width)
        assert _inside(scene.width / scene.height, ranges.aspect, slack=0.01)
        assert _inside(scene.camera.light_ambient, ranges.light_ambient)
        assert scene.table_look.texture in ranges.table_textures
        assert all(_inside(t, ranges.table_tint) for t in scene.table_look.tint)
        for placement in scene.layout:
            assert _inside(placement.scale, ranges.object_scale)
            if ASSETS[placement.category].recolor:
                lo, hi = ranges.paint_box(placement.color)
                assert np.all(lo - 1e-6 <= placement.rgb) and np.all(np.array(placement.rgb) <= hi + 1e-6)
        assert 1 <= len(scene.objects) <= ranges.num_objects[1]


def test_randomised_scenes_are_deterministic_and_vary():
    a = S.generate_scene(100_003, ranges=TRAINING_RANGES)
    b = S.generate_scene(100_003, ranges=TRAINING_RANGES)
    assert a.rgb.tobytes() == b.rgb.tobytes() and a.description == b.description
    sizes = {S.generate_scene(s, ranges=TRAINING_RANGES).rgb.shape for s in range(100_000, 100_004)}
    assert len(sizes) > 1  # image size and aspect are drawn per scene
    # an explicit size wins over the drawn one
    assert S.generate_scene(100_003, 200, 150, ranges=TRAINING_RANGES).rgb.shape == (150, 200, 3)


def test_rebuilt_world_renders_the_randomised_scene():
    """Table look, object scale and paint travel with the scene: rebuilding from its layout and
    camera gives the same pixels (what bags and the sim camera node rely on)."""
    scene = S.generate_scene(100_001, ranges=TRAINING_RANGES)
    again = S.render_layout(scene.layout, scene.camera, scene.width, scene.height, seed=scene.seed,
                            table_look=scene.table_look)
    assert again.rgb.tobytes() == scene.rgb.tobytes()
    assert [o.name for o in again.objects] == [o.name for o in scene.objects]
