"""ground_container as a process: proposals flow to the grounding node; `ros-ground ask` works."""

import json
import subprocess
import sys
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from ros_ground_msgs.msg import EntityProposals  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402

from bench.breakdown import sim_params  # noqa: E402
from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import msg_to_proposals, stamp_to_ns  # noqa: E402
from tests.ros_helpers import Client, random_rgb, start_node_process, stop_process  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]
NS = "/box"


@pytest.fixture(scope="module")
def container():
    rclpy.init()
    proc = start_node_process(
        "ros_ground.nodes.container",
        {"model": "tiny", "sam_model": "tiny", "device": "cpu", "max_new_tokens": 10,
         "min_period_s": 0.0, "points_per_side": 8, "pred_iou_thresh": 0.0,
         "stability_score_thresh": 0.0, "proposal_tolerance_s": 0.01},
        namespace=NS)
    client = Client(namespace=NS)
    proposals = []
    client.node.create_subscription(EntityProposals, "proposals", proposals.append, RELIABLE)
    client.proposals = proposals
    assert client.action.wait_for_server(timeout_sec=90), stop_process(proc)
    yield client
    client.close()
    print(stop_process(proc)[-2000:])
    rclpy.try_shutdown()


def test_proposals_match_frames_and_carry_entity_tokens(container):
    sent = container.stream(random_rgb(64, 96, seed=1), stamp_sec=21)
    assert container.wait(lambda: any(p.header.stamp.sec == 21 for p in container.proposals), 60)
    msg = next(p for p in container.proposals if p.header.stamp.sec == 21)
    assert stamp_to_ns(msg.header.stamp) == stamp_to_ns(sent.header.stamp)
    proposals = msg_to_proposals(msg, 64, 96)
    assert proposals, "a zero threshold must keep some masks"
    assert msg.feature_dim > 0 and len(msg.features) == len(proposals) * msg.feature_dim
    assert msg.feature_source == "sam_image_embedding"
    assert all(p.mask.shape == (64, 96) and p.feature.shape == (msg.feature_dim,)
               for p in proposals)


def test_grounding_uses_the_frames_proposals(container):
    container.stream(random_rgb(64, 96, seed=2), stamp_sec=22)
    assert container.wait(lambda: any(p.header.stamp.sec == 22 for p in container.proposals), 60)
    time.sleep(0.3)
    start = len(container.responses)
    container.command("Describe the image.")
    assert container.wait(lambda: len(container.responses) > start, 60)
    response = container.responses[start]
    assert response.status == R.STATUS_OK and response.phrases and response.mode == "entities"
    ids = {e.id for p in container.proposals if p.header.stamp.sec == 22 for e in p.entities}
    assert all(p.entity_ids and set(p.entity_ids) <= ids for p in response.phrases)


def test_ros_ground_ask_cli(container, tmp_path):
    container.stream(random_rgb(64, 96, seed=3), stamp_sec=23)
    time.sleep(0.5)
    overlay = tmp_path / "ask.png"
    out = subprocess.run(
        [sys.executable, "-m", "ros_ground.nodes.cli", "ask", "Describe the image.", "--namespace", NS,
         "--json", "--timeout", "60", "--overlay", str(overlay)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"text", "phrases", "timing_ms", "model", "mode"} <= set(result)
    assert result["status"] == 0 and result["model"] == "tiny"
    for p in result["phrases"]:
        assert result["text"][p["char_start"]:p["char_end"]] == p["text"]
        assert p["mask_rle"]["size"] == [64, 96]
    from ros_ground.image_files import load_rgb

    assert load_rgb(overlay).shape == (64, 96, 3)


def test_ask_without_server_times_out_clearly(container):
    out = subprocess.run(
        [sys.executable, "-m", "ros_ground.nodes.cli", "ask", "hi", "--namespace", "/nobody",
         "--timeout", "6"], capture_output=True, text=True, timeout=60)  # time to discover the rest
    assert out.returncode == 2 and "no action server" in out.stderr
    # the namespace that would have reached the running node (the container's)
    listed = out.stderr.split("Ground servers running: --namespace ")[-1].strip().split(", ")
    assert NS in listed and "/nobody" not in listed, out.stderr  # others' test nodes may linger


def test_composed_nodes_asking_for_different_sams_are_warned_about(monkeypatch):
    # composed nodes that ask for different SAMs share none, and the log says so rather than
    # "shares SAM 'tiny'" while the other node uses 'sim'
    import ros_ground.sam
    from ros_ground.nodes import container as module

    said = []
    monkeypatch.setattr(module, "log", type("Log", (), {"warning": lambda self, text: said.append(text)})())
    monkeypatch.setattr(ros_ground.sam, "get_shared_sam", lambda *key: key)
    sam = module.SharedSam()
    grounding, proposals = sam.provider("grounding_node"), sam.provider("mask_proposal_node")
    assert grounding("sim", None, "cpu") == ("sim", None, "cpu")
    assert proposals("sim", None, "cpu") == ("sim", None, "cpu")
    assert said == []
    assert proposals("tiny", None, "cpu") == ("tiny", None, "cpu")  # its own, as it asked
    assert len(said) == 1
    assert said[0].startswith("mask_proposal_node uses SAM 'tiny' on cpu, grounding_node 'sim' on "
                              "cpu: the composed nodes share SAM and its image embedding only"), said
    proposals("sim", None, "cpu")  # set back: shared again, nothing to say
    assert len(said) == 1


def test_a_command_and_the_proposal_run_on_one_frame_share_one_embedding(monkeypatch):
    # SAM's key names a frame by its topic, header and pixels: both composed nodes, each with
    # its own decode of the frame, must still name it alike, or each frame costs two passes.
    # Point mode: its phrases are cut from the frame's embedding (entity masks are not)
    from bench import embedding

    monkeypatch.setattr(embedding, "sim_params", lambda: {**sim_params(), "mode": "point"})
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        result = embedding.container_passes(context, 2, points_per_side=4)
    finally:
        rclpy.shutdown(context=context)
    assert result["grounding_modes"] == ["point", "point"], result
    assert result["shared_instance"] and result["passes_per_frame"] == [1, 1], result


def test_the_shared_sam_is_freed_when_the_last_composed_node_cleans_up():
    # the process-wide cache kept every SAM it ever loaded: after both nodes' cleanup (which
    # logs "models released") the model stayed in memory, and a reconfigure with another
    # sam_model kept both
    import weakref

    from ros_ground.nodes import container as module
    from ros_ground.nodes.grounding_node import GroundingNode
    from ros_ground.nodes.mask_proposal_node import MaskProposalNode

    context = rclpy.Context()
    rclpy.init(context=context)
    sam = module.SharedSam()
    values = {"sam_model": "tiny", "device": "cpu", "autostart": False}
    overrides = [rclpy.parameter.Parameter(k, value=v) for k, v in values.items()]
    grounding = GroundingNode(sam_provider=sam.provider("grounding_node"), context=context,
                              namespace="/freed", parameter_overrides=[
                                  *overrides, rclpy.parameter.Parameter("model", value="tiny")])
    proposer = MaskProposalNode(sam_provider=sam.provider("mask_proposal_node"), context=context,
                                namespace="/freed", parameter_overrides=overrides)
    try:
        assert grounding.trigger_configure().name == "SUCCESS"
        assert proposer.trigger_configure().name == "SUCCESS"
        assert proposer._sam is grounding._engine.sam  # shared
        held = weakref.ref(proposer._sam)
        assert proposer.trigger_cleanup().name == "SUCCESS"
        assert held() is not None  # the grounding node still uses it
        assert grounding.trigger_cleanup().name == "SUCCESS"
        assert held() is None, "the last user's cleanup must free the shared SAM"
    finally:
        for node in (proposer, grounding):
            node.shutdown_worker()
            node.destroy_node()
        rclpy.shutdown(context=context)
