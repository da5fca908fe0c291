"""grounding_node's camera inputs: stale frames, compressed transport, image_qos auto, the
silence warning, and several cameras served by one model."""

import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from ros_ground.nodes.camera_input import CameraInput  # noqa: E402
from ros_ground.nodes.conversions import rgb_to_image_msg  # noqa: E402
from tests.ros_helpers import Client, random_rgb  # noqa: E402
from tests.test_grounding_node import _frame, _stream, running  # noqa: E402, F401

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("ros")]


def test_a_camera_that_stops_gets_no_image_saying_how_old_its_frame_is(running):  # noqa: F811
    r = running(max_frame_age_s=0.5)
    _stream(r)
    assert r.ask().status == R.STATUS_OK
    r.client._frame = None  # the camera stops
    time.sleep(1.5)
    answer = r.ask()
    assert answer.status == R.STATUS_NO_IMAGE
    assert "received" in answer.error and "s ago" in answer.error, answer.error
    assert answer.error.endswith("1 publisher(s) on it: is the camera still publishing?")
    age = float(answer.error.split("received ")[1].split(" s ago")[0])
    assert 1.0 <= age < 10.0  # slept 1.5 s; the bound leaves room for a loaded machine
    # its header names the frame found too old (GroundedResponse.msg)
    assert (answer.header.stamp.sec, answer.header.frame_id) == (5, "cam")
    _stream(r, stamp_sec=9)  # it comes back
    assert r.client.wait(lambda: r.node.sensors.inputs[""].age_s() < 0.3, 10)
    assert r.ask().status == R.STATUS_OK
    r.client._frame = None
    time.sleep(1.0)
    r.set(max_frame_age_s=0.0)  # no limit: the old frame is grounded
    assert r.ask().status == R.STATUS_OK


def test_frames_that_arrive_further_apart_than_max_frame_age_s_are_said_to(running):  # noqa: F811
    # a camera whose frames reach the node 2 s apart still publishes: the refusal says how far
    # apart they arrive, and what to change, rather than asking whether it publishes
    r = running(max_frame_age_s=0.4)
    pub = r.client.node.create_publisher(Image, "image", qos_profile_sensor_data)
    assert r.client.wait(lambda: pub.get_subscription_count() > 0, 10)
    for sec in range(1, 5):
        msg = rgb_to_image_msg(random_rgb(48, 64))
        msg.header.stamp.sec = sec
        pub.publish(msg)
        time.sleep(0.8)
    answer = r.ask()
    assert answer.status == R.STATUS_NO_IMAGE
    assert "its frames reach this node 0.8 s apart lately: raise max_frame_age_s" in answer.error, \
        answer.error


def test_compressed_transport_takes_jpeg_on_image_compressed(running):  # noqa: F811
    r = running(image_transport="compressed")
    assert r.node.sensors.inputs[""].topic == f"{r.ns}/image/compressed"
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (255, 0, 0)
    msg = CompressedImage(format="rgb8; jpeg compressed bgr8",
                          data=cv2.imencode(".jpg", rgb[:, :, ::-1])[1].tobytes())
    msg.header.frame_id = "jpeg_cam"
    publisher = r.client.node.create_publisher(CompressedImage, "image/compressed",
                                               qos_profile_sensor_data)
    r.client.stream(random_rgb(48, 64))  # raw frames on `image` are not this node's
    time.sleep(1.0)
    assert _frame(r) is None
    assert r.client.wait(lambda: publisher.publish(msg) or _frame(r) is not None, 10)
    decoded = _frame(r).rgb
    assert decoded.shape == (48, 64, 3)
    assert decoded[:, :30, 0].mean() > 200 and decoded[:, 34:, 0].mean() < 50  # red half, RGB
    answer = r.ask()
    assert answer.status == R.STATUS_OK and answer.header.frame_id == "jpeg_cam"


def test_image_qos_auto_follows_the_publisher_and_silence_is_explained(running):  # noqa: F811
    r = running(image_qos="auto")
    source = r.node.sensors.inputs[""]
    # the helper's camera (best effort, silent so far) is there from the start: auto follows it
    assert r.client.wait(lambda: source.reliability == "best_effort", 10)
    # it goes and a reliable camera comes: auto follows that one (at a check: a best-effort
    # reader matches it too, so DDS reports nothing), whose frames arrive
    r.client.node.destroy_publisher(r.client.image_pub)
    reliable = r.client.node.create_publisher(
        Image, "image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    assert r.client.wait(lambda: source.reliability == "reliable", 10)
    msg = rgb_to_image_msg(random_rgb(48, 64))
    assert r.client.wait(lambda: reliable.publish(msg) or _frame(r) is not None, 10)
    r.client.node.destroy_publisher(reliable)
    r.client.image_pub = r.client.node.create_publisher(Image, "image", qos_profile_sensor_data)
    r.client.stream(random_rgb(48, 64))  # best effort again
    assert r.client.wait(lambda: source.reliability == "best_effort", 10)
    # the new subscription matches the camera a moment after it is made: until its first frame
    # the newest one is the reliable publisher's, which max_frame_age_s rightly calls stale
    # (the helper's camera keeps publishing, so a frame after this one comes)
    old_frame = source.last_received_ns
    assert r.client.wait(lambda: source.last_received_ns != old_frame, 10)
    assert r.ask().status == R.STATUS_OK


def test_image_qos_auto_follows_a_later_best_effort_camera_without_waiting_for_a_check():
    # no check timer here: only DDS's incompatible-QoS report can make the switch, as it does
    # in the nodes when a camera driver starts after them (so it loses milliseconds of frames,
    # not up to a check period)
    reader = rclpy.create_node("auto_reader")
    camera = rclpy.create_node("auto_camera")
    executor = SingleThreadedExecutor()
    received = []
    try:
        source = CameraInput(reader, "auto_image", received.append, qos_name="auto")
        assert source.reliability == "reliable"  # nobody publishes yet
        publisher = camera.create_publisher(Image, "auto_image", qos_profile_sensor_data)
        executor.add_node(reader)
        executor.add_node(camera)
        msg = rgb_to_image_msg(random_rgb(8, 8))
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            publisher.publish(msg)
            executor.spin_once(timeout_sec=0.05)
        assert source.reliability == "best_effort"
        assert received and received[0].width == 8
    finally:
        executor.shutdown()
        reader.destroy_node()
        camera.destroy_node()


def test_a_closed_image_input_stays_closed():
    # a check or QoS event already queued when the node deactivates must not subscribe again
    reader = rclpy.create_node("closed_reader")
    camera = rclpy.create_node("closed_camera")
    try:
        source = CameraInput(reader, "closed_image", lambda msg: None, qos_name="auto")
        assert len(list(reader.subscriptions)) == 1
        source.close()
        camera.create_publisher(Image, "closed_image", qos_profile_sensor_data)
        deadline = time.monotonic() + 10
        while source.publishers() != ["best_effort"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.publishers() == ["best_effort"]  # auto would follow it, were it open
        source.check()
        source._on_incompatible(None)
        assert source.reliability == "reliable" and not list(reader.subscriptions)
    finally:
        reader.destroy_node()
        camera.destroy_node()


def test_silence_warning_names_both_ends_qos(running):  # noqa: F811
    r = running(image_qos="best_effort")
    source = r.node.sensors.inputs[""]
    source.warn_after_s = 0.0
    # the helper's best-effort publisher exists but sends nothing: a stalled driver
    assert r.client.wait(lambda: source.publishers() == ["best_effort"], 10)
    assert "same QoS at both ends" in source.check()
    r.client.node.destroy_publisher(r.client.image_pub)
    assert r.client.wait(lambda: not source.publishers(), 10)
    assert source.check() is None  # nobody publishes: nothing to explain
    # a reliable camera that never reaches this best-effort reader
    r.client.node.create_publisher(Image, "image",
                                   QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    assert r.client.wait(lambda: source.publishers() == ["reliable"], 10)
    warning = source.check()
    assert "publisher QoS reliable differs from this subscription's best_effort" in warning


def test_silence_counts_from_when_a_publisher_appears(running):  # noqa: F811
    # a driver started after the node, advertising a second before its first frame, is not
    # warned "no frame received for 16 s" as if counted from the node's start
    r = running(image_qos="best_effort")
    source = r.node.sensors.inputs[""]
    r.client.node.destroy_publisher(r.client.image_pub)
    assert r.client.wait(lambda: not source.publishers(), 10)
    source.warn_after_s = 3.0
    time.sleep(3.5)  # up and silent longer than warn_after_s, with nobody publishing
    assert source.check() is None
    r.client.node.create_publisher(Image, "image",
                                   QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert r.client.wait(lambda: source.publishers() == ["best_effort"], 10)
    assert source.check() is None
    time.sleep(3.2)
    assert "no frame received for 3 s" in source.check()


def _left_and_right(r, left_frame: str, right_frame: str):
    """Clients of a two-camera node's `left` and `right` cameras, each streaming a frame in the
    frame_id given, once the node holds both."""
    left, right = Client(namespace=f"{r.ns}/left"), Client(namespace=f"{r.ns}/right")
    left.stream(random_rgb(48, 64), frame_id=left_frame)
    right.stream(random_rgb(40, 56), frame_id=right_frame)
    assert left.wait(lambda: r.node.frames.latest("left") and r.node.frames.latest("right"), 10)
    return left, right


def test_several_cameras_have_their_own_topics(running):  # noqa: F811
    r = running(cameras=["left", "right"])
    left, right = _left_and_right(r, "left_optical", "right_optical")
    try:
        left.command("Describe the image.")
        right.command("What is on the table?")
        assert left.wait(lambda: left.responses and right.responses, 60)
        assert [x.header.frame_id for x in left.responses] == ["left_optical"]
        assert [x.header.frame_id for x in right.responses] == ["right_optical"]
        assert right.responses[0].prompt == "What is on the table?"
        assert not r.client.responses  # nothing on the unnamed camera's topic
    finally:
        left.close()
        right.close()


def test_reconfigured_with_fewer_cameras_the_node_forgets_the_others(running):  # noqa: F811
    from rclpy.parameter import Parameter

    r = running(cameras=["left", "right"])
    assert sorted(r.node.sensors.inputs) == ["left", "right"]
    for transition in ("deactivate", "cleanup"):
        assert getattr(r.node, f"trigger_{transition}")().name == "SUCCESS"
    r.node.set_parameters([Parameter("cameras", value=["left"])])
    for transition in ("configure", "activate"):
        assert getattr(r.node, f"trigger_{transition}")().name == "SUCCESS"
    assert list(r.node.sensors.inputs) == list(r.node.sensors.depth_inputs) == ["left"]


def test_a_click_in_a_frame_two_cameras_share_is_warned_about(running, monkeypatch):  # noqa: F811
    from geometry_msgs.msg import PointStamped

    r = running(cameras=["left", "right"])
    left, right = _left_and_right(r, "cam", "cam")
    try:
        said = []
        monkeypatch.setattr(r.node, "get_logger", lambda: type("Log", (), {
            "warning": lambda self, text, **kw: said.append(text),
            "info": lambda self, *a, **kw: None, "error": lambda self, *a, **kw: None})())
        click = PointStamped()
        click.header.frame_id, click.point.x, click.point.y = "cam", 5.0, 5.0
        r.node._on_click(click)
        assert said == ["cameras 'left', 'right' all publish images in frame 'cam': a click there "
                        "goes to 'left' (give each camera its own optical frame)"]
        assert left.wait(lambda: left.responses, 60) and not right.responses
    finally:
        left.close()
        right.close()


def test_a_camera_flooding_commands_cannot_starve_another(running):  # noqa: F811
    r = running(cameras=["left", "right"], queue_size=20, max_new_tokens=6,
                attention_views=["identity"])
    left, right = Client(namespace=f"{r.ns}/left"), Client(namespace=f"{r.ns}/right")
    try:
        left.stream(random_rgb(48, 64))
        right.stream(random_rgb(48, 64))
        assert left.wait(lambda: r.node.frames.latest("left") and r.node.frames.latest("right"), 10)
        for _ in range(12):
            left.command("Describe the image.")
        assert left.wait(lambda: r.node.scheduler.waiting >= 6, 30)
        right.command("What is on the table?")
        assert right.wait(lambda: right.responses, 120)
        # right waited for at most the request running and one of left's, not all twelve
        assert len(left.responses) <= 4, len(left.responses)
        assert left.wait(lambda: len(left.responses) == 12, 180)
        assert all(x.status == R.STATUS_OK for x in left.responses + right.responses)
    finally:
        left.close()
        right.close()


def test_bad_camera_list_fails_configure(running):  # noqa: F811
    r = running(cameras=["left", "left"])
    assert not r.started


def test_a_goal_names_its_camera_and_an_unknown_one_is_bad_input(running):  # noqa: F811
    from ros_ground_msgs.action import Ground

    r = running(cameras=["left", "right"])
    left, right = Client(namespace=f"{r.ns}/left"), Client(namespace=f"{r.ns}/right")
    action = r.client.action_client()
    try:
        left.stream(random_rgb(48, 64), frame_id="left_optical")
        right.stream(random_rgb(40, 56), frame_id="right_optical")
        assert left.wait(lambda: r.node.frames.latest("left") and r.node.frames.latest("right"), 10)
        assert action.wait_for_server(timeout_sec=10)

        def ask(camera):
            handle = r.client.wait_future(action.send_goal_async(
                Ground.Goal(prompt="Describe the image.", camera=camera)))
            return r.client.wait_future(handle.get_result_async()).result.response

        assert ask("right").header.frame_id == "right_optical"
        assert ask("").header.frame_id == "left_optical"  # empty: the first camera
        unknown = ask("front")
        assert unknown.status == R.STATUS_BAD_INPUT and "'front'" in unknown.error
        assert "left" in unknown.error and "right" in unknown.error
    finally:
        r.client.destroy_action_client(action)
        left.close()
        right.close()


@pytest.mark.slow
def test_1080p_frames_of_a_reliable_camera_in_another_process_reach_the_default_node():
    from std_msgs.msg import String

    from tests.ros_helpers import start_node_process, stop_process

    proc = start_node_process("ros_ground.nodes.grounding_node",
                              {"model": "tiny", "sam_model": "tiny", "device": "cpu",
                               "max_new_tokens": 4}, namespace="/bigcam",
                              remaps={"image": "/bigcam/camera/image_raw"})
    client = Client(namespace="/bigcam")
    camera = client.node.create_publisher(  # a driver's default QoS: reliable, keep last 10
        Image, "/bigcam/camera/image_raw",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    frame = rgb_to_image_msg(random_rgb(1080, 1920))
    frame.header.frame_id = "big"
    try:
        assert client.action.wait_for_server(timeout_sec=90), "grounding_node did not activate"
        ok = lambda: [x for x in client.responses if x.status == R.STATUS_OK]  # noqa: E731
        for tick in range(120):  # a 2 Hz camera; a command every second until one is OK
            camera.publish(frame)
            if tick % 2 == 0:
                client.command_pub.publish(String(data="Describe the image."))
            if client.wait(ok, 0.5):
                break
        assert ok(), stop_process(proc)[-3000:]
        assert ok()[0].header.frame_id == "big"
    finally:
        client.close()
        stop_process(proc)


def test_a_stream_that_stays_silent_is_warned_about_less_and_less_often(running, monkeypatch):  # noqa: F811
    import ros_ground.nodes.camera_input as module

    r = running(image_qos="best_effort")
    source = r.node.sensors.inputs[""]
    assert r.client.wait(lambda: source.publishers() == ["best_effort"], 10)  # and it sends nothing
    said, now = [], [time.monotonic_ns()]

    class Logger:
        def warning(self, text, **_):
            said.append(text)

        def info(self, text, **_):
            pass

    monkeypatch.setattr(r.node, "get_logger", lambda: Logger())
    monkeypatch.setattr(module.time, "monotonic_ns", lambda: now[0])
    source._arrived_mono_ns = now[0]
    warned_at = []
    for second in range(0, 200):  # one check a second, as the node's timer makes them
        now[0] += 1_000_000_000
        count = len(said)
        source.check()
        if len(said) > count:
            warned_at.append(second + 1)
    assert warned_at[:5] == [5, 10, 20, 40, 80], warned_at  # not every 5 s for ever
    r.client.stream(random_rgb(48, 64))  # a frame: the next silence is warned about soon again
    assert r.client.wait(lambda: source.age_s() is not None, 10)
    assert source._warn_every_s == source.warn_after_s


def test_a_compressed_reader_of_a_raw_camera_is_told_which_transport_to_set(running):  # noqa: F811
    r = running(image_transport="compressed")
    source = r.node.sensors.inputs[""]
    r.client.stream(random_rgb(48, 64))  # raw frames on `image` only
    assert r.client.wait(lambda: source.transport_hint(), 10)
    answer = r.ask()
    assert answer.status == R.STATUS_NO_IMAGE
    assert answer.error == (f"no image received yet on '{r.ns}/image/compressed'; nothing publishes "
                            f"on '{r.ns}/image/compressed' but '{r.ns}/image' has a publisher: set "
                            "image_transport to raw")
    # the node's own check warns too, once the input has been open warn_after_s (the silence
    # clock must not restart at every check while nothing publishes on the topic itself)
    source.warn_after_s = 0.5
    time.sleep(0.6)
    assert "set image_transport to raw" in source.check()


def test_frames_stamped_far_from_the_nodes_clock_are_warned_about(running, monkeypatch):  # noqa: F811
    # a frame stamped in 1970 or an hour ahead is warned about: the response's stamp is what a
    # robot's tf lookup uses
    r = running()
    said = []

    class Logger:
        def warning(self, text, **_):
            said.append(text)

        def __getattr__(self, name):
            return lambda *a, **k: None

    monkeypatch.setattr(r.node, "get_logger", lambda: Logger())
    now = r.node.get_clock().now().nanoseconds
    msg = rgb_to_image_msg(random_rgb(48, 64))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 10**9)
    r.client.stream(None, msg=msg)
    assert r.client.wait(lambda: _frame(r) is not None, 10)
    time.sleep(0.5)
    assert not [t for t in said if "stamped" in t], said
    r.client.stream(random_rgb(48, 64), stamp_sec=1000)
    assert r.client.wait(lambda: any("s behind this node's clock" in t for t in said), 10), said


def test_sim_time_without_a_clock_still_ages_frames_and_stamps_unstamped_ones(running):  # noqa: F811
    # use_sim_time with nothing on /clock (a bag played without --clock) reads 0 as now: frames
    # must still age (not a 15 s old one answered OK), zero stamps still get one (not every
    # frame one stamp), and the user is told
    from ros_ground.nodes.conversions import stamp_to_ns

    r = running(max_frame_age_s=0.5, use_sim_time=True)
    assert r.node.get_clock().now().nanoseconds == 0
    r.client.stream(None, msg=rgb_to_image_msg(random_rgb(48, 64)))  # a zero stamp
    assert r.client.wait(lambda: _frame(r) is not None, 10)
    assert abs(stamp_to_ns(_frame(r).header.stamp) / 1e9 - time.time()) < 10
    assert r.ask().status == R.STATUS_OK
    assert r.node._ros_ground_no_clock_said  # warned, once
    r.client._frame = None  # the camera stops
    time.sleep(1.5)
    answer = r.ask()
    assert answer.status == R.STATUS_NO_IMAGE and "s ago" in answer.error, answer.error


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_no_image_says_which_transport_to_set_after_frames_came_on_this_one(running, transport):  # noqa: F811
    # NO_IMAGE names the image_transport to set whenever only the other transport publishes,
    # after frames came on this one (a driver restarted with compression only) as before any
    r = running(image_transport=transport, max_frame_age_s=0.5)
    jpeg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", random_rgb(48, 64))[1].tobytes())
    jpeg.header.stamp.sec = 5
    compressed = r.client.node.create_publisher(CompressedImage, "image/compressed",
                                                qos_profile_sensor_data)
    if transport == "raw":
        _stream(r)
    else:
        assert r.client.wait(lambda: compressed.publish(jpeg) or _frame(r) is not None, 10)
    with r.client._spinning:  # the driver restarts on the other transport only
        r.client._frame = None
        if transport == "raw":
            r.client.node.destroy_publisher(r.client.image_pub)
        else:
            r.client.node.destroy_publisher(compressed)
    topic = r.node.sensors.inputs[""].topic
    assert r.client.wait(lambda: r.node.count_publishers(topic) == 0, 10)
    time.sleep(0.6)
    answer = r.ask()
    assert answer.status == R.STATUS_NO_IMAGE
    other = "compressed" if transport == "raw" else "raw"
    assert "nothing publishes on it now" in answer.error
    assert answer.error.endswith(f"has a publisher: set image_transport to {other}"), answer.error


def test_depth_on_compressed_depth_only_is_said_in_position_error_and_warned(running):  # noqa: F811
    # depth published only on depth/compressedDepth (as drivers do) is named in position_error
    # and warned about, not reported as "no depth frame came"
    r = running()
    _stream(r)
    depth = r.client.node.create_publisher(CompressedImage, "depth/compressedDepth",
                                           qos_profile_sensor_data)
    source = r.node.sensors.depth_inputs[""]
    assert r.client.wait(lambda: r.node.count_publishers(f"{r.ns}/depth/compressedDepth") > 0, 10)
    hint = (f"nothing publishes on '{r.ns}/depth' but '{r.ns}/depth/compressedDepth' has a "
            "publisher: set depth_transport to compressedDepth")
    answer = r.ask()
    assert answer.status == R.STATUS_OK
    assert answer.position_error.startswith(f"no depth frame received on '{r.ns}/depth'; {hint}"), \
        answer.position_error
    source.warn_after_s = 0.5
    time.sleep(0.6)
    assert hint in source.check()
    assert "image_transport to" not in source.check()  # a colour setting: not depth's
    # the publisher the hint names lived to here (an unreferenced one could be collected early)
    assert r.client.node.destroy_publisher(depth)


@pytest.mark.parametrize("encoding, why", [("mono8", "a mono camera's frames carry no colour"),
                                           ("32FC1", "is a depth topic remapped onto the colour")])
def test_an_image_encoding_without_colour_is_warned_about_once(running, monkeypatch, encoding, why):  # noqa: F811
    # colour words are not judged on such frames (refer.py): the user hears why once
    r = running()
    said = []
    monkeypatch.setattr(r.node, "get_logger", lambda: type("Log", (), {
        "warning": lambda self, text, **kw: said.append(text),
        "info": lambda self, *a, **kw: None, "error": lambda self, *a, **kw: None})())
    values = random_rgb(48, 64)[:, :, 0]
    msg = Image(height=48, width=64, encoding=encoding, step=64 * values.itemsize)
    if encoding == "32FC1":
        values = values.astype("<f4")
        msg.step = 64 * 4
    msg.data = values.tobytes()
    msg.header.stamp.sec, msg.header.frame_id = 5, "cam"
    r.client.stream(None, msg=msg)
    assert r.client.wait(lambda: _frame(r) is not None, 10)
    time.sleep(0.5)  # several frames
    grey = [text for text in said if "colour words" in text]
    assert len(grey) == 1 and why in grey[0] and f"are {encoding} (" in grey[0], said


def test_a_mono_camera_then_depth_on_its_topic_are_each_said():
    """helper-103: after a mono8 frame, 32FC1 on the same topic (a depth topic remapped onto it)
    went unsaid: the two say different things."""
    from ros_ground.nodes.camera_sensors import CameraSensors

    said = []
    node = type("Node", (), {"get_logger": lambda self: type("Log", (), {
        "warning": lambda self, text, **kw: said.append(text)})()})()
    sensors = CameraSensors(node, {})
    for encoding in ("mono8", "32FC1", "mono16", "16UC1"):
        sensors._say_if_grey("", "image", Image(height=1, width=1, encoding=encoding, step=1, data=bytes(1)))
    assert [("mono camera" in text, "depth topic" in text) for text in said] == [(True, False), (False, True)]


def test_the_once_per_camera_warnings_come_again_after_a_cleanup():
    # a reconfigure may bring other cameras (or drivers) under the same names: a grey stream
    # after it went unsaid, as it had been said before the cleanup
    from ros_ground.nodes.camera_sensors import CameraSensors

    said = []
    node = type("Node", (), {"get_logger": lambda self: type("Log", (), {
        "warning": lambda self, text, **kw: said.append(text)})()})()
    sensors = CameraSensors(node, {})
    grey = Image(height=1, width=1, encoding="mono8", step=1, data=bytes(1))
    sensors._say_if_grey("", "image", grey)
    sensors._say_if_grey("", "image", grey)
    assert len(said) == 1
    sensors.clear()
    sensors._say_if_grey("", "image", grey)
    assert len(said) == 2 and said[1] == said[0]


def test_a_command_before_any_frame_names_the_image_topics_that_are_published(running):  # noqa: F811
    """A mistyped or unremapped image topic is a new user's first mistake: say what is there."""
    r = running(cameras=["front"])  # listens on front/image; the client publishes on image
    from ros_ground_msgs.action import Ground

    assert r.client.wait(lambda: r.node.count_publishers(f"{r.ns}/image") > 0, 10)
    assert r.client.action.wait_for_server(timeout_sec=10)
    handle = r.client.wait_future(r.client.action.send_goal_async(Ground.Goal(prompt="Describe the image.")))
    answer = r.client.wait_future(handle.get_result_async()).result.response
    assert answer.status == R.STATUS_NO_IMAGE
    assert answer.error.startswith(f"no image received yet on '{r.ns}/front/image' (nothing publishes on it; "
                                   "sensor_msgs/msg/Image topics published now: "), answer.error
    assert f"'{r.ns}/image'" in answer.error
    assert "overlay" not in answer.error  # the node's own output is no camera


def test_why_no_frame_came():
    from ros_ground.camera_watch import no_frame_reason

    kind = "sensor_msgs/msg/Image"
    assert no_frame_reason("/cam/image", 2, ["/a"], kind).startswith("2 publisher(s) on it, but no frame")
    assert no_frame_reason("/cam/image", 0, [], kind) == (
        "nothing publishes on it, nor on any other sensor_msgs/msg/Image topic")
    many = no_frame_reason("/cam/image", 0, [f"/t{i}" for i in range(7, 0, -1)], kind)
    assert many.endswith("'/t1', '/t2', '/t3', '/t4', '/t5' and 2 more"), many
    others = [f"/a{i}/depth" for i in range(6)] + ["/z/color/image_raw"]
    camera = no_frame_reason("/cam/image_raw", 0, others, kind)
    assert camera.endswith("now: '/z/color/image_raw', '/a0/depth', '/a1/depth', '/a2/depth', '/a3/depth' "
                           "and 2 more"), camera
