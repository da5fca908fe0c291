"""grounding_node with registered depth and camera_info: 3-D positions and rviz markers."""

import math
import re
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import depth_to_image_msg, stamp_to_ns  # noqa: E402
from ros_ground.nodes.grounding_node import CAMERA  # noqa: E402
from ros_ground.nodes.sim_camera_node import camera_info  # noqa: E402
from ros_ground.results import GroundedPhrase, GroundingResult  # noqa: E402
from ros_ground.sim.scene import generate_scene  # noqa: E402
from tests.test_grounding_node import Running  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("ros")]


@pytest.fixture(scope="module")
def scene():
    return generate_scene(3, width=160, height=120, num_objects=3)


@pytest.fixture
def node():
    made = Running()
    yield made
    made.close()


def _gt_result(scene):
    """What the engine would return if every mask were exactly the object's visible pixels."""
    def phrases():
        return [GroundedPhrase(o.name, 0, len(o.name), 1.0, o.mask.copy()) for o in scene.objects]

    return GroundingResult(text="objects", phrases=phrases(), model="tiny",
                           image_size=(scene.height, scene.width), prompt="Pick up the mug.",
                           prompt_phrases=phrases(), target=1)


def _depth_msg(scene, encoding, stamp_sec):
    depth = scene.sensor_depth()
    if encoding == "32FC1":
        msg = depth_to_image_msg(depth, Header())
    else:
        mm = np.nan_to_num(depth * 1000.0, nan=0.0).round().astype("<u2")
        msg = Image(height=scene.height, width=scene.width, encoding="16UC1", is_bigendian=0,
                    step=scene.width * 2)
        msg.data = mm.tobytes()
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, "cam"
    return msg


def _feed(r, scene, encoding="32FC1", depth_sec=5, depth_frame="cam", info_size=None,
          info_frame=None, depth_msg=None, edit_info=None, refused=False):
    """Stream the scene's colour frame (stamp 5 s), its depth (`depth_msg` in its place) and
    camera_info to the node (`info_size` (width, height) and `info_frame` in place of the
    camera_info's own, then `edit_info(info)`); waits until the node holds the camera_info's K,
    or with `refused` until it has refused the camera_info."""
    depth_pub = r.client.node.create_publisher(Image, "depth", RELIABLE)
    info_pub = r.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    r.client.stream(scene.rgb, stamp_sec=5)
    if depth_msg is None:
        depth_msg = _depth_msg(scene, encoding, depth_sec)
        depth_msg.header.frame_id = depth_frame
    # a header of its own: a message's header field holds the object given, not a copy
    info = camera_info(scene, Header(stamp=depth_msg.header.stamp, frame_id=depth_msg.header.frame_id))
    if info_size is not None:
        info.width, info.height = info_size
    if info_frame is not None:
        info.header.frame_id = info_frame
    if edit_info is not None:
        edit_info(info)
    sensors = r.node.sensors

    def arrived():
        depth_pub.publish(depth_msg)
        info_pub.publish(info)
        held = (CAMERA in sensors._info_refused if refused
                else sensors.depth.calibration(CAMERA) is not None)
        return r.node.frames.latest(CAMERA) is not None and sensors.depth.has_depth(CAMERA) and held

    assert r.client.wait(arrived, 20)


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_positions_from_depth_match_the_sim_truth(node, scene, encoding, monkeypatch):
    _feed(node, scene, encoding)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    markers = []
    node.client.node.create_subscription(MarkerArray, "markers", markers.append, RELIABLE)
    assert node.client.wait(lambda: node.node.outputs.markers[CAMERA].get_subscription_count() > 0, 10)
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK and response.target == 1
    for phrases in (response.phrases, response.prompt_phrases):
        assert len(phrases) == len(scene.objects)
        for phrase, obj in zip(phrases, scene.objects):
            p = phrase.position
            error = np.linalg.norm(np.array([p.x, p.y, p.z]) - np.array(obj.centroid))
            assert error < 0.01, (obj.name, error)
            assert phrase.depth_points > 0.5 * obj.mask.sum()
            assert 0 < phrase.size.x < 0.5 and 0 < phrase.size.y < 0.5
    assert node.client.wait(lambda: markers, 10)
    found = markers[-1].markers
    assert found[0].action == Marker.DELETEALL
    boxes = [m for m in found if m.type == Marker.CUBE]
    labels = [m for m in found if m.type == Marker.TEXT_VIEW_FACING]
    # the answer's and the command's phrases name the same objects: one box and label each,
    # naming each once
    assert len(boxes) == len(labels) == len(scene.objects)
    assert sum(m.text.startswith("target: ") for m in labels) == 1
    assert all(m.text == o.name for m, o in zip(labels, scene.objects) if not m.text.startswith("target: "))
    assert all(m.header.frame_id == "cam" for m in found)


def test_a_frame_is_located_with_the_camera_info_of_its_time(node, scene, monkeypatch):
    # helper-127: a zoom (K's focal length doubled, same size and frame) published a quarter
    # second after a frame halved that frame's positions, with no position_error
    _feed(node, scene)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    zoomed = camera_info(scene, Header(frame_id="cam"))
    zoomed.header.stamp.sec = 6  # after the frame, stamped 5 s
    zoomed.k = [2 * v if i in (0, 4) else v for i, v in enumerate(zoomed.k)]
    zoomed.p = [2 * v if i in (0, 5) else v for i, v in enumerate(zoomed.p)]
    info_pub = node.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    store = node.node.sensors.depth

    def zoomed_held():
        info_pub.publish(zoomed)
        return store.calibration(CAMERA)[0][0, 0] == zoomed.p[0]

    assert node.client.wait(zoomed_held, 20)
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK and not response.position_error
    for phrase, obj in zip(response.phrases, scene.objects):
        p = phrase.position
        assert np.linalg.norm(np.array([p.x, p.y, p.z]) - np.array(obj.centroid)) < 0.01, obj.name


def test_without_depth_the_response_says_where_it_listened(node, scene, monkeypatch):
    node.client.stream(scene.rgb, stamp_sec=5)
    assert node.client.wait(lambda: node.node.frames.latest(CAMERA) is not None, 20)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert all(p.depth_points == 0 for p in response.phrases)
    assert re.fullmatch(r"no depth frame received on '/\S*depth'", response.position_error), \
        response.position_error


def test_depth_outside_the_tolerance_leaves_positions_unset(node, scene, monkeypatch):
    _feed(node, scene, depth_sec=9)  # 4 s after the colour frame; tolerance 0.05 s
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert all(p.depth_points == 0 and math.isnan(p.position.z) for p in response.phrases)
    assert response.position_error == ("no depth frame within depth_tolerance_s of the image "
                                       "(the nearest is stamped 4.000 s after it)")
    node.set(depth_tolerance_s=5.0)
    response = node.ask("Pick up the mug.")
    assert all(p.depth_points > 0 for p in response.phrases)
    assert response.position_error == ""


def _ask_while_depth_streams(node, scene, monkeypatch):
    """The response to "Pick up the mug." while 30 newer depth frames arrive during grounding
    (the newest 8 are kept with proposal_max_age_s 0): the frame's own depth is gone by the end."""
    later = _depth_msg(scene, "32FC1", 6)
    depth = node.node.sensors.depth

    def ground_while_depth_streams(*args, **kwargs):
        for i in range(30):
            depth.add_depth(CAMERA, (6 + i) * 10**9, later)
        return _gt_result(scene)

    monkeypatch.setattr(node.node._engine, "ground", ground_while_depth_streams)
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    return response


def test_the_grounded_frames_depth_is_kept_while_the_model_runs(node, scene, monkeypatch):
    # a 30 Hz depth stream moved the store past the frame's depth during a request of seconds
    # (the newest 8 are kept with proposal_max_age_s 0), and the answer lost its positions
    node.set(proposal_max_age_s=0.0)
    _feed(node, scene)
    response = _ask_while_depth_streams(node, scene, monkeypatch)
    assert node.node.sensors.depth.depth_near(CAMERA, 5 * 10**9, 10**8) is None  # gone by now
    assert all(p.depth_points > 0 for p in response.phrases)


def _warnings(node, monkeypatch) -> list:
    """The node's warnings from now on, in a list (its other logs pass through)."""
    said = []
    logger = node.node.get_logger()
    monkeypatch.setattr(node.node, "get_logger", lambda: type("Log", (), {
        "warning": lambda self, text, **kw: said.append(text),
        "info": lambda self, *a, **kw: logger.info(*a, **kw),
        "error": lambda self, *a, **kw: logger.error(*a, **kw)})())
    return said


def test_depth_in_another_frame_than_the_image_is_refused(node, scene, monkeypatch):
    # the depth camera's own frame (depth/image_rect_raw) at the colour size is not registered
    # to the image: its positions would be wrong (92 cm seen) with only a line in the log, and
    # a robot reads the response
    _feed(node, scene, depth_frame="camera_depth_optical_frame")
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK and _unlocated(response)
    assert response.position_error.startswith(
        "depth is in frame 'camera_depth_optical_frame', the image in 'cam': publish depth "
        "registered to the colour image"), response.position_error
    assert "aligned_depth_to_color" in response.position_error


def test_real_models_answer_with_positions(node, scene):
    _feed(node, scene)
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert response.prompt == "Pick up the mug."
    located = [p for p in list(response.phrases) + list(response.prompt_phrases)
               if p.depth_points > 0]
    assert all(0.1 < p.position.z < 5.0 for p in located)


def test_sim_camera_publishes_registered_depth_and_centroids(scene):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from ros_ground_msgs.msg import SimGroundTruth

    from ros_ground.image_codec import image_to_depth
    from ros_ground.nodes.conversions import camera_info_to_k
    from ros_ground.nodes.sim_camera_node import SimCameraNode

    sim = SimCameraNode(namespace="/depthsim", parameter_overrides=[
        Parameter("seed", value=3), Parameter("width", value=160), Parameter("height", value=120),
        Parameter("num_objects", value=3), Parameter("rate_hz", value=20.0)])
    listener = rclpy.create_node("depth_listener", namespace="/depthsim")
    got = {"depth": [], "camera_info": [], "ground_truth": []}
    listener.create_subscription(Image, "depth", got["depth"].append, qos_profile_sensor_data)
    listener.create_subscription(CameraInfo, "camera_info", got["camera_info"].append,
                                 qos_profile_sensor_data)
    listener.create_subscription(SimGroundTruth, "ground_truth", got["ground_truth"].append,
                                 RELIABLE)
    executor = SingleThreadedExecutor()
    executor.add_node(sim)
    executor.add_node(listener)
    try:
        for _ in range(400):
            executor.spin_once(timeout_sec=0.05)
            if all(got.values()):
                break
        assert all(got.values()), {k: len(v) for k, v in got.items()}
        depth = image_to_depth(got["depth"][0])
        assert got["depth"][0].encoding == "32FC1"
        hit = np.isfinite(depth)
        assert hit.any() and not hit.all()  # background (nothing hit) is NaN, not the far plane
        np.testing.assert_allclose(depth[hit], scene.depth[hit], rtol=1e-6)
        np.testing.assert_allclose(camera_info_to_k(got["camera_info"][0]), scene.k)
        truth = got["ground_truth"][0]
        assert len(truth.centroids) == len(scene.objects)
        for c, obj in zip(truth.centroids, scene.objects):
            assert (c.x, c.y, c.z) == pytest.approx(obj.centroid)
    finally:
        executor.shutdown()
        listener.destroy_node()
        sim.destroy_node()


def test_camera_info_of_another_resolution_gives_no_positions(node, scene, monkeypatch):
    # a camera_info of 640x480 for a 320x240 image is not used as it is: every position would
    # be off by the factor of two, without a word
    _feed(node, scene, info_size=(2 * scene.width, 2 * scene.height))
    said = _warnings(node, monkeypatch)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert all(p.depth_points == 0 and math.isnan(p.position.z) for p in response.phrases)
    assert any(f"camera_info is for {2 * scene.width}x{2 * scene.height}, the depth and image are "
               f"{scene.width}x{scene.height}" in t for t in said), said
    # the response says so too: a robot reading it learns why its target has no position
    assert response.position_error.startswith(
        f"camera_info is for {2 * scene.width}x{2 * scene.height}, the depth and image are ")
    # a binned camera's info at full size is another way to meet this: the fix is said too
    assert response.position_error.endswith("or the full sensor's with binning_x/binning_y and roi "
                                            "saying how the image was cut")


def _scale_k(info, by: float, shift: tuple[float, float] = (0.0, 0.0)) -> None:
    """K and P of `info` for a `by` times larger image whose principal point is `shift` pixels
    further right and down."""
    k = np.array(info.k).reshape(3, 3)
    k[:2] *= by
    k[:2, 2] += shift
    p = np.array(info.p).reshape(3, 4)
    p[:, :3] = k
    info.k, info.p = k.ravel().tolist(), p.ravel().tolist()


def _unlocated(response) -> bool:
    return all(p.depth_points == 0 and math.isnan(p.position.z)
               for p in (*response.phrases, *response.prompt_phrases))


def test_a_camera_info_without_width_and_height_is_refused(node, scene, monkeypatch):
    # CameraInfo()'s width and height are 0 (a hand-written static publisher may leave them):
    # its K, here of an image twice the size, cannot be checked against the image, and used as
    # it is every position would be off by the ratio with an empty position_error
    def unsized(info):
        info.width = info.height = 0
        _scale_k(info, 2.0)

    _feed(node, scene, edit_info=unsized, refused=True)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK and _unlocated(response)
    assert response.position_error.startswith("the camera_info received was ignored: "), \
        response.position_error
    assert "set width and height to the image's resolution" in response.position_error


@pytest.mark.parametrize("how", ["binned", "roi", "binned roi"])
def test_a_binned_or_roi_camera_info_gives_the_published_images_positions(node, scene, monkeypatch, how):
    # CameraInfo's K is the full sensor's; binning and roi say how the published image was cut
    # from it (image_geometry's reading): refused before as "for 320x240" of a 160x120 image
    binning = 2 if "binned" in how else 1
    offset = (24, 10) if "roi" in how else (0, 0)

    def cut(info):
        info.width, info.height = binning * scene.width + 40, binning * scene.height + 30
        info.binning_x = info.binning_y = binning
        if "roi" in how:
            info.roi.x_offset, info.roi.y_offset = offset
            info.roi.width, info.roi.height = binning * scene.width, binning * scene.height
        else:  # the full sensor, cut by binning alone
            info.width, info.height = binning * scene.width, binning * scene.height
        _scale_k(info, binning, offset)

    _feed(node, scene, edit_info=cut)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.position_error == "", response.position_error
    for phrase, obj in zip(response.phrases, scene.objects):
        p = phrase.position
        assert np.linalg.norm(np.array([p.x, p.y, p.z]) - np.array(obj.centroid)) < 0.01, obj.name


def test_depth_of_another_size_is_blamed_not_the_camera_info(node, scene, monkeypatch):
    # a 160x120 depth beside a right 320x240 camera_info is the depth's fault: the error must
    # not send the user to the camera_info
    half = depth_to_image_msg(scene.sensor_depth()[::2, ::2].copy(), Header(frame_id="cam"))
    half.header.stamp.sec = 5
    _feed(node, scene, depth_msg=half)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert response.position_error.startswith(
        f"depth is {scene.width // 2}x{scene.height // 2}, the image {scene.width}x{scene.height}: "
        "publish depth registered to the colour image"), response.position_error


@pytest.mark.parametrize("wrong", ["camera_info", "depth"])
def test_a_size_mismatch_is_reported_after_the_depth_stream_moved_on(node, scene, monkeypatch, wrong):
    # the pair's size mismatch was found before the model ran and dropped; looked up again
    # after it, the depth was gone and the answer blamed depth_tolerance_s for equal stamps
    node.set(proposal_max_age_s=0.0)
    if wrong == "camera_info":
        _feed(node, scene, info_size=(2 * scene.width, 2 * scene.height))
        expected = f"camera_info is for {2 * scene.width}x{2 * scene.height}, the depth and image"
    else:
        half = depth_to_image_msg(scene.sensor_depth()[::2, ::2].copy(), Header(frame_id="cam"))
        half.header.stamp.sec = 5
        _feed(node, scene, depth_msg=half)
        expected = f"depth is {scene.width // 2}x{scene.height // 2}, the image"
    response = _ask_while_depth_streams(node, scene, monkeypatch)
    assert response.position_error.startswith(expected), response.position_error


def test_camera_info_in_another_frame_is_refused(node, scene, monkeypatch):
    # another camera's camera_info (the depth sensor's) has another K: refused in the response,
    # not only warned in the log
    _feed(node, scene, info_frame="camera_depth_optical_frame")
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK and _unlocated(response)
    assert response.position_error.startswith(
        "camera_info is in frame 'camera_depth_optical_frame', the image in 'cam': publish the "
        "colour camera's camera_info"), response.position_error


@pytest.mark.parametrize("empty", ["depth", "camera_info", "both", "a leading slash"])
def test_depth_and_camera_info_without_a_frame_id_are_used(node, scene, monkeypatch, empty):
    # some drivers leave frame_id empty: nothing says they are another camera's; and ROS 1's
    # "/cam" is the image's "cam" (tf2 drops the slash: helper-126)
    if empty == "a leading slash":
        _feed(node, scene, depth_frame="/cam", info_frame="/cam")
    else:
        _feed(node, scene, depth_frame="" if empty != "camera_info" else "cam",
              info_frame="" if empty != "depth" else "cam")
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.position_error == "", response.position_error
    assert all(p.depth_points > 0 for p in response.phrases)


def test_sim_camera_warns_of_named_objects_it_could_not_place(monkeypatch):
    from rclpy.parameter import Parameter

    from ros_ground.nodes.sim_camera_node import SimCameraNode

    said = []

    class Logger:
        def __getattr__(self, level):
            return lambda message, **_: said.append((level, message))

    monkeypatch.setattr(SimCameraNode, "get_logger", lambda self: Logger())
    names = "red mug, blue mug, green mug, red cube, duck, tray, jenga block, soccer ball, " \
            "teddy bear, red torus, purple sphere"
    sim = SimCameraNode(namespace="/roomsim", parameter_overrides=[
        Parameter("seed", value=1), Parameter("objects", value=names)])
    try:
        warned = [m for level, m in said if level in ("warning", "warn")]
        assert any("no room on the table for" in m and "of 11 objects" in m for m in warned), said
        assert len(sim.scene.objects) + len(sim.scene.dropped) + len(sim.scene.unplaced) == 11
    finally:
        sim.destroy_node()


def test_depth_with_no_valid_return_under_a_mask_is_named(node, scene, monkeypatch):
    # an all-NaN (or all-zero 16UC1) depth leaves every position NaN: `position_error` must say
    # why, since empty is defined as "located from the depth"
    blank = depth_to_image_msg(np.full((scene.height, scene.width), np.nan, np.float32),
                               Header(frame_id="cam"))
    blank.header.stamp.sec = 5
    _feed(node, scene, depth_msg=blank)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert all(p.depth_points == 0 for p in response.phrases)
    first = scene.objects[0].name
    assert response.position_error.startswith(
        "no valid depth (0, NaN, inf or negative; a black, shiny or transparent surface may "
        f"return none) inside the mask of {first!r}"), \
        response.position_error


def test_a_camera_info_that_was_ignored_is_named_not_missing(node, scene, monkeypatch):
    # an uncalibrated driver's camera_info (K all zero) is named as refused, not as "no
    # camera_info received", so the user checks the calibration rather than the topic
    info_pub = node.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    depth_pub = node.client.node.create_publisher(Image, "depth", RELIABLE)
    node.client.stream(scene.rgb, stamp_sec=5)
    uncalibrated = camera_info(scene, Header(frame_id="cam"))
    uncalibrated.k = [0.0] * 9
    depth = _depth_msg(scene, "32FC1", 5)
    sensors = node.node.sensors

    def arrived():
        depth_pub.publish(depth)
        info_pub.publish(uncalibrated)
        return (CAMERA in sensors._info_refused and sensors.depth.has_depth(CAMERA)
                and node.node.frames.latest(CAMERA) is not None)

    assert node.client.wait(arrived, 20)
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))
    response = node.ask("Pick up the mug.")
    assert response.status == response.STATUS_OK
    assert response.position_error.startswith("the camera_info received was ignored: "), \
        response.position_error


def test_depth_over_compressed_depth_is_located_as_raw_depth(scene, monkeypatch):
    # a driver sending depth over Wi-Fi as image_transport's compressedDepth: with
    # depth_transport compressedDepth its 16-bit PNG is read on depth/compressedDepth, and every
    # position is the raw depth's
    import struct

    import cv2
    from sensor_msgs.msg import CompressedImage

    r = Running(depth_transport="compressedDepth")
    try:
        mm = np.nan_to_num(scene.sensor_depth() * 1000.0, nan=0.0).round().astype(np.uint16)
        msg = CompressedImage(format="16UC1; compressedDepth png", data=struct.pack(
            "<iff", 0, 0.0, 0.0) + cv2.imencode(".png", mm)[1].tobytes())
        msg.header.stamp.sec, msg.header.frame_id = 5, "cam"
        pub = r.client.node.create_publisher(CompressedImage, "depth/compressedDepth", RELIABLE)
        info_pub = r.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
        r.client.stream(scene.rgb, stamp_sec=5)
        info = camera_info(scene, msg.header)

        def arrived():
            pub.publish(msg)
            info_pub.publish(info)
            return r.node.frames.latest(CAMERA) is not None and r.node.sensors.depth.has_depth(CAMERA)

        assert r.client.wait(arrived, 20)
        monkeypatch.setattr(r.node._engine, "ground", lambda *a, **k: _gt_result(scene))
        response = r.ask("Pick up the mug.")
        assert response.position_error == "", response.position_error
        for phrase, obj in zip(response.phrases, scene.objects):
            p = phrase.position
            assert np.linalg.norm(np.array([p.x, p.y, p.z]) - np.array(obj.centroid)) < 0.01
    finally:
        r.close()


def test_a_camera_info_refused_after_a_good_one_leaves_no_k_in_use(node, scene, monkeypatch):
    # after a valid camera_info, one with K all zero (or NaN) drops the earlier K (it may be
    # another publisher's): no positions from it, and position_error says why
    info_pub = node.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    depth_pub = node.client.node.create_publisher(Image, "depth", RELIABLE)
    node.client.stream(scene.rgb, stamp_sec=5)
    good = camera_info(scene, Header(frame_id="cam"))
    bad = camera_info(scene, Header(frame_id="cam"))
    bad.k = [float("nan")] * 9
    depth = _depth_msg(scene, "32FC1", 5)
    sensors = node.node.sensors
    monkeypatch.setattr(node.node._engine, "ground", lambda *a, **k: _gt_result(scene))

    def sent(info, refused):
        def arrived():
            depth_pub.publish(depth)
            info_pub.publish(info)
            return ((CAMERA in sensors._info_refused) == refused and sensors.depth.has_depth(CAMERA)
                    and node.node.frames.latest(CAMERA) is not None)
        assert node.client.wait(arrived, 20)
        return node.ask("Pick up the mug.")

    assert sent(good, False).position_error == ""
    ignored = sent(bad, True)
    assert ignored.position_error.startswith("the camera_info received was ignored: "), \
        ignored.position_error
    assert sent(good, False).position_error == ""  # a valid one again


def test_unstamped_frames_are_paired_by_the_time_they_arrive(node, scene, monkeypatch):
    # a driver that stamps nothing gives every frame stamp 0: keyed by stamp, SAM would reuse
    # the first frame's embedding for every later one and depth would pair with the oldest
    # zero-stamped depth frame, so such frames are keyed and paired by arrival
    node.set(depth_tolerance_s=5.0)
    keys = []

    def ground(*args, **kwargs):
        keys.append(kwargs.get("image_key"))
        return _gt_result(scene)

    monkeypatch.setattr(node.node._engine, "ground", ground)
    depth_pub = node.client.node.create_publisher(Image, "depth", RELIABLE)
    info_pub = node.client.node.create_publisher(CameraInfo, "camera_info", RELIABLE)
    blank = depth_to_image_msg(np.full((scene.height, scene.width), np.nan, np.float32),
                               Header(frame_id="cam"))
    good = _depth_msg(scene, "32FC1", 0)
    assert good.header.stamp.sec == 0 and good.header.stamp.nanosec == 0
    depth_pub.publish(blank)  # the oldest, unstamped: never the one used
    info_pub.publish(camera_info(scene, Header(frame_id="cam")))
    assert node.client.wait(lambda: node.node.sensors.depth.has_depth(CAMERA), 20)
    time.sleep(0.3)
    depth_pub.publish(good)
    node.client.stream(scene.rgb, stamp_sec=0)
    assert node.client.wait(lambda: node.node.frames.latest(CAMERA) is not None
                            and node.node.sensors.depth.calibration(CAMERA) is not None, 20)
    first = node.ask("Pick up the mug.")
    assert first.status == first.STATUS_OK
    assert first.header.stamp.sec > 0  # stamped when it arrived, as the response says
    assert all(p.depth_points > 0 for p in first.phrases), first.position_error
    assert keys[-1] is not None and keys[-1][1] > 0
    node.client.stream(scene.rgb[::-1].copy(), stamp_sec=0)  # another unstamped frame
    assert node.client.wait(lambda: stamp_to_ns(node.node.frames.latest(CAMERA).header.stamp)
                            > stamp_to_ns(first.header.stamp), 20)
    node.ask("Pick up the mug.")
    assert keys[-1] != keys[-2]  # another frame: SAM embeds it anew
