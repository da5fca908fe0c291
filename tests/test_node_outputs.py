"""grounding_node's outputs as an rviz user sees them: latched overlay and markers, cleared
markers after a failed answer, and markers named by their response's request_id."""

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from ros_ground.nodes.grounding_node import CAMERA  # noqa: E402
from ros_ground.nodes.markers import response_markers  # noqa: E402
from tests.test_grounding_node import Running, _stream  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("ros")]


@pytest.fixture
def r():
    made = Running()
    yield made
    made.close()


def _subscribe(r, topic, msg_type, durability=DurabilityPolicy.VOLATILE) -> list:
    got = []
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=durability)
    r.client.node.create_subscription(msg_type, topic, got.append, qos)
    return got


def test_a_viewer_started_after_the_answer_gets_its_overlay_and_markers(r):
    _stream(r)
    response = r.ask()
    assert response.status == R.STATUS_OK
    # rviz opened now, its displays set to Transient Local as for any latched topic
    overlays = _subscribe(r, "overlay", Image, DurabilityPolicy.TRANSIENT_LOCAL)
    markers = _subscribe(r, "markers", MarkerArray, DurabilityPolicy.TRANSIENT_LOCAL)
    assert r.client.wait(lambda: overlays and markers, 10)
    assert overlays[-1].header.stamp == markers[-1].markers[0].header.stamp == response.header.stamp
    assert len(overlays) == len(markers) == 1  # the last answer's alone
    # the response is no picture: a client that starts later must not take the last answer for
    # one to its own command
    durability = r.node.outputs.responses[CAMERA].qos_profile.durability
    assert durability == DurabilityPolicy.VOLATILE


def test_a_failed_answer_clears_the_markers_of_the_last_one(r):
    from tests.test_markers import _response, _rviz_display

    markers = _subscribe(r, "markers", MarkerArray)
    assert r.client.wait(lambda: r.node.outputs.markers[CAMERA].get_subscription_count() > 0, 10)
    response = r.ask()  # no frame yet
    assert response.status == R.STATUS_NO_IMAGE
    assert r.client.wait(lambda: markers, 10)
    # rviz showing a grounded answer's boxes shows none after the failed one
    assert len(_rviz_display([response_markers(_response())])) == 6
    assert _rviz_display([response_markers(_response()), markers[-1]]) == {}


def test_the_response_goes_first_and_its_markers_carry_its_request_id():
    from types import SimpleNamespace

    import numpy as np
    from std_msgs.msg import Header

    from ros_ground.nodes.conversions import result_to_msg
    from ros_ground.nodes.outputs import CameraOutputs
    from ros_ground.results import GroundingResult
    from tests.test_markers import _phrase

    sent = []

    def publisher(topic):
        return SimpleNamespace(publish=lambda msg: sent.append((topic, msg)))

    outputs = CameraOutputs(goals=None)
    outputs.responses, outputs.overlays, outputs.markers = (
        {"": publisher(topic)} for topic in ("response", "overlay", "markers"))

    result = GroundingResult(text="a mug", model="sim", image_size=(20, 30),
                             phrases=[_phrase("a mug", (0.1, 0.0, 1.0))])
    frame = SimpleNamespace(rgb=np.zeros((20, 30, 3), np.uint8), header=Header(frame_id="cam"))
    response = result_to_msg(result, frame.header, "node-1", "Describe the scene.")
    request = SimpleNamespace(camera="", goal_handle=None, request_id="node-1")
    outputs.show("", frame, result, response, overlay=True)
    outputs.deliver(request, response)
    assert [topic for topic, _ in sent] == ["response", "markers", "overlay"]
    drawn = sent[1][1].markers
    assert {m.text for m in drawn if m.type != m.TEXT_VIEW_FACING} == {"node-1"}
    assert [m.text for m in drawn if m.type == m.TEXT_VIEW_FACING] == ["a mug"]
    # a request refused (busy) while another's overlay is drawn publishes none and leaves it
    sent.clear()
    outputs.show("", frame, result, response, overlay=True)
    other = result_to_msg(result, frame.header, "node-2", "Describe the scene.")
    outputs.deliver(SimpleNamespace(camera="", goal_handle=None, request_id="node-2"), other)
    assert [topic for topic, _ in sent] == ["response", "markers"]
    outputs.deliver(request, response)
    assert [topic for topic, _ in sent[2:]] == ["response", "markers", "overlay"]
    # a refused request leaves the markers on screen; a request without a frame clears them
    for status, topics in ((other.STATUS_REJECTED_BUSY, ["response"]), (other.STATUS_BAD_INPUT, ["response"]),
                           (other.STATUS_NO_IMAGE, ["response", "markers"])):
        sent.clear()
        refused = result_to_msg(result, frame.header, "node-3", "Describe the scene.")
        refused.status, refused.phrases = status, []
        outputs.deliver(SimpleNamespace(camera="", goal_handle=None, request_id="node-3"), refused)
        assert [topic for topic, _ in sent] == topics, status


def test_deactivate_clears_the_latched_markers(r):
    """Latched, the last answer's boxes would show in an rviz started while the node is
    inactive as if current: deactivate publishes them cleared first."""
    from tests.test_markers import _rviz_display

    _stream(r)
    answer = r.ask()
    assert answer.status == R.STATUS_OK
    assert r.node.trigger_deactivate().name == "SUCCESS"
    markers = _subscribe(r, "markers", MarkerArray, DurabilityPolicy.TRANSIENT_LOCAL)
    assert r.client.wait(lambda: markers, 10)
    assert _rviz_display(markers) == {}
    # in the last markers' frame, stamped when cleared (helper-129: an empty header, stamp 0,
    # sorted before everything in a bag)
    header = markers[-1].markers[0].header
    assert header.frame_id == answer.header.frame_id != ""
    assert (header.stamp.sec, header.stamp.nanosec) >= (answer.header.stamp.sec, answer.header.stamp.nanosec)
    assert header.stamp.sec > 0
    assert r.node.trigger_activate().name == "SUCCESS"  # the fixture closes an active node
