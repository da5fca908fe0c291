"""grounding_node in-process: every parameter does what the README says, bad input is answered."""

import gc
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import State  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from ros_ground_msgs.msg import EntityProposals  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros_ground.image_codec import image_to_rgb  # noqa: E402
from ros_ground.nodes import params  # noqa: E402
from ros_ground.nodes.common import RELIABLE  # noqa: E402
from ros_ground.nodes.conversions import msg_to_phrase, proposals_to_msg  # noqa: E402
from ros_ground.nodes.executor import CallbackExecutor  # noqa: E402
from ros_ground.nodes.grounding_node import CAMERA, GroundingNode  # noqa: E402
from ros_ground.overlay import draw_overlay, with_target  # noqa: E402
from ros_ground.results import Proposal  # noqa: E402
from tests.ros_helpers import Client, random_rgb  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("ros")]
BASE = {"model": "tiny", "sam_model": "tiny", "device": "cpu", "max_new_tokens": 8}


class Running:
    """A GroundingNode with parameter overrides, spinning in this process, plus a client."""

    count = 0

    def __init__(self, **overrides):
        Running.count += 1
        self.ns = f"/t{Running.count}"
        merged = {**BASE, **overrides}
        self.node = GroundingNode(namespace=self.ns, parameter_overrides=[
            Parameter(k, value=v) for k, v in merged.items()])
        self.executor = CallbackExecutor()  # the executor run_executable spins
        self.executor.add_node(self.node)
        from ros_ground.nodes.common import autostart

        self.started = autostart(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.client = Client(namespace=self.ns)

    def state(self) -> int:
        return self.node._state_machine.current_state[0]

    def set(self, **values):
        results = self.node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        assert all(r.successful for r in results), [r.reason for r in results]

    def ask(self, prompt="Describe the image.", timeout=60.0) -> R:
        start = len(self.client.responses)
        self.client.command(prompt)
        assert self.client.wait(lambda: len(self.client.responses) > start, timeout)
        return self.client.responses[start]

    def close(self):
        self.client.close()
        self.node.shutdown_worker()
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def running(request):
    made = []

    def make(**overrides):
        made.append(Running(**overrides))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _frame(r):
    return r.node.frames.latest(CAMERA)


def _same_scene(seed: int):
    """_stream's default frame with camera noise of a few levels drawn from `seed`: the same scene."""
    noise = np.random.RandomState(seed).randint(-4, 5, (48, 64, 3))
    return np.clip(random_rgb(48, 64).astype(int) + noise, 0, 255).astype(np.uint8)


def _stream(r, rgb=None, stamp_sec=5):
    msg = r.client.stream(random_rgb(48, 64) if rgb is None else rgb, stamp_sec=stamp_sec)
    assert r.client.wait(lambda: _frame(r) is not None, 10)
    return msg


def _commands(r, count: int) -> int:
    """Stream a frame, send `count` commands at once; the index of their first response."""
    _stream(r)
    start = len(r.client.responses)
    for _ in range(count):
        r.client.command("Describe the image.")
    return start


def test_bad_model_paths_fail_configure_and_node_recovers(running, tmp_path):
    r = running(model=str(tmp_path / "missing-model"))
    assert not r.started and r.state() == State.PRIMARY_STATE_UNCONFIGURED
    corrupt_model = tmp_path / "corrupt-model"
    corrupt_model.mkdir()
    (corrupt_model / "config.json").write_text("{not json")
    r.set(model=str(corrupt_model))
    assert r.node.trigger_configure().name == "FAILURE"
    r.set(model="tiny", sam_model="vit_b", sam_checkpoint="")  # random weights: refused
    assert r.node.trigger_configure().name == "FAILURE"
    missing = tmp_path / "missing.pth"  # refused when set: configure would refuse it
    refused = r.node.set_parameters([Parameter("sam_checkpoint", value=str(missing))])[0]
    assert not refused.successful and refused.reason == f"SAM checkpoint not found: {missing}"
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04garbage" * 100)
    r.set(sam_checkpoint=str(corrupt))
    assert r.node.trigger_configure().name == "FAILURE"
    r.set(sam_model="tiny", sam_checkpoint="")
    assert r.node.trigger_configure().name == "SUCCESS"
    assert r.node.trigger_activate().name == "SUCCESS"
    _stream(r)
    assert r.ask().status == R.STATUS_OK


def test_a_refused_parameter_at_start_leaves_the_node_up_and_unconfigured(running):
    # rclpy raises while declaring an override outside its range or of another type: the node
    # (and its container) must survive it, and must not run on the defaults instead
    r = running(max_new_tokens=-5, queue_size="four")
    assert not r.started and r.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert r.node.get_parameter("max_new_tokens").value == 64  # declared, not used
    assert r.node.trigger_configure().name == "FAILURE"
    r.set(max_new_tokens=8)
    assert r.node.trigger_configure().name == "FAILURE"  # queue_size is still refused
    r.set(queue_size=2)
    assert r.node.trigger_configure().name == "SUCCESS"
    assert r.node.trigger_activate().name == "SUCCESS"
    _stream(r)
    assert r.ask().status == R.STATUS_OK
    assert r.node._engine.config.max_new_tokens == 8 and r.node.scheduler.queue_size == 2


def test_bad_text_values_at_start_are_all_named_and_mended_one_at_a_time(running):
    """rclpy declares "device: gpu" and "entity_scoring: tokenz" (strings) without a word: both
    are named at start, and setting either one right is not refused for the other's sake."""
    r = running(device="gpu", entity_scoring="tokenz")
    assert not r.started and r.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert set(r.node._refused) == {"device", "entity_scoring"}
    assert "device must be" in r.node._refused["device"]
    results = r.node.set_parameters([Parameter("max_new_tokens", value=8)])
    assert results[0].successful, results[0].reason  # an unrelated change goes through
    refused = r.node.set_parameters([Parameter("entity_scoring", value="tokenz2")])[0]
    assert not refused.successful and "entity_scoring" in refused.reason  # the change's own name
    r.set(entity_scoring="tokens")
    assert r.node.trigger_configure().name == "FAILURE"  # device is still refused
    r.set(device="cpu")
    assert r.node.trigger_configure().name == "SUCCESS"
    assert r.node._engine.config.max_new_tokens == 8


@pytest.mark.parametrize("scoring", ["tokenz", "attention"])
def test_a_rule_broken_at_start_refuses_only_what_breaks_it_again(running, scoring):
    """config/sim.yaml's min_target_score 0.15 beside a bad or attention entity_scoring given
    at start: fixing the device, or any unrelated value, must not be refused for that rule
    (nor for a default that stood in for the bad value); configure is, until it holds."""
    r = running(device="gpu", min_target_score=0.15, entity_scoring=scoring)
    assert not r.started
    r.set(device="cpu", max_new_tokens=8)
    assert r.node.trigger_configure().name == "FAILURE"  # the scoring still breaks the rule
    other = "combined" if scoring == "attention" else "attention"
    refused = r.node.set_parameters([Parameter("entity_scoring", value=other)])[0]
    assert not refused.successful and "min_target_score 0.15 needs entity_scoring tokens" in refused.reason
    r.set(entity_scoring="tokens")
    assert r.node.trigger_configure().name == "SUCCESS"


def test_a_device_torch_cannot_use_here_is_refused_when_set(running):
    """"cuda:3" would take effect at the next configure and fail it then; `ros2 param get`
    would report a device the node does not run on until that configure."""
    import torch

    r = running()
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU torch sees
    result = r.node.set_parameters([Parameter("device", value=missing)])[0]
    assert not result.successful and missing in result.reason
    assert r.node.get_parameter("device").value != missing
    r.set(device="cpu")


def test_a_setting_read_at_configure_says_so_when_set():
    changes = [Parameter("sam_model", value="tiny"), Parameter("max_new_tokens", value=6)]
    assert params.read_at_configure(params.GROUNDING_PARAMS, changes) == \
        "sam_model is read at configure: takes effect at the next configure"
    assert params.read_at_configure(params.GROUNDING_PARAMS, changes[1:]) == ""
    assert params.read_at_configure(params.GROUNDING_PARAMS, [Parameter("autostart", value=False)]) == ""
    # rclpy's own: the clock switches at once
    assert params.read_at_configure(params.GROUNDING_PARAMS, [Parameter("use_sim_time", value=True)]) == ""


def test_autostart_is_read_only_given_at_start(running):
    """autostart is read when the node starts only: read-only, as sim_camera_node's `bag`, so a
    change at run time is refused rather than accepted to do nothing; given at start it holds."""
    r = running()
    described = r.node.describe_parameter("autostart")
    assert described.read_only and "read at configure" not in described.description
    assert "read when the node starts, so read-only" in described.description
    refused = r.node.set_parameters([Parameter("autostart", value=False)])[0]
    assert not refused.successful and "read-only" in refused.reason
    assert r.node.get_parameter("autostart").value is True
    waiting = running(autostart=False)  # an override at start (launch, params file, -p)
    assert waiting.node.get_parameter("autostart").value is False
    assert waiting.state() == State.PRIMARY_STATE_UNCONFIGURED


def test_nobody_on_the_graph_can_let_a_model_run_its_code_or_download(running):
    # helper-131: `ros2 param set trust_remote_code true` and `allow_download true`, then a
    # model directory and a reconfigure, ran a repository's own code with an INFO line only
    r = running()
    for name in ("trust_remote_code", "allow_download"):
        assert r.node.describe_parameter(name).read_only
        refused = r.node.set_parameters([Parameter(name, value=True)])[0]
        assert not refused.successful and "read-only" in refused.reason
        assert r.node.get_parameter(name).value is False
    trusting = running(trust_remote_code=True)  # given at start it holds (warned: test_lmm)
    assert trusting.node.get_parameter("trust_remote_code").value is True


def test_model_values_the_next_configure_would_refuse_are_refused_when_set(running, tmp_path):
    """A missing model directory, SAM or SAM checkpoint and an uninstalled spaCy pipeline are
    refused when set, in configure's words, as a device torch cannot use is: not accepted to
    fail the next configure one error at a time."""
    from ros_ground.model_specs import spec_problems

    r = running()
    before = params.values(r.node, params.GROUNDING_PARAMS)
    for name, value, words in [
            ("model", "/nonexistent/dir", "model '/nonexistent/dir': no such directory"),
            ("sam_checkpoint", "/nonexistent.pth", "/nonexistent.pth"),
            ("spacy_model", "nonexistent_model", "spaCy pipeline 'nonexistent_model' is not installed"),
            ("sam_model", "/nonexistent/sam", "sam_model '/nonexistent/sam': no such directory")]:
        refused = r.node.set_parameters([Parameter(name, value=value)])[0]
        values = {**before, name: value}
        configure_says = str(spec_problems(values["model"], values["sam_model"],
                                           values["sam_checkpoint"] or None, "cpu", False,
                                           values["spacy_model"])[0])
        assert not refused.successful and words in refused.reason, (name, refused.reason)
        assert refused.reason == configure_says  # the next configure's own words
        assert r.node.get_parameter(name).value == before[name]
    # helper-138: beside the embedded SAM a missing checkpoint was accepted (the pair is
    # configure's to judge, the path is not)
    r.set(sam_model="sim")
    refused = r.node.set_parameters([Parameter("sam_checkpoint", value="/nonexistent.pth")])[0]
    assert not refused.successful and "/nonexistent.pth" in refused.reason, refused.reason


def test_sam_model_and_its_checkpoint_are_set_in_either_order(running, tmp_path):
    """`ros2 param dump` writes sam_checkpoint before sam_model, and a node's parameters are set
    one at a time: moving from the embedded SAM to a released one with its checkpoint, and
    back, passes through a pair that does not fit, whichever is set first. Configure judges the
    pair (helper-127: loading a dumped file refused the checkpoint, leaving vit_b without one)."""
    weights = tmp_path / "sam_vit_b.pth"
    weights.write_bytes(b"not read when set")
    r = running()
    r.set(sam_model="sim")
    r.set(sam_checkpoint=str(weights))  # dump order: the checkpoint first, beside 'sim'
    r.set(sam_model="vit_b")
    r.set(sam_model="sim")  # and back, the model first
    assert r.node.trigger_deactivate().name == "SUCCESS"
    assert r.node.trigger_cleanup().name == "SUCCESS"
    assert r.node.trigger_configure().name == "FAILURE"  # 'sim' carries its own weights
    r.set(sam_checkpoint="")
    assert r.node.trigger_configure().name == "SUCCESS"


def test_a_problem_there_at_start_does_not_refuse_other_changes(running, tmp_path):
    """A bad model given at start leaves the node unconfigured; other model settings can still
    be set (the problem is configure's to refuse), and mending it is not refused."""
    r = running(model=str(tmp_path / "missing"))
    assert not r.started
    r.set(spacy_model="en_core_web_sm", sam_model="sim")
    r.set(model="tiny", sam_model="tiny")
    assert r.node.trigger_configure().name == "SUCCESS"


def test_half_precision_on_the_cpu_is_allowed_with_a_warning_of_its_cost(running, monkeypatch):
    r = running()
    said = _Said()
    monkeypatch.setattr(r.node, "get_logger", lambda: said)
    r.set(dtype="float16")
    assert len(said.warnings) == 1 and said.warnings[0].startswith("dtype float16 on the CPU")
    assert "slower than in float32" in said.warnings[0]
    r.set(dtype="float32")
    assert len(said.warnings) == 1


def test_half_precision_on_the_cpu_is_warned_about_at_configure(monkeypatch):
    from ros_ground.lmm import load_lmm, loading

    said = []  # the logger itself: once `launch` is imported, caplog's root handler hears none
    monkeypatch.setattr(loading.LOG, "warning", lambda text, *a: said.append(text % a if a else text))
    load_lmm("tiny", device="cpu", dtype="bfloat16")
    assert any(m.startswith("dtype bfloat16 on the CPU") for m in said)


def test_setting_a_configure_time_value_to_what_it_is_says_nothing(running, monkeypatch):
    r = running()
    said = []
    monkeypatch.setattr(r.node, "get_logger", lambda: type("Log", (), {
        "info": lambda self, text, **kw: said.append(text)})())
    r.set(sam_model=r.node.get_parameter("sam_model").value)
    assert said == []
    r.set(sam_model="sim")
    assert said == ["sam_model is read at configure: takes effect at the next configure"]


def test_an_empty_model_name_is_refused_at_start_and_when_set(running):
    # an empty model name is no model: Path("") would be the current directory
    r = running(model="")
    assert not r.started and r.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert r.node._refused["model"].startswith("model must name a model, got ''")
    for name in ("sam_model", "spacy_model"):
        refused = r.node.set_parameters([Parameter(name, value=" ")])[0]
        assert not refused.successful and f"{name} must name a model" in refused.reason
    r.set(model="tiny")
    assert r.node.trigger_configure().name == "SUCCESS"


@pytest.mark.parametrize("name,value", [("device", "tpu"), ("dtype", "float7"),
                                        ("spacy_model", "xx_no_such_pipeline")])
def test_bad_device_dtype_spacy_fail_configure(running, name, value):
    r = running(**{name: value})
    assert not r.started and r.state() == State.PRIMARY_STATE_UNCONFIGURED


def test_device_dtype_and_trust_remote_code_reach_the_model(running):
    r = running(dtype="float32", trust_remote_code=False)
    import torch

    assert r.node._engine.lmm.device.type == "cpu"
    assert next(r.node._engine.lmm.model.parameters()).dtype == torch.float32


def test_a_failed_activate_leaves_the_node_inactive_with_nothing_open(running, monkeypatch):
    r = running(autostart=False)
    assert r.node.trigger_configure().name == "SUCCESS"
    subscriptions = len(list(r.node.subscriptions))

    def refuse(*args):
        raise RuntimeError("rcl refused the topic")

    monkeypatch.setattr(r.node, "_on_click", None)  # opened after the camera's subscriptions
    monkeypatch.setattr(r.node, "create_service", refuse)
    assert r.node.trigger_activate().name == "FAILURE"
    assert r.state() == State.PRIMARY_STATE_INACTIVE
    assert r.node._opened == [] and len(list(r.node.subscriptions)) == subscriptions
    monkeypatch.undo()
    assert r.node.trigger_activate().name == "SUCCESS"
    _stream(r)
    assert r.ask().status == R.STATUS_OK


def test_shutdown_while_active_answers_the_queue_and_releases_everything(running):
    r = running(queue_size=5, max_new_tokens=300)
    start = _commands(r, 3)
    assert r.client.wait(lambda: r.node.scheduler.busy and r.node.scheduler.waiting == 2, 10)
    assert r.node.trigger_shutdown().name == "SUCCESS"
    assert r.state() == State.PRIMARY_STATE_FINALIZED
    assert r.client.wait(lambda: len(r.client.responses) >= start + 3, 30)
    statuses = [x.status for x in r.client.responses[start:]]
    assert statuses.count(R.STATUS_CANCELED) >= 2 and set(statuses) <= {R.STATUS_CANCELED, R.STATUS_OK}
    assert r.node._engine is None and r.node._opened == [] and r.node._lifecycle_pubs == []


def test_autostart_false_waits_unconfigured(running):
    r = running(autostart=False)
    assert r.state() == State.PRIMARY_STATE_UNCONFIGURED and r.node._engine is None


def test_loaded_models_skip_full_garbage_collections_until_cleanup(running):
    r = running(autostart=False)
    gc.unfreeze()
    assert r.node.trigger_configure().name == "SUCCESS"
    assert gc.get_freeze_count() > 0  # a full collection no longer walks the loaded models
    assert r.node.trigger_cleanup().name == "SUCCESS"
    assert gc.get_freeze_count() == 0 and r.node._engine is None


def test_one_nodes_cleanup_leaves_the_other_nodes_models_frozen(monkeypatch):
    # gc.freeze is per process: in the composed container the proposal node's cleanup thawed
    # the grounding node's loaded models too, and full collections walked them again
    import weakref

    from ros_ground.nodes import common

    monkeypatch.setattr(common, "_MODEL_HOLDERS", weakref.WeakSet())

    class Model:  # a model with a reference cycle: only a full collection frees it
        def __init__(self):
            self.me = self

    class Node:
        pass

    proposer, grounding = Node(), Node()
    gc.unfreeze()
    dropped = proposer.model = Model()
    common.freeze_loaded_objects(proposer)
    grounding.model = Model()
    common.freeze_loaded_objects(grounding)
    dropped_ref = weakref.ref(dropped)
    del dropped, proposer.model
    common.release_memory(dropped_by=proposer)
    assert dropped_ref() is None  # the proposer's models are freed
    # the grounding node's are still exempt: not among the objects full collections walk
    assert gc.get_freeze_count() > 0
    assert not any(o is grounding.model for o in gc.get_objects())
    common.release_memory(dropped_by=grounding)
    assert gc.get_freeze_count() == 0


def test_bad_input_is_answered_and_node_keeps_serving(running):
    r = running(max_prompt_chars=50)
    _stream(r)
    for prompt, status in [("", R.STATUS_BAD_INPUT), ("   \n", R.STATUS_BAD_INPUT),
                           ("x" * 51, R.STATUS_BAD_INPUT),
                           # nothing of its own once pasted chat markup is removed
                           ("<image> USER: <image> ASSISTANT:", R.STATUS_BAD_INPUT),
                           ("USER: <image>\nWhere is the mug? ASSISTANT:", R.STATUS_OK)]:
        response = r.ask(prompt)
        assert response.status == status, (prompt, response.error)
        assert response.error or status == R.STATUS_OK
    assert r.ask().status == R.STATUS_OK


def test_max_image_pixels(running):
    r = running()
    _stream(r)
    r.set(max_image_pixels=100)
    _stream(r, random_rgb(48, 64, seed=2), stamp_sec=6)
    assert r.client.wait(lambda: _frame(r).rgb is None, 10)
    response = r.ask()
    assert response.status == R.STATUS_BAD_INPUT and "limit" in response.error


def test_max_new_tokens_and_default_prompt_via_describe(running):
    r = running(default_prompt="What is on the table?")
    _stream(r)
    r.set(max_new_tokens=3)
    start = len(r.client.responses)
    cli = r.client.node.create_client(Trigger, "describe")
    assert cli.wait_for_service(timeout_sec=10)
    reply = r.client.wait_future(cli.call_async(Trigger.Request()))
    assert reply.success and reply.message
    assert r.client.wait(lambda: len(r.client.responses) > start, 30)
    response = r.client.responses[start]
    assert response.prompt == "What is on the table?" and response.request_id == reply.message
    assert 1 <= len(response.text.split()) <= 3  # the tiny tokenizer is word-level


def test_the_command_s_target_landmark_and_relation_are_published(running):
    r = running(mode="point")
    _stream(r)
    response = r.ask("Put the red cube behind the blue tray.")
    assert response.status == R.STATUS_OK
    assert [p.text for p in response.prompt_phrases] == ["the red cube", "the blue tray"]
    assert (response.target, response.landmark) == (0, 1)
    assert response.relation == R.RELATION_BEHIND and response.destination
    response = r.ask("Put the red cube into the blue tray.")
    assert (response.target, response.landmark) == (0, 1)
    assert response.relation == R.RELATION_IN and response.destination
    response = r.ask("Where is the cube?")
    assert (response.landmark, response.relation, response.destination) == (-1, "", False)


def test_publish_overlay_switch(running):
    r = running(publish_overlay=False)
    _stream(r)
    r.ask()
    time.sleep(0.5)
    assert not r.client.overlays
    r.set(publish_overlay=True)
    r.ask()
    assert r.client.wait(lambda: r.client.overlays, 10)
    # a command's target is drawn beside the answer's phrases, as the markers show it
    response = r.ask("Pick up the red mug.")
    assert 0 <= response.target < len(response.prompt_phrases)
    assert r.client.wait(lambda: r.client.overlays[-1].header.stamp == response.header.stamp, 10)
    rgb, answer = _frame(r).rgb, [msg_to_phrase(p) for p in response.phrases]
    prompt = [msg_to_phrase(p) for p in response.prompt_phrases]
    drawn = image_to_rgb(r.client.overlays[-1])
    np.testing.assert_array_equal(drawn, draw_overlay(rgb, with_target(answer, prompt, response.target)))
    assert (drawn != draw_overlay(rgb, answer)).any()


def test_image_qos_reliable_and_invalid(running):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    r = running(image_qos="reliable")
    msg = r.client.stream(random_rgb(48, 64))  # the helper publishes best effort: no match
    time.sleep(1.5)
    assert _frame(r) is None
    r.client._frame = None
    reliable = r.client.node.create_publisher(
        Image, "image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    assert r.client.wait(lambda: (reliable.publish(msg) or _frame(r) is not None), 10)
    assert r.ask().status == R.STATUS_OK
    assert not r.node.set_parameters([Parameter("image_qos", value="fastest")])[0].successful


def test_image_qos_best_effort_subscriber_receives_sensor_stream(running):
    r = running(image_qos="best_effort")
    _stream(r)
    assert r.ask().status == R.STATUS_OK


def _proposal_msg(stamp_sec, nanosec=0, shape=(48, 64)):
    masks = []
    for i in range(2):
        m = np.zeros(shape, bool)
        m[:, i * 32:(i + 1) * 32] = True
        masks.append(m)
    from std_msgs.msg import Header

    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = stamp_sec, nanosec
    return proposals_to_msg([Proposal(id=i + 1, mask=m, score=0.9) for i, m in enumerate(masks)],
                            header)


def test_mode_and_proposal_tolerance(running):
    r = running(proposal_tolerance_s=0.05)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    pub.publish(_proposal_msg(5, 200_000_000))  # 0.2 s off the frame
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    response = r.ask()
    assert response.mode == "point"  # outside tolerance: auto resolves to point, and says so
    assert all(not p.entity_ids for p in response.phrases)
    r.set(proposal_tolerance_s=0.5)
    response = r.ask()
    phrases = response.phrases
    assert response.mode == "entities"
    assert phrases and all(set(p.entity_ids) <= {1, 2} and p.entity_ids for p in phrases)
    r.set(mode="point")
    assert all(not p.entity_ids for p in r.ask().phrases)
    r.set(mode="entities")
    assert all(p.entity_ids for p in r.ask().phrases)


def test_auto_grounds_on_an_older_frame_with_proposals_within_max_age(running):
    r = running(proposal_tolerance_s=0.05, proposal_max_age_s=0.0)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 5, 10)
    r.set(proposal_max_age_s=3.0)  # frames are kept from now on
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    r.client.stream(_same_scene(1), stamp_sec=7)  # newer, no proposals yet
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 7, 10)

    response = r.ask()
    assert (response.mode, response.header.stamp.sec) == ("entities", 5)
    assert response.phrases and all(p.entity_ids for p in response.phrases)
    r.set(mode="point")  # only `auto` swaps frames
    assert (r.ask().header.stamp.sec, r.ask().mode) == (7, "point")
    r.set(mode="auto", proposal_max_age_s=1.5)  # the frame with proposals is 2 s older
    response = r.ask()
    assert (response.mode, response.header.stamp.sec) == ("point", 7)
    r.set(proposal_max_age_s=0.0)
    assert (r.ask().header.stamp.sec, r.ask().mode) == (7, "point")
    assert not r.node.set_parameters([Parameter("proposal_max_age_s", value=-1.0)])[0].successful


def test_a_frame_whose_proposal_run_outlasts_the_kept_frames_still_pairs(running):
    """A proposal run can take longer than the frames kept by count last (zoom crops on a
    CPU, a 30 Hz camera): the proposal node's proposals_started keeps that frame until its
    proposals come, so auto mode grounds on it instead of falling back to point prompts."""
    from std_msgs.msg import Header

    from ros_ground.frames import FrameStore

    r = running(proposal_tolerance_s=0.05, proposal_max_age_s=60.0)
    r.node.frames = r.node.sensors.frames = FrameStore(max_frames=3)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    started = r.client.node.create_publisher(Header, "proposals_started", RELIABLE)
    assert r.client.wait(lambda: r.node.count_publishers(pub.topic_name) > 0, 10)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    started.publish(_proposal_msg(5).header)  # the run on frame 5 begins
    assert r.client.wait(lambda: r.node.frames.kept_count(CAMERA) == 1, 10)
    for sec in range(6, 12):  # the run outlasts the three frames kept by count
        r.client.stream(_same_scene(sec), stamp_sec=sec)
        assert r.client.wait(lambda sec=sec: _frame(r).header.stamp.sec == sec, 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    response = r.ask()
    assert (response.mode, response.header.stamp.sec) == ("entities", 5)
    assert response.phrases and all(p.entity_ids for p in response.phrases)


@pytest.mark.parametrize("max_frame_age_s", [1.0, 0.0])
def test_a_proposal_runs_frame_older_than_max_frame_age_is_not_answered_on(running, max_frame_age_s):
    """The scene may have changed since the run's frame (helper-103: a cube moved, the answer
    put it where it was, STATUS_OK): in auto mode that frame pairs by its run only while it is
    as fresh as a command's own frame must be; max_frame_age_s 0 accepts any age."""
    from std_msgs.msg import Header

    r = running(proposal_tolerance_s=0.05, max_frame_age_s=max_frame_age_s)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    started = r.client.node.create_publisher(Header, "proposals_started", RELIABLE)
    assert r.client.wait(lambda: r.node.count_publishers(pub.topic_name) > 0, 10)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    started.publish(_proposal_msg(5).header)
    assert r.client.wait(lambda: r.node.frames.kept_count(CAMERA) == 1, 10)
    r.client.stream(_same_scene(6), stamp_sec=7)  # the run took 2 s: pairs up to 4 s
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 7, 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    time.sleep(1.2)  # frame 5 is now received more than 1 s ago
    r.client.stream(_same_scene(8), stamp_sec=8)
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 8, 10)
    response = r.ask()
    assert response.status == R.STATUS_OK
    want = ("entities", 5) if max_frame_age_s == 0.0 else ("point", 8)
    assert (response.mode, response.header.stamp.sec) == want


@pytest.mark.parametrize("max_frame_age_s", [1.0, 0.0])
def test_an_older_frame_of_another_scene_is_never_answered_on(running, max_frame_age_s):
    """helper-108: the sim camera's `seed` changed the scene, and for seconds "Pick up the red
    mug." was answered OK on the frame of the last proposal run, with the mug's position, in a
    scene without a mug: proposal_max_age_s (config/sim.yaml: 10 s) says the scene holds still,
    but the pixels say otherwise (scene_change.same_scene)."""
    r = running(proposal_tolerance_s=0.05, proposal_max_age_s=10.0, max_frame_age_s=max_frame_age_s)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    r.client.stream(random_rgb(48, 64, seed=3), stamp_sec=6)  # another scene
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 6, 10)
    response = r.ask()
    assert response.status == R.STATUS_OK
    assert (response.mode, response.header.stamp.sec) == ("point", 6)
    r.client.stream(_same_scene(7), stamp_sec=7)  # the first scene back: its proposals fit again
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 7, 10)
    response = r.ask()
    assert (response.mode, response.header.stamp.sec) == ("entities", 5)


def test_frames_are_kept_only_while_a_proposal_node_publishes(running):
    r = running(proposal_max_age_s=10.0)
    _stream(r, stamp_sec=5)
    r.client.stream(random_rgb(48, 64, seed=1), stamp_sec=6)
    assert r.client.wait(lambda: _frame(r).header.stamp.sec == 6, 10)
    assert not r.node.frames.recent_count(CAMERA)  # nobody publishes proposals: nothing to pair a frame with
    r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)


def test_a_goal_with_its_own_image_is_never_swapped_for_an_older_frame(running):
    from ros_ground_msgs.action import Ground

    from ros_ground.nodes.conversions import rgb_to_image_msg

    r = running(proposal_tolerance_s=0.05, proposal_max_age_s=10.0)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    image = rgb_to_image_msg(random_rgb(48, 64, seed=2))
    image.header.stamp.sec = 8
    assert r.client.action.wait_for_server(timeout_sec=10)
    handle = r.client.wait_future(r.client.action.send_goal_async(Ground.Goal(
        prompt="Describe the image.", image=image)))
    response = r.client.wait_future(handle.get_result_async()).result.response
    assert response.status == R.STATUS_OK
    assert (response.mode, response.header.stamp.sec) == ("point", 8)


def test_a_goals_own_image_takes_the_cameras_proposals_only_when_it_is_the_cameras_frame(running):
    # another picture stamped as a camera frame must not be grounded with that frame's entity
    # masks (they outline other objects) and answered OK
    from ros_ground_msgs.action import Ground

    from ros_ground.nodes.conversions import rgb_to_image_msg
    from ros_ground.nodes.grounding_node import OWN_IMAGE_UNLOCATED

    r = running(proposal_tolerance_s=0.05, proposal_max_age_s=10.0)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    camera_msg = _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.recent_count(CAMERA), 10)
    pub.publish(_proposal_msg(5))
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    other = rgb_to_image_msg(random_rgb(48, 64, seed=2))
    other.header = camera_msg.header  # stamped as the camera frame, other pixels
    assert r.client.action.wait_for_server(timeout_sec=10)
    answers = []
    for image in (other, camera_msg):
        handle = r.client.wait_future(r.client.action.send_goal_async(Ground.Goal(
            prompt="Describe the image.", image=image, mode="auto")))
        answers.append(r.client.wait_future(handle.get_result_async()).result.response)
    assert [a.status for a in answers] == [R.STATUS_OK, R.STATUS_OK]
    assert [a.mode for a in answers] == ["point", "entities"]
    assert answers[0].position_error == OWN_IMAGE_UNLOCATED
    assert answers[1].position_error != OWN_IMAGE_UNLOCATED


def _image_keys(r, monkeypatch) -> list:
    """The list each grounding of node `r` appends its SAM image key to."""
    keys = []
    ground = r.node._engine.ground
    monkeypatch.setattr(r.node._engine, "ground",
                        lambda *a, **k: keys.append(k.get("image_key")) or ground(*a, **k))
    return keys


def test_a_goals_own_image_is_named_by_its_pixels_not_its_header(running, monkeypatch):
    # clients send one header (often a zero stamp) with every image; keyed by it, SAM would
    # segment the second image with the first one's embedding and answer OK
    from ros_ground_msgs.action import Ground

    from ros_ground.nodes.conversions import rgb_to_image_msg

    r = running()
    seen = _image_keys(r, monkeypatch)
    _stream(r, stamp_sec=5)
    assert r.client.wait(lambda: r.node.frames.latest(CAMERA) is not None, 10)
    assert r.ask().status == R.STATUS_OK
    assert seen[-1] is not None and seen[-1][1] == 5 * 10**9  # a camera frame: by its stamp
    assert r.client.action.wait_for_server(timeout_sec=10)
    for seed in (2, 3):
        image = rgb_to_image_msg(random_rgb(48, 64, seed=seed))  # zero stamp, same header
        handle = r.client.wait_future(r.client.action.send_goal_async(Ground.Goal(
            prompt="Describe the image.", image=image)))
        assert r.client.wait_future(handle.get_result_async()).result.response.status == R.STATUS_OK
        assert seen[-1] is None


def test_frames_with_one_header_and_other_pixels_are_embedded_apart(running, monkeypatch):
    # a second picture with the first one's frame_id and stamp (a replay) gets its own SAM
    # embedding: keyed by the header alone, its masks would be cut from the first picture's
    r = running()
    keys = _image_keys(r, monkeypatch)
    said = _Said()
    monkeypatch.setattr(r.node, "get_logger", lambda: said)
    first, second = random_rgb(48, 64, seed=1), random_rgb(48, 64, seed=2)
    _stream(r, first, stamp_sec=5)
    assert r.ask().status == R.STATUS_OK
    assert r.ask().status == R.STATUS_OK  # the same frame (republished): the same key
    r.client.stream(second, stamp_sec=5)
    assert r.client.wait(lambda: np.array_equal(_frame(r).rgb, second), 10)
    assert r.ask().status == R.STATUS_OK
    assert keys[0] is not None and keys[0] == keys[1] != keys[2], keys
    repeated = [w for w in said.warnings if "the previous frame's frame_id 'cam'" in w]
    assert len(repeated) == 1, said.warnings  # once per camera, however often it repeats
    assert repeated[0].startswith(f"a frame on '{r.ns}/image' has the previous frame's"), repeated


def test_request_ids_name_the_node_and_its_start_and_a_twin_is_warned_about(running, monkeypatch):
    # a request id names the node's namespace and its start, so nodes in /a and /b, and one node
    # across restarts, never share one; two nodes of one name in one namespace (each command
    # answered twice) are warned about
    r = running()
    response = r.ask()
    assert response.request_id.startswith(f"{r.ns}/grounding_node-"), response.request_id
    twin = GroundingNode(namespace=r.ns, parameter_overrides=[Parameter("autostart", value=False)])
    try:
        assert twin._next_id() != response.request_id  # a restart: another start's ids
        assert twin._next_id().startswith(f"{r.ns}/grounding_node-")
        fq = f"{r.ns}/grounding_node"
        assert r.client.wait(lambda: sum(f"{ns}/{n}" == fq for n, ns in
                                         r.node.get_node_names_and_namespaces()) == 2, 10)
        said = _Said()
        monkeypatch.setattr(r.node, "get_logger", lambda: said)
        assert r.node.trigger_deactivate().name == "SUCCESS"
        assert r.node.trigger_activate().name == "SUCCESS"
        assert [w for w in said.warnings if "nodes named" in w] == [
            f"2 nodes named {fq} are running: each command, click and describe gets a response "
            "from each; give each its own name or namespace"], said.warnings
    finally:
        twin.shutdown_worker()
        twin.destroy_node()


def test_bad_proposals_are_ignored_with_a_warning(running):
    r = running(proposal_tolerance_s=0.5)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    bad = _proposal_msg(5, shape=(10, 10))  # masks of the wrong size
    pub.publish(bad)
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    response = r.ask()
    assert response.status == R.STATUS_OK and all(not p.entity_ids for p in response.phrases)


def test_a_message_of_too_many_proposals_is_ignored_with_a_warning_naming_the_limit(running, monkeypatch):
    """trial132 D2: every proposal's mask was decoded to a full frame before anything else:
    20000 (1.2 MB on the wire) took the node from 1.3 to 2.4 GB. More than MAX_PROPOSALS are
    refused before any mask is decoded, with the frame grounded as if none had come."""
    from ros_ground.results import MAX_PROPOSALS

    r = running(proposal_tolerance_s=0.5)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    _stream(r, stamp_sec=5)
    msg = _proposal_msg(5)
    msg.entities = [type(msg.entities[0])(id=i, mask=msg.entities[0].mask, score=0.9, stability=0.9)
                    for i in range(MAX_PROPOSALS + 1)]
    said = _Said()
    monkeypatch.setattr(r.node, "get_logger", lambda: said)
    pub.publish(msg)
    assert r.client.wait(lambda: r.node.frames.proposal_count(CAMERA), 10)
    response = r.ask()
    assert response.status == R.STATUS_OK and all(not p.entity_ids for p in response.phrases)
    assert {w for w in said.warnings if w.startswith("ignoring proposals")} == {  # throttled by rclpy
        f"ignoring proposals for this frame: {MAX_PROPOSALS + 1} proposals, above the limit of "
        f"{MAX_PROPOSALS} a message"}, said.warnings


def test_live_thresholds_reach_the_engine(running):
    r = running()
    r.set(normalise_maps=False, phrase_tokens="chunk", multimask_choice="2", entity_margin=0.3,
          phrase_contrast=0.25, entity_assignment="independent",
          attention_views=["identity", "vflip"])
    cfg = r.node._engine.config
    assert (cfg.normalise, cfg.phrase_tokens, cfg.multimask_choice, cfg.entity_margin,
            cfg.phrase_contrast, cfg.entity_assignment, cfg.attention_views) == (
        False, "chunk", 2, 0.3, 0.25, "independent", ("identity", "vflip"))
    for name, value in [("mode", "magic"), ("phrase_tokens", "all"), ("multimask_choice", "7"),
                        ("queue_size", -1), ("entity_margin", -1.0), ("entity_assignment", "greedy"),
                        ("phrase_contrast", 1.5), ("attention_views", ["identity", "mirror"]),
                        ("attention_views", ["vflip", "vflip"]), ("default_prompt", ""),
                        ("default_prompt", "\u200b"), ("default_prompt", "\x00 ?"),
                        ("region_prompt", "   "), ("region_prompt", "<image>"),
                        ("default_prompt", "USER: <image>\nASSISTANT:")]:  # no word: fails each describe
        assert not r.node.set_parameters([Parameter(name, value=value)])[0].successful, name


def test_queue_size_zero_rejects_while_busy(running):
    r = running(queue_size=0, max_new_tokens=200)
    start = _commands(r, 3)
    assert r.client.wait(lambda: len(r.client.responses) >= start + 3, 60)
    statuses = [x.status for x in r.client.responses[start:start + 3]]
    assert statuses.count(R.STATUS_REJECTED_BUSY) >= 1 and R.STATUS_OK in statuses


def test_deactivate_answers_queued_requests(running):
    r = running(queue_size=5, max_new_tokens=300)
    start = _commands(r, 3)
    assert r.client.wait(lambda: r.node.scheduler.waiting >= 1 or r.node.scheduler.busy, 10)
    time.sleep(0.2)
    r.node.trigger_deactivate()
    assert r.client.wait(lambda: len(r.client.responses) >= start + 3, 30)
    statuses = [x.status for x in r.client.responses[start:start + 3]]
    assert all(s in (R.STATUS_CANCELED, R.STATUS_OK) for s in statuses)
    assert R.STATUS_CANCELED in statuses


def test_model_error_fails_one_request_and_the_next_works(running, monkeypatch):
    r = running()
    _stream(r)
    original = r.node._engine.lmm.generate
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(r.node._engine.lmm, "generate", flaky)
    frozen = gc.get_freeze_count()
    first = r.ask()
    assert first.status == R.STATUS_MODEL_ERROR and "out of memory" in first.error
    assert r.ask().status == R.STATUS_OK
    # the models stay exempt (a frozen object can still die by refcount, so not exactly equal)
    assert frozen > 0 and gc.get_freeze_count() > 0.9 * frozen


def test_many_waiting_goals_hold_no_thread_and_every_request_is_answered_once(running):
    from ros_ground_msgs.action import Ground

    r = running(queue_size=30, max_new_tokens=6, attention_views=["identity"])
    _stream(r)
    # a client that sends a burst needs a history as deep as the server's (the default is 10)
    action = r.client.action_client(goal_service_qos_profile=RELIABLE,
                                     result_service_qos_profile=RELIABLE)
    assert action.wait_for_server(timeout_sec=10)
    start = len(r.client.responses)
    sent = [action.send_goal_async(Ground.Goal(prompt="Describe the image.")) for _ in range(25)]
    for _ in range(3):
        r.client.command("Describe the image.")
    handles = [r.client.wait_future(f) for f in sent]
    assert all(h.accepted for h in handles)
    results = [h.get_result_async() for h in handles]
    # 25 goals wait (more than the executor's threads): the node still takes a new command,
    # and it is answered before the goals are all done (the queue takes sources in turn)
    assert r.client.wait(lambda: r.node.scheduler.waiting >= 10, 30)
    r.client.command("What is on the table?")
    assert r.client.wait(lambda: any(x.prompt == "What is on the table?"
                                     for x in r.client.responses[start:]), 120)
    assert not all(f.done() for f in results)
    answers = [r.client.wait_future(f, 300).result.response for f in results]
    assert all(a.status == R.STATUS_OK for a in answers), {a.status for a in answers}
    assert r.client.wait(lambda: len(r.client.responses) >= start + 29, 60)
    time.sleep(0.5)
    published = r.client.responses[start:]
    ids = [x.request_id for x in published]
    assert len(published) == 29 and len(set(ids)) == 29  # exactly one response each
    assert {a.request_id for a in answers} <= set(ids)
    r.client.destroy_action_client(action)


def test_a_failure_inside_the_model_is_model_error_even_when_it_is_a_value_error(
        running, monkeypatch):
    r = running()
    _stream(r)

    def bad_shapes(*args, **kwargs):
        raise ValueError("shapes (3,4) and (5,6) not aligned")  # as torch/transformers raise

    monkeypatch.setattr(r.node._engine.lmm, "generate", bad_shapes)
    response = r.ask()
    assert response.status == R.STATUS_MODEL_ERROR and "not aligned" in response.error
    monkeypatch.undo()
    assert r.ask().status == R.STATUS_OK
    assert r.ask("x").status == R.STATUS_OK
    start = len(r.client.responses)
    from ros_ground_msgs.action import Ground

    assert r.client.action.wait_for_server(timeout_sec=10)
    handle = r.client.wait_future(r.client.action.send_goal_async(
        Ground.Goal(prompt="Describe the image.", mode="magic")))
    response = r.client.wait_future(handle.get_result_async()).result.response
    assert response.status == R.STATUS_BAD_INPUT and "mode" in response.error
    assert r.client.wait(lambda: len(r.client.responses) > start, 10)


def test_compile_on_compiles_while_configuring_and_answers_as_eager(running, monkeypatch):
    from ros_ground.lmm import compiled

    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")  # inductor's C++ takes minutes here
    rgb = random_rgb(48, 64, seed=3)
    answers = []
    for compile in ("off", "on"):
        r = running(compile=compile)
        decoder = r.node._engine.lmm.decoder
        assert (decoder is not None) == (compile == "on")
        if decoder is not None:  # compiled before the first request, for the default prompt's
            assert decoder._step is not None and decoder.cache_length >= 8
        _stream(r, rgb)
        answers.append(r.ask("Describe the image."))
        assert answers[-1].status == R.STATUS_OK
    assert answers[0].text == answers[1].text and answers[1].text
    assert [p.text for p in answers[0].phrases] == [p.text for p in answers[1].phrases]
    # configuring again compiles again: cleanup released dynamo's code (a fullgraph compile
    # past its recompile limit raises, and the node would quietly decode eagerly)
    import torch

    with torch._dynamo.config.patch(recompile_limit=1):
        for tokens in (300, 8):  # another cache length each time: another graph
            r.set(max_new_tokens=tokens)
            for transition in ("deactivate", "cleanup", "configure", "activate"):
                assert getattr(r.node, f"trigger_{transition}")().name == "SUCCESS", transition
            decoder = r.node._engine.lmm.decoder
            assert decoder is not None and decoder._step is not None
    # a command longer than the compiled cache: answered, eagerly
    _stream(r, rgb, stamp_sec=6)
    assert r.ask("the " * (decoder.cache_length + 5)).status == R.STATUS_OK
    assert decoder.eager_requests == 1 and r.node._eager_said == 1


def test_a_bare_yaml_on_for_a_text_setting_is_taken_as_the_choice_or_refused_with_the_fix(running):
    r = running(compile=False)  # what `compile: off` or -p compile:=off gives: the choice "off"
    assert r.started and r.node.get_parameter("compile").value == "off"
    r = running(phrase_tokens=True)  # chunk / root: no choice a boolean could mean
    assert not r.started
    assert "quote the text" in r.node._refused["phrase_tokens"]


def test_the_demo_graph_command_sets_compile_off():
    from ros_ground.nodes.demo import _graph_command

    cmd = _graph_command(None, None)
    node = GroundingNode(namespace="/demo_args", cli_args=cmd[cmd.index("--ros-args"):])
    try:
        assert node.get_parameter("compile").value == "off" and not node._refused
    finally:
        node.destroy_node()


def test_a_failed_compilation_leaves_the_node_decoding_eagerly(running, monkeypatch):
    from ros_ground.lmm import LMMAdapter

    def fail(self, prompt, max_new_tokens):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(LMMAdapter, "warm_up", fail)
    r = running(compile="on")
    assert r.started and r.node._engine.lmm.decoder is None
    _stream(r)
    assert r.ask().status == R.STATUS_OK


def test_ask_names_the_camera_its_goal_is_about(running):
    # `ros-ground ask --camera`: a multi-camera node could be asked about its first camera only
    from ros_ground.nodes.ask import ask

    r = running()
    _stream(r)
    response = ask(r.client.node, "Describe the image.", r.ns, camera="left", timeout=60.0)
    assert response.status == R.STATUS_BAD_INPUT and "unknown camera 'left'" in response.error
    assert ask(r.client.node, "Describe the image.", r.ns, timeout=60.0).status == R.STATUS_OK


class _Said:
    """A logger recording warnings and infos (monkeypatched in for the node's) that refuses, as
    rclpy's does, a call site whose severity changes (`(warning if stopped else info)(change)`
    raises there, and the message is lost)."""

    def __init__(self):
        self.warnings, self.infos = [], []
        self._sites = {}

    def _check(self, severity: str) -> None:
        from rclpy.impl.rcutils_logger import CallerId

        site = CallerId(sys._getframe(2))  # the node's line that called warning / info
        if self._sites.setdefault(site, severity) != severity:
            raise ValueError("Logger severity cannot be changed between calls.")

    def warning(self, text, **_):
        self._check("warning")
        self.warnings.append(text)

    def info(self, text, **_):
        self._check("info")
        self.infos.append(text)

    def __getattr__(self, name):
        return lambda *a, **k: None


def test_proposals_that_stop_arriving_are_warned_about_and_their_return_said(running, monkeypatch):
    # proposals that stop arriving (mask_proposal_node killed, composed:=false) switch answers
    # from entities to point mode: the grounding node's log says so, and says when they return
    r = running(proposal_tolerance_s=0.5)
    said = _Said()
    monkeypatch.setattr(r.node, "get_logger", lambda: said)
    _stream(r, stamp_sec=5)
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    assert r.client.wait(lambda: pub.publish(_proposal_msg(5)) or r.node.frames.proposal_count(CAMERA), 10)
    with r.client._spinning:
        r.client.node.destroy_publisher(pub)  # the proposal node dies
    stopped = f"proposals on '{r.ns}/proposals' stopped (nothing publishes on it now)"
    assert r.client.wait(lambda: any(w.startswith(stopped) for w in said.warnings), 15), said.warnings
    pub = r.client.node.create_publisher(EntityProposals, "proposals", RELIABLE)
    assert r.client.wait(lambda: pub.publish(_proposal_msg(5)) or (
        f"proposals on '{r.ns}/proposals' arrive again" in said.infos), 15), said.infos
    assert sum(w.startswith(f"proposals on '{r.ns}/proposals'") for w in said.warnings) == 1


def test_frames_without_a_frame_id_are_warned_about_for_topics_and_goals_alike(running, monkeypatch):
    # a frame with an empty header.frame_id is answered in no frame: warned about, whether it
    # came as an ask goal's image or on the image topic
    from ros_ground_msgs.action import Ground

    from ros_ground.nodes.conversions import rgb_to_image_msg

    r = running()
    said = _Said()
    monkeypatch.setattr(r.node, "get_logger", lambda: said)
    image = rgb_to_image_msg(random_rgb(48, 64, seed=2))  # frame_id ""
    assert r.client.action.wait_for_server(timeout_sec=10)
    for _ in range(2):
        handle = r.client.wait_future(r.client.action.send_goal_async(Ground.Goal(
            prompt="Describe the image.", image=image)))
        response = r.client.wait_future(handle.get_result_async()).result.response
        assert (response.status, response.header.frame_id) == (R.STATUS_OK, "")
    r.client.stream(random_rgb(48, 64), stamp_sec=5, frame_id="")
    assert r.client.wait(lambda: _frame(r) is not None, 10)
    assert r.ask().status == R.STATUS_OK
    r.ask()
    empty = [w for w in said.warnings if "empty header.frame_id" in w]
    assert empty == [
        "ask goals' own images for camera '' have an empty header.frame_id: their responses, 3-D "
        "positions and markers name no tf frame; set it to the camera's optical frame",
        f"frames on '{r.ns}/image' have an empty header.frame_id: their responses, 3-D positions "
        "and markers name no tf frame; set it to the camera's optical frame"], said.warnings


def test_a_response_says_whether_its_command_asks_the_robot_to_act(running):
    r = running()
    _stream(r)
    acted, asked = r.ask("Pick up the red mug."), r.ask("Where is the red mug?")
    assert (acted.status, asked.status) == (R.STATUS_OK, R.STATUS_OK)
    assert (acted.intent, asked.intent) == (R.INTENT_ACT, R.INTENT_LOCATE)
    assert acted.target == asked.target == 0


def test_a_refused_prompt_is_sent_back_shortened(running):
    # trial132 D7: a 10.8 MB command refused as too long went back whole in its response's prompt
    r = running(max_prompt_chars=50)
    _stream(r)
    refused = r.ask("x" * 100_000)
    assert refused.status == R.STATUS_BAD_INPUT and "100000 characters" in refused.error
    assert refused.prompt == "x" * 200 + "... (100000 characters)"
    assert r.ask("y" * 50).prompt == "y" * 50  # accepted: bounded by max_prompt_chars already


def test_rejected_requests_are_all_answered_but_logged_once_per_5_s(running):
    # trial132 D8: each of 1660 empty commands in 10 s logged its own WARN on /rosout
    from rcl_interfaces.msg import Log

    r = running()
    _stream(r)
    logged = []
    with r.client._spinning:  # made while the spin thread waits
        r.client.node.create_subscription(
            Log, "/rosout", lambda m: logged.append(m.msg) if m.name.endswith("grounding_node")
            and m.msg.startswith("request ") else None, 1000)
    start = len(r.client.responses)
    for _ in range(20):
        r.client.command("")
    assert r.client.wait(lambda: len(r.client.responses) >= start + 20, 30)
    assert [m.status for m in r.client.responses[start:]] == [R.STATUS_BAD_INPUT] * 20
    time.sleep(1.0)  # for /rosout to deliver what was logged
    assert len(logged) == 1 and logged[0].endswith(": empty prompt"), logged
