"""Two processes exchange GroundedResponse messages with masks and a Ground action over DDS."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse  # noqa: E402

from ros_ground.nodes.common import spin_until  # noqa: E402
from ros_ground.nodes.conversions import msg_to_phrase  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from ros_transport_peer import sample_result  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def peer():
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "ros_transport_peer.py")],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "READY"
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def test_response_and_action_cross_process(peer):
    rclpy.init()
    node = rclpy.create_node("transport_test")
    try:
        received = []
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node.create_subscription(GroundedResponse, "response", received.append, qos)
        assert spin_until(node, lambda: received, 30), "no GroundedResponse from the peer"
        msg = received[0]
        expected = sample_result("a red mug")
        assert msg.text == "a red mug" and msg.header.frame_id == "camera"
        assert msg.header.stamp.sec == 42 and msg.status == GroundedResponse.STATUS_OK
        assert len(msg.phrases) == 3
        for got, want in zip(msg.phrases, expected.phrases):
            phrase = msg_to_phrase(got)
            np.testing.assert_array_equal(phrase.mask, want.mask)
            assert phrase.entity_ids == want.entity_ids
            assert phrase.point == want.point
            assert got.bbox.width == want.bbox[2] and got.bbox.height == want.bbox[3]

        client = ActionClient(node, Ground, "ask")
        assert client.wait_for_server(timeout_sec=30)
        feedback = []
        send = client.send_goal_async(Ground.Goal(prompt="hello"), feedback_callback=feedback.append)
        assert spin_until(node, send.done, 30)
        handle = send.result()
        assert handle.accepted
        result_future = handle.get_result_async()
        assert spin_until(node, result_future.done, 30)
        response = result_future.result().result.response
        assert response.text == "echo hello" and response.prompt == "hello"
        assert len(response.phrases) == 3
        np.testing.assert_array_equal(msg_to_phrase(response.phrases[2]).mask,
                                      expected.phrases[2].mask)
        # the goal's region fields (box, mask, pixel) cross processes intact
        goal = Ground.Goal(prompt="What is this?", region_x=5, region_y=6)
        goal.region.x_offset, goal.region.y_offset, goal.region.width, goal.region.height = \
            1, 2, 3, 4
        goal.region_mask.height, goal.region_mask.width = 48, 64
        goal.region_mask.counts = [10, 20, 3042]
        send = client.send_goal_async(goal)
        assert spin_until(node, send.done, 30)
        result_future = send.result().get_result_async()
        assert spin_until(node, result_future.done, 30)
        assert result_future.result().result.response.prompt == (
            "What is this? roi=1,2,3,4 mask=48x64:[10, 20, 3042] xy=5,6")
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
