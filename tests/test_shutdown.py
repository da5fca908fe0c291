"""Every node process ends within 5 s of ONE SIGINT or SIGTERM, idle or busy, with exit status 0.

Each case starts the executable (tiny models), waits until it is active and spinning (its
lifecycle state answers), makes it busy if asked (a generation streaming feedback, or the
proposal generator running on a streamed frame), sends one signal and times the exit.
ROS_GROUND_SHUTDOWN_REPEAT=20 runs each case 20 times (about 20 minutes on 2 CPU cores).
"""

import os
import signal
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import State  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import EntityProposals  # noqa: E402

from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import rgb_to_image_msg  # noqa: E402
from tests.ros_helpers import Client, process_output, random_rgb, start_node_process  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EXIT_WITHIN_S = 5.0
REPEAT = int(os.environ.get("ROS_GROUND_SHUTDOWN_REPEAT", "1"))
PARAMS = {"model": "tiny", "sam_model": "tiny", "device": "cpu", "max_new_tokens": 400,
          "queue_size": 3, "min_period_s": 0.0, "points_per_side": 8}
# executable module -> the nodes it hosts
EXECUTABLES = {
    "ros_ground.nodes.grounding_node": ("grounding_node",),
    "ros_ground.nodes.mask_proposal_node": ("mask_proposal_node",),
    "ros_ground.nodes.container": ("grounding_node", "mask_proposal_node"),
}


def _wait_active(client: Client, namespace: str, nodes, proc, timeout: float = 120.0) -> None:
    for name in nodes:
        service = client.node.create_client(GetState, f"{namespace}/{name}/get_state")
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, process_output(proc)[-3000:]
            assert time.monotonic() < deadline, f"{name} not active:\n{process_output(proc)[-3000:]}"
            if service.wait_for_service(timeout_sec=1.0):
                state = client.wait_future(service.call_async(GetState.Request()), 30)
                if state.current_state.id == State.PRIMARY_STATE_ACTIVE:
                    break
            time.sleep(0.2)
        client.node.destroy_client(service)


def _make_busy(client: Client, nodes) -> None:
    client.stream(random_rgb(48, 64))
    if "grounding_node" in nodes:
        assert client.action.wait_for_server(timeout_sec=30)
        feedback = []
        goal = Ground.Goal(prompt="Describe the scene.", image=rgb_to_image_msg(random_rgb(48, 64)))
        sent = [client.action.send_goal_async(goal, feedback_callback=feedback.append)
                for _ in range(3)]  # one running, two queued
        handle = client.wait_future(sent[0], 30)
        assert handle.accepted
        result = handle.get_result_async()
        assert client.wait(lambda: feedback or result.done(), 60)
        assert feedback, f"the generation never started: {result.result().result.response}"
    else:
        proposals = []
        sub = client.node.create_subscription(EntityProposals, "proposals", proposals.append,
                                              RELIABLE)
        # the generator runs back to back (min_period_s 0): after one result the next is running
        assert client.wait(lambda: proposals, 60), "no proposals"
        client.node.destroy_subscription(sub)


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module", list(EXECUTABLES), ids=lambda m: m.rsplit(".", 1)[1])
def test_one_signal_ends_the_process(ros, module, signum, busy):
    nodes = EXECUTABLES[module]
    for i in range(REPEAT):
        namespace = f"/stop_{os.getpid()}_{module.rsplit('.', 1)[1]}_{int(signum)}_{int(busy)}_{i}"
        proc = start_node_process(module, PARAMS, namespace=namespace)
        client = Client(namespace=namespace)
        try:
            _wait_active(client, namespace, nodes, proc)
            if busy:
                _make_busy(client, nodes)
            sent, sent_wall = time.monotonic(), time.time()  # wall clock: compare with the log
            proc.send_signal(signum)
            try:
                code = proc.wait(timeout=EXIT_WITHIN_S + 10)
            except Exception:
                code = None
            took = time.monotonic() - sent
            output = process_output(proc)[-3000:]
            when = f"try {i}: {took:.1f} s after the signal at {sent_wall:.3f}"
            assert code == 0, f"{when}: exit status {code}\n{output}"
            assert took < EXIT_WITHIN_S, f"{when}: exited too late\n{output}"
            assert "Traceback" not in output, output
        finally:
            client.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
