"""The simulator's metric depth, intrinsics and object centroids agree with each other."""

import numpy as np
import pytest

from ros_ground.sim import scene as S
from ros_ground.sim._quiet import connect_direct
from ros_ground.sim.camera import FAR
from ros_ground.sim.world import load_table, p
from ros_ground.spatial import back_project, locate

SEEDS = range(40, 46)


@pytest.fixture(scope="module")
def scenes():
    return [S.generate_scene(seed) for seed in SEEDS]


@pytest.fixture(scope="module")
def table_top():
    client = connect_direct(p)
    try:
        return load_table(client)[1]
    finally:
        p.disconnect(physicsClientId=client)


def test_k_is_the_renderers(scenes):
    for scene in scenes:
        fx, fy, cx, cy = scene.intrinsics
        np.testing.assert_array_equal(scene.k, [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])


def test_back_projected_mask_is_the_centroid(scenes):
    """Depth + K (the route a robot takes) against pybullet's own matrices (the truth)."""
    count = 0
    for scene in scenes:
        for obj in scene.objects:
            rows, cols = np.nonzero(obj.mask)
            points = back_project(rows.astype(float), cols.astype(float),
                                  scene.depth[rows, cols].astype(float), scene.k)
            assert np.linalg.norm(points.mean(axis=0) - obj.centroid) < 0.005, obj.name
            # the robust estimate on the true mask is as good (the 0.005 m target)
            estimate = locate(obj.mask, scene.depth, scene.k)
            assert np.linalg.norm(estimate.position - obj.centroid) < 0.005, obj.name
            assert estimate.depth_points > 0.5 * obj.mask.sum()
            count += 1
    assert count >= 15


def test_table_top_is_flat_at_its_height_in_the_world(scenes, table_top):
    """Depth and K put the table's pixels on the plane z = table top in the world frame:
    checks the depth's scale and the focal length without the renderer's matrices."""
    for scene in scenes:
        hit = (scene.depth < FAR * 0.99) & ~np.any([o.mask for o in scene.objects], axis=0)
        rows, cols = np.nonzero(hit)
        points = back_project(rows.astype(float), cols.astype(float),
                              scene.depth[rows, cols].astype(float), scene.k)
        world = scene.camera.world_from_optical() @ np.c_[points, np.ones(len(points))].T
        height = world[2]
        assert np.mean(np.abs(height - table_top) < 0.002) > 0.9  # the top, not its edges
        # nothing above it but objects (a placed object too hidden to keep may show a little)
        assert np.percentile(height, 99.5) < table_top + 0.002


def test_sensor_depth_has_no_return_where_the_renderer_hit_nothing(scenes):
    """The far plane is the renderer's, not a surface: a depth camera sends NaN there
    (the sim camera node and the command eval both read `sensor_depth`)."""
    for scene in scenes:
        depth = scene.sensor_depth()
        far = scene.depth >= FAR * 0.999
        assert far.any() and not far.all()  # the wall strip above the table is in view
        assert np.isnan(depth[far]).all()
        np.testing.assert_array_equal(depth[~far], scene.depth[~far])
        assert scene.depth[far].min() > 0  # the scene's own depth is left as rendered
