"""The node executables as separate processes, driven over DDS like a robot would."""

import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402

from ros_ground.nodes import params  # noqa: E402
from ros_ground.nodes.conversions import msg_to_phrase, stamp_to_ns  # noqa: E402
from tests.ros_helpers import Client, random_rgb, start_node_process, stop_process  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

NS = "/ground"
OVERRIDES = {"model": "tiny", "sam_model": "tiny", "device": "cpu", "max_new_tokens": 12,
             "queue_size": 2}


@pytest.fixture(scope="module")
def node_proc(ros):
    proc = start_node_process("ros_ground.nodes.grounding_node", OVERRIDES, namespace=NS,
                              remaps={"image": "/cam/image_raw"})
    yield proc
    print(stop_process(proc)[-3000:])


@pytest.fixture(scope="module")
def client(node_proc):
    client = Client(namespace=NS, image_topic="/cam/image_raw")
    assert client.action.wait_for_server(timeout_sec=90), "grounding_node did not become active"
    yield client
    client.close()


def _responses_after(client, count, n, timeout=60.0):
    assert client.wait(lambda: len(client.responses) >= count + n, timeout), (
        f"expected {n} responses, got {len(client.responses) - count}")
    return client.responses[count:count + n]


def test_no_image_then_command_yields_one_grounded_response(client):
    start = len(client.responses)
    client.command("Describe the image.")
    (first,) = _responses_after(client, start, 1)
    assert first.status == R.STATUS_NO_IMAGE and first.error

    rgb = random_rgb(60, 80)
    sent = client.stream(rgb, stamp_sec=7, frame_id="cam")
    time.sleep(0.5)
    start = len(client.responses)
    client.command("Describe the image.")
    (response,) = _responses_after(client, start, 1)
    assert response.status == R.STATUS_OK, response.error
    assert stamp_to_ns(response.header.stamp) == stamp_to_ns(sent.header.stamp)
    assert response.header.frame_id == "cam"
    assert response.prompt == "Describe the image." and response.request_id
    assert response.model == "tiny" and response.text and response.phrases
    for p in response.phrases:
        assert response.text[p.char_start:p.char_end] == p.text
        assert (p.mask.height, p.mask.width) == (60, 80)
        assert msg_to_phrase(p).mask.shape == (60, 80)
    assert response.total_ms >= response.generation_ms > 0
    time.sleep(0.5)
    assert len(client.responses) == start + 1, "exactly one response per command"


def test_overlay_is_published_with_the_frame_header(client):
    client.stream(random_rgb(60, 80, seed=1), stamp_sec=8)
    time.sleep(0.3)
    start, overlays = len(client.responses), len(client.overlays)
    client.command("What is on the table?")
    _responses_after(client, start, 1)
    assert client.wait(lambda: len(client.overlays) > overlays, 10)
    overlay = client.overlays[-1]
    assert overlay.encoding == "rgb8" and (overlay.height, overlay.width) == (60, 80)
    assert overlay.header.stamp.sec == 8


def test_action_streams_feedback_before_result(client):
    client.stream(random_rgb(60, 80, seed=2), stamp_sec=9)
    time.sleep(0.3)
    events = []
    send = client.action.send_goal_async(
        Ground.Goal(prompt="Describe the image."),
        feedback_callback=lambda fb: events.append(("feedback", fb.feedback.partial_text)))
    handle = client.wait_future(send)
    assert handle.accepted
    result = client.wait_future(handle.get_result_async()).result
    events.append(("result", result.response.text))
    kinds = [k for k, _ in events]
    assert kinds[0] == "feedback" and kinds[-1] == "result"
    assert result.response.status == R.STATUS_OK
    assert events[-2][1] == result.response.text  # the last feedback holds the whole text


def test_goal_with_its_own_image(client):
    from ros_ground.nodes.conversions import rgb_to_image_msg

    image = rgb_to_image_msg(random_rgb(40, 50, seed=3))
    image.header.stamp.sec = 99
    handle = client.wait_future(client.action.send_goal_async(
        Ground.Goal(prompt="Describe the image.", image=image, mode="point")))
    response = client.wait_future(handle.get_result_async()).result.response
    assert response.status == R.STATUS_OK and response.header.stamp.sec == 99
    assert all((p.mask.height, p.mask.width) == (40, 50) for p in response.phrases)


def test_region_goal_and_clicked_point_cross_processes(client):
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import RegionOfInterest

    from ros_ground.nodes.common import RELIABLE
    from ros_ground.nodes.conversions import mask_to_msg

    client.stream(random_rgb(60, 80, seed=7), stamp_sec=13)
    time.sleep(0.3)
    start = len(client.responses)

    def ask(**fields):
        handle = client.wait_future(client.action.send_goal_async(
            Ground.Goal(prompt="What is this?", **fields)))
        return client.wait_future(handle.get_result_async()).result.response

    box = RegionOfInterest(x_offset=10, y_offset=5, width=20, height=12)
    assert ask(region=box).status == R.STATUS_OK
    # each field arrives as sent: the refusals quote them
    response = ask(region=RegionOfInterest(x_offset=90, y_offset=5, width=7, height=3))
    assert response.status == R.STATUS_BAD_INPUT and "(90, 5, 7, 3)" in response.error
    response = ask(region_mask=mask_to_msg(np.ones((10, 12), bool)))
    assert response.status == R.STATUS_BAD_INPUT and "(10, 12)" in response.error
    response = ask(region_x=3)
    assert response.status == R.STATUS_BAD_INPUT and "(3, -1)" in response.error

    clicks = client.node.create_publisher(PointStamped, f"{NS}/clicked_point", RELIABLE)
    assert client.wait(lambda: clicks.get_subscription_count() > 0, 10)
    start += len(_responses_after(client, start, 4))  # the goals' responses on `response`
    click = PointStamped()
    click.header.frame_id = "map"
    clicks.publish(click)
    (response,) = _responses_after(client, start, 1)
    assert response.status == R.STATUS_BAD_INPUT and "'map'" in response.error
    client.node.destroy_publisher(clicks)


def test_cancel_returns_canceled(client):
    param_client = AsyncParameterClient(client.node, f"{NS}/grounding_node")
    assert param_client.wait_for_services(timeout_sec=10)
    client.wait_future(param_client.set_parameters([Parameter("max_new_tokens", value=400)]))
    try:
        client.stream(random_rgb(60, 80, seed=4), stamp_sec=10)
        time.sleep(0.3)
        feedback = []
        handle = client.wait_future(client.action.send_goal_async(
            Ground.Goal(prompt="Describe the image."), feedback_callback=feedback.append))
        assert client.wait(lambda: feedback, 30)
        client.wait_future(handle.cancel_goal_async())
        wrapped = client.wait_future(handle.get_result_async())
        assert wrapped.result.response.status == R.STATUS_CANCELED
        assert wrapped.status == 5  # action_msgs GoalStatus.STATUS_CANCELED
    finally:
        client.wait_future(param_client.set_parameters([Parameter("max_new_tokens", value=12)]))


def test_twenty_commands_at_once_get_twenty_responses(client):
    client.stream(random_rgb(60, 80, seed=5), stamp_sec=11)
    time.sleep(0.3)
    start = len(client.responses)
    for i in range(20):
        client.command(f"Describe the image, take {i}.")
    got = _responses_after(client, start, 20, timeout=120)
    assert {r.status for r in got} <= {R.STATUS_OK, R.STATUS_REJECTED_BUSY}
    assert len({r.request_id for r in got}) == 20
    assert {r.prompt for r in got} == {f"Describe the image, take {i}." for i in range(20)}
    assert any(r.status == R.STATUS_OK for r in got)
    assert any(r.status == R.STATUS_REJECTED_BUSY for r in got)  # queue_size is 2
    time.sleep(1.0)
    assert len(client.responses) == start + 20


def _call(client, srv_type, name, request):
    cli = client.node.create_client(srv_type, name)
    try:
        assert cli.wait_for_service(timeout_sec=10)
        return client.wait_future(cli.call_async(request))
    finally:
        client.node.destroy_client(cli)


def test_lifecycle_deactivate_and_activate(client):
    base = f"{NS}/grounding_node"
    change = lambda tid: _call(client, ChangeState, f"{base}/change_state",  # noqa: E731
                               ChangeState.Request(transition=Transition(id=tid))).success
    state = lambda: _call(client, GetState, f"{base}/get_state",  # noqa: E731
                          GetState.Request()).current_state.label
    assert state() == "active"
    assert change(Transition.TRANSITION_DEACTIVATE)
    assert state() == "inactive"
    # the ask server stays (the results of goals answered at deactivate reach their clients)
    # and rejects goals, which `ros-ground ask` says with the command that tells the state
    import subprocess
    import sys
    refused = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "ask", "hi", "--namespace",
                              NS, "--timeout", "30"], capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert (f"the goal was rejected: is the node active? (`ros-ground lifecycle {NS}/grounding_node`"
            in refused.stdout + refused.stderr), refused.stdout + refused.stderr
    assert change(Transition.TRANSITION_ACTIVATE)
    assert state() == "active"
    client.stream(random_rgb(60, 80, seed=6), stamp_sec=12)
    time.sleep(0.5)
    start = len(client.responses)
    client.command("Describe the image.")
    (response,) = _responses_after(client, start, 1)
    assert response.status == R.STATUS_OK


def test_declared_parameters_have_documented_defaults(client):
    param_client = AsyncParameterClient(client.node, f"{NS}/grounding_node")
    assert param_client.wait_for_services(timeout_sec=10)
    names = [p.name for p in params.GROUNDING_PARAMS]
    values = client.wait_future(param_client.get_parameters(names)).values
    for p, value in zip(params.GROUNDING_PARAMS, values):
        got = Parameter.from_parameter_msg(
            type("M", (), {"name": p.name, "value": value})()).value
        want = OVERRIDES.get(p.name, p.default)
        assert got == want, f"{p.name}: {got!r} != {want!r}"
    described = client.wait_future(param_client.describe_parameters(names)).descriptors
    assert all(d.description for d in described)


def test_ros_ground_lifecycle_reads_and_changes_the_state(client):
    # on the PyPI install `ros2 lifecycle set` and `ros2 service call` end in KeyError (no
    # rosidl_runtime_py): `ros-ground lifecycle` reads and changes the state there, and
    # configures again a node whose configure failed
    import subprocess
    import sys

    def life(*words):
        return subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "lifecycle",
                               f"{NS}/grounding_node", *words], capture_output=True, text=True,
                              timeout=120)

    assert life().stdout.strip() == "active"
    done = life("deactivate")
    assert done.returncode == 0 and done.stdout.strip() == \
        f"deactivate: {NS}/grounding_node is inactive", done.stdout + done.stderr
    refused = life("deactivate")  # not available from inactive
    assert refused.returncode == 1 and "is inactive: no 'deactivate' from there (available: " \
        in refused.stderr, refused.stderr
    assert life("activate").returncode == 0 and life().stdout.strip() == "active"
    missing = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "lifecycle",
                              "/nobody/here", "--timeout", "1"], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "no service /nobody/here/get_state" in missing.stderr
