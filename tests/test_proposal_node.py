"""mask_proposal_node's worker: the newest frame wins, and runs rest `min_period_s` between them."""

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from ros_ground.nodes.mask_proposal_node import MaskProposalNode  # noqa: E402

pytestmark = pytest.mark.usefixtures("ros")
RUN_S = 0.3  # stand-in for an automatic-mask run that holds SAM


@pytest.fixture
def node():
    node = MaskProposalNode(name="proposal_rest_test")
    runs: list[tuple[float, float, int]] = []  # (start, end, frame sec)
    lock = threading.Lock()

    def propose(msg: Image, camera: str = "") -> None:
        start = time.monotonic()
        time.sleep(RUN_S)
        with lock:
            runs.append((start, time.monotonic(), msg.header.stamp.sec))

    node._propose = propose
    node.runs_log = runs
    yield node
    node.shutdown_worker()
    node.destroy_node()


def _frame(sec: int) -> Image:
    msg = Image()
    msg.header.stamp.sec = sec
    return msg


def test_runs_rest_min_period_after_each_run_and_take_the_newest_frame(node):
    node.set_parameters([Parameter("min_period_s", value=0.5)])
    deadline = time.monotonic() + 3.0
    sec = 0
    while time.monotonic() < deadline:  # a 20 Hz camera, faster than proposals can keep up
        sec += 1
        node._on_image(_frame(sec))
        time.sleep(0.05)
    time.sleep(RUN_S + 0.1)
    runs = list(node.runs_log)
    assert len(runs) >= 3
    gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:])]
    assert min(gaps) >= 0.5 - 0.02, gaps  # SAM is left free between runs
    assert all(b[2] > a[2] for a, b in zip(runs, runs[1:]))
    assert runs[1][2] - runs[0][2] >= 10  # frames that came during a run and its rest: newest won


def test_zero_period_runs_back_to_back(node):
    node.set_parameters([Parameter("min_period_s", value=0.0)])
    for sec in range(1, 40):
        node._on_image(_frame(sec))
        time.sleep(0.05)
    time.sleep(RUN_S + 0.1)
    runs = list(node.runs_log)
    assert len(runs) >= 4
    assert max(b[0] - a[1] for a, b in zip(runs, runs[1:])) < 0.2
