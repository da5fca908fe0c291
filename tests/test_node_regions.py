"""grounding_node asked about a region: a Ground goal's box / mask / pixel, and a point clicked
in rviz (`clicked_point`), each answered about the entity there; bad ones refused once, saying
why. The embedded sim models name the objects of a simulated scene, so the answers can be
checked against the scene's truth."""

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import PointStamped  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import EntityProposals  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import (  # noqa: E402
    bbox_to_roi,
    depth_to_image_msg,
    mask_to_msg,
    proposals_to_msg,
)
from ros_ground.nodes.grounding_node import CAMERA  # noqa: E402
from ros_ground.nodes.sim_camera_node import camera_info  # noqa: E402
from ros_ground.results import Proposal  # noqa: E402
from ros_ground.sim.scene import generate_scene  # noqa: E402
from ros_ground.spatial import back_project  # noqa: E402
from tests.test_grounding_node import Running  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.usefixtures("ros")]
SIM = {"model": "sim", "sam_model": "sim", "max_new_tokens": 16}
STAMP = 5


@pytest.fixture(scope="module")
def scene():
    scene = generate_scene(3, width=160, height=120, num_objects=3)
    assert [o.category for o in scene.objects] == ["torus", "duck", "teddy bear"]
    return scene


@pytest.fixture
def node(scene):
    """A sim-model node streaming the scene, with its objects' masks as the frame's proposals."""
    r = Running(**SIM)
    r.regions = _spy_regions(r)
    r.client.stream(scene.rgb, stamp_sec=STAMP)
    header = Header(frame_id="cam")
    header.stamp.sec = STAMP
    proposals = proposals_to_msg([Proposal(i + 1, o.mask, 1.0)
                                  for i, o in enumerate(scene.objects)], header)
    publisher = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    assert r.client.wait(lambda: publisher.publish(proposals) or (
        r.node.frames.latest(CAMERA) is not None and r.node.frames.proposal_count(CAMERA)), 20)
    yield r
    r.close()


def _spy_regions(r):
    """The region masks the engine is asked about, recorded."""
    seen = []
    engine = r.node._engine
    original = engine.generate_region

    def generate_region(image, prompt, region, *args, **kwargs):
        seen.append((prompt, region.mask.copy()))
        return original(image, prompt, region, *args, **kwargs)

    engine.generate_region = generate_region
    return seen


def _ask(r, **fields) -> R:
    """A goal's result, which is also the one response on `response`."""
    start = len(r.client.responses)
    assert r.client.action.wait_for_server(timeout_sec=10)
    handle = r.client.wait_future(r.client.action.send_goal_async(
        Ground.Goal(prompt="What is this?", **fields)))
    response = r.client.wait_future(handle.get_result_async(), 120).result.response
    assert r.client.wait(lambda: len(r.client.responses) > start, 10)
    assert [x.request_id for x in r.client.responses[start:]] == [response.request_id]
    return response


def _click(r, x, y, z=0.0, frame_id="cam") -> R:
    """Publish a clicked point; the one response it gets."""
    if not hasattr(r, "clicks"):
        r.clicks = r.client.node.create_publisher(PointStamped, "clicked_point", RELIABLE)
        assert r.client.wait(lambda: r.clicks.get_subscription_count() > 0, 10)
    start = len(r.client.responses)
    msg = PointStamped()
    msg.header.frame_id = frame_id
    msg.point.x, msg.point.y, msg.point.z = float(x), float(y), float(z)
    r.clicks.publish(msg)
    assert r.client.wait(lambda: len(r.client.responses) > start, 120)
    r.client.wait(lambda: len(r.client.responses) > start + 1, 0.5)
    assert len(r.client.responses) == start + 1, "exactly one response per click"
    return r.client.responses[start]


def _names(response: R, obj, scene) -> bool:
    """The answer names `obj` (its colour and category, e.g. "yellow duck") and no other
    object of the scene."""
    text = response.text.lower()
    return obj.name in text and not any(o.name in text for o in scene.objects if o is not obj)


def _inside(obj) -> tuple[int, int]:
    """(col, row) of the object's pixel nearest the centre of its mask."""
    rows, cols = np.nonzero(obj.mask)
    i = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return int(cols[i]), int(rows[i])


def test_a_goal_with_a_box_mask_or_pixel_is_answered_about_the_entity_there(node, scene):
    torus, duck, bear = scene.objects
    for obj, fields in [(duck, dict(region=bbox_to_roi(duck.bbox))),
                        (bear, dict(region_mask=mask_to_msg(bear.mask))),
                        (torus, dict(zip(("region_x", "region_y"), _inside(torus))))]:
        start = len(node.regions)
        response = _ask(node, **fields)
        assert response.status == R.STATUS_OK, response.error
        assert response.prompt == "What is this?" and response.header.stamp.sec == STAMP
        (prompt, mask), = node.regions[start:]
        np.testing.assert_array_equal(mask, obj.mask)  # the entity's proposal, not the box
        assert _names(response, obj, scene), (obj.name, response.text)


def test_region_token_encoder_is_a_live_parameter_that_names_the_region(node, scene):
    node.set(region_token="encoder")  # config/sim.yaml's setting: the sim region encoder
    for obj in scene.objects:
        response = _ask(node, region_mask=mask_to_msg(obj.mask))
        assert response.status == R.STATUS_OK, response.error
        assert _names(response, obj, scene), (obj.name, response.text)
        assert response.text.lower().rstrip(".") == f"a {obj.name}", response.text


def test_bad_goal_regions_are_refused_once_saying_why(node, scene):
    for fields, words in [(dict(region_x=3), "region_x and region_y"),
                          (dict(region=RegionOfInterest(x_offset=200, y_offset=5, width=10,
                                                        height=10)), "outside"),
                          (dict(region_mask=mask_to_msg(np.ones((10, 10), bool))), "region mask")]:
        response = _ask(node, **fields)
        assert response.status == R.STATUS_BAD_INPUT and words in response.error, response.error
    assert not node.regions  # none reached the model
    assert _ask(node).status == R.STATUS_OK  # no region: the plain question


def test_a_clicked_pixel_asks_region_prompt_about_the_entity_under_it(node, scene):
    node.set(region_prompt="What is that?")
    bear = scene.objects[2]
    response = _click(node, *_inside(bear))
    assert response.status == R.STATUS_OK, response.error
    assert response.prompt == "What is that?" and response.header.frame_id == "cam"
    np.testing.assert_array_equal(node.regions[-1][1], bear.mask)
    assert _names(response, bear, scene), response.text


def _feed_depth(r, scene, with_info=True):
    depth = depth_to_image_msg(scene.sensor_depth(), Header(frame_id="cam"))
    depth.header.stamp.sec = STAMP
    depth_pub = r.client.node.create_publisher(Image, "depth", RELIABLE)
    info_pub = r.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    info = camera_info(scene, depth.header)
    store = r.node.sensors.depth

    def arrived():
        depth_pub.publish(depth)
        if with_info:
            info_pub.publish(info)
        return store.has_depth(CAMERA) and (store.calibration(CAMERA) is not None or not with_info)

    assert r.client.wait(arrived, 20)


def test_a_clicked_3d_point_is_projected_onto_the_entity_it_lies_on(node, scene):
    duck = scene.objects[1]
    col, row = _inside(duck)
    x, y, z = back_project(np.array(row), np.array(col), np.array(scene.depth[row, col]), scene.k)
    response = _click(node, x, y, z)  # no depth yet
    assert response.status == R.STATUS_BAD_INPUT and "no depth frame" in response.error
    _feed_depth(node, scene, with_info=False)
    response = _click(node, x, y, z)
    assert response.status == R.STATUS_BAD_INPUT and "camera_info" in response.error
    _feed_depth(node, scene)
    response = _click(node, x, y, z)
    assert response.status == R.STATUS_OK, response.error
    np.testing.assert_array_equal(node.regions[-1][1], duck.mask)
    assert _names(response, duck, scene), response.text
    response = _click(node, 0.5 * x, 0.5 * y, 0.5 * z)  # on the same ray, in front of it
    assert response.status == R.STATUS_BAD_INPUT and "not on what pixel" in response.error


def test_bad_clicks_are_refused_once_saying_why(scene):
    r = Running(**SIM)
    try:
        response = _click(r, 10, 10)
        assert response.status == R.STATUS_NO_IMAGE  # no frame to click on yet
        r.client.stream(scene.rgb, stamp_sec=STAMP)
        assert r.client.wait(lambda: r.node.frames.latest(CAMERA) is not None, 10)
        for click, words in [((10, 10, 0.0, "map"), "in frame 'map'"),
                             ((10, 10, 0.0, ""), "without a frame_id"),
                             ((160, 10, 0.0, "cam"), "outside"),
                             ((0.1, 0.1, -1.0, "cam"), "not in front of the camera")]:
            response = _click(r, *click)
            assert response.status == R.STATUS_BAD_INPUT and words in response.error, (
                click, response.error)
    finally:
        r.close()
