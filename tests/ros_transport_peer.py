"""Second process of test_ros_transport: publishes a GroundedResponse and serves `ask`.

Run as a script by the test; prints READY once its publisher and action server exist.
"""

import sys

import numpy as np
import rclpy
from rclpy.action import ActionServer
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse
from std_msgs.msg import Header

from ros_ground.nodes.conversions import result_to_msg
from ros_ground.results import GroundedPhrase, GroundingResult


def sample_result(text: str) -> GroundingResult:
    """Three masks on a 48x64 frame, deterministic so the other process can check them."""
    rng = np.random.default_rng(7)
    phrases = []
    for i in range(3):
        mask = rng.random((48, 64)) > 0.5 + 0.1 * i
        phrases.append(GroundedPhrase(text=text[:4], char_start=0, char_end=4, score=0.5 + i / 10,
                                      mask=mask, point=(float(i), 2.0 * i), entity_ids=[i, i + 1]))
    return GroundingResult(text=text, phrases=phrases, model="peer", image_size=(48, 64),
                           timing_ms={"generation": 1.0, "grounding": 2.0, "total": 3.0})


class Peer(Node):
    def __init__(self):
        super().__init__("transport_peer")
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = self.create_publisher(GroundedResponse, "response", qos)
        self.server = ActionServer(self, Ground, "ask", self.execute)
        self.timer = self.create_timer(0.2, self.publish)

    def publish(self):
        header = Header(frame_id="camera")
        header.stamp.sec = 42
        self.pub.publish(result_to_msg(sample_result("a red mug"), header, "peer-1", "describe"))

    def execute(self, goal_handle):
        goal = goal_handle.request
        prompt = goal.prompt
        roi = goal.region
        if roi.width or len(goal.region_mask.counts) or goal.region_x >= 0:
            # the region fields, echoed so the other process can check they crossed intact
            prompt += (f" roi={roi.x_offset},{roi.y_offset},{roi.width},{roi.height}"
                       f" mask={goal.region_mask.height}x{goal.region_mask.width}:"
                       f"{list(goal.region_mask.counts)} xy={goal.region_x},{goal.region_y}")
        goal_handle.publish_feedback(Ground.Feedback(partial_text="a"))
        goal_handle.succeed()
        result = Ground.Result()
        result.response = result_to_msg(sample_result("echo " + prompt), Header(), "goal", prompt)
        return result


def main():
    rclpy.init()
    node = Peer()
    print("READY", flush=True)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
