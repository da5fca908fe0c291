"""mask_proposal_node's worker: the newest frame wins, and runs rest `min_period_s` between them."""

import threading
import time

import numpy as np
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


def test_cameras_take_turns_when_one_floods(node):
    node.set_parameters([Parameter("min_period_s", value=0.0)])
    served = []
    node._propose = lambda msg, camera="": (time.sleep(0.1), served.append(camera))
    deadline = time.monotonic() + 2.0
    sec = 0
    while time.monotonic() < deadline:
        sec += 1
        for _ in range(5):  # left floods: five frames for each of right's
            node._on_image(_frame(sec), "left")
        node._on_image(_frame(sec), "right")
        time.sleep(0.05)
    time.sleep(0.3)
    assert served.count("right") >= 5
    assert abs(served.count("left") - served.count("right")) <= 2, served


def test_cameras_have_their_own_image_and_proposals_topics():
    from ros_ground.nodes.common import autostart

    node = MaskProposalNode(name="proposal_cameras_test", namespace="/pcam", parameter_overrides=[
        Parameter("sam_model", value="tiny"), Parameter("device", value="cpu"),
        Parameter("cameras", value=["left", "right"]),
        Parameter("image_transport", value="compressed")])
    said, logger = [], node.get_logger()

    class Recorder:  # the info lines, the rest to the node's logger
        def info(self, text, **kwargs):
            said.append(text)

        def __getattr__(self, name):
            return getattr(logger, name)

    node.get_logger = Recorder
    try:
        assert autostart(node)
        assert {c: i.topic for c, i in node.inputs.items()} == {
            "left": "/pcam/left/image/compressed", "right": "/pcam/right/image/compressed"}
        # a standalone node says what it loaded and what it listens to
        assert any(line.startswith("loaded SAM 'tiny' on cpu in ") for line in said), said
        assert ("active: proposals for frames on /pcam/left/image/compressed, "
                "/pcam/right/image/compressed (every_n_frames 1, min_period_s 1)") == said[-1], said
        topics = dict(node.get_publisher_names_and_types_by_node("proposal_cameras_test", "/pcam"))
        assert {"/pcam/left/proposals", "/pcam/right/proposals", "/pcam/left/proposals_started",
                "/pcam/right/proposals_started"} <= set(topics)
    finally:
        node.shutdown_worker()
        node.destroy_node()


def test_the_zoom_crops_a_frame_costs_are_logged_once_per_camera_and_size(node):
    """With proposal_zoom each crop is an encoder pass (seconds on a CPU): the node says how
    many a camera's frames get, when the camera or its size or the cap first appears."""
    said = []
    node.get_logger = lambda: type("Log", (), {"info": lambda self, text: said.append(text)})()
    for camera, size, cap, mag in [("", (450, 800), 16, 1.0), ("", (450, 800), 16, 1.0),
                                   ("left", (450, 800), 16, 1.0), ("", (450, 800), 16, 1.0),
                                   ("", (4096, 4096), 16, 1.0), ("", (4096, 4096), 4, 1.0),
                                   ("", (4096, 4096), 4, 1.0), ("", (450, 800), 32, 1.6)]:
        node._log_zoom(camera, size, 320, cap, mag)
    assert said == ["image: 800x450 frames: 8 zoom crops of 320x320 px besides the whole frame, "
                    "one SAM encoder pass each",
                    "left: 800x450 frames: 8 zoom crops of 320x320 px besides the whole frame, "
                    "one SAM encoder pass each"] + said[2:]
    assert len(said) == 5 and "16 zoom crops" in said[2] and "4 zoom crops" in said[3]
    assert said[4].endswith("28 zoom crops of 200x200 px besides the whole frame, one SAM encoder "
                            "pass each, magnified 1.60x to SAM's 320-px input")


def test_a_stop_ends_a_run_in_flight_between_batches():
    """A run takes up to a minute on a CPU; the node's stop must end it within seconds."""
    from ros_ground.sam.proposals import ProposalsStopped

    node = MaskProposalNode(name="proposal_stop_test")
    started = threading.Event()

    class SlowSam:  # a run that only a stop ends, asking between "batches" as mask_proposals does
        img_size, feature_source = 64, "test"

        def propose(self, rgb, key=None, should_stop=lambda: False, **amg):
            started.set()
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                if should_stop():
                    raise ProposalsStopped("stopped")
                time.sleep(0.01)
            return []

    node._sam = SlowSam()
    frame = Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(48))
    node.set_parameters([Parameter("min_period_s", value=0.0)])
    node._on_image(frame)
    assert started.wait(5.0)
    t0 = time.monotonic()
    node.shutdown_worker()
    assert not node._worker.is_alive() and time.monotonic() - t0 < 1.0
    node.destroy_node()


def test_a_long_proposal_run_is_said(monkeypatch):
    """One 5 MP frame held a shared SAM for two minutes and nothing said so."""
    from ros_ground.nodes import mask_proposal_node

    node = MaskProposalNode(name="proposal_slow_test")
    said = []
    node.get_logger = lambda: type("Log", (), {
        "warning": lambda self, text, **kw: said.append(text), "info": lambda self, text: None})()

    class Sam:
        img_size, feature_source = 64, "test"

        def propose(self, rgb, key=None, should_stop=lambda: False, **amg):
            time.sleep(0.05)
            return []

    node._sam = Sam()
    frame = Image(height=4, width=6, encoding="rgb8", step=18, data=bytes(72))
    node._propose(frame)
    assert said == []
    monkeypatch.setattr(mask_proposal_node, "SLOW_RUN_S", 0.01)
    node._propose(frame)
    assert len(said) == 1 and said[0].startswith("image: proposals for a 6x4 frame took 0 s")
    assert "points_per_side 32" in said[0] or "points_per_side 16" in said[0]
    node.shutdown_worker()
    node.destroy_node()


def test_a_run_sends_no_more_proposals_than_the_grounding_node_takes(monkeypatch):
    """trial132 D2: the grounding node refuses a message of more than MAX_PROPOSALS proposals or
    MAX_PROPOSAL_PIXELS mask pixels; max_entities is bounded by the one, a run's cut by both."""
    from ros_ground import results
    from ros_ground.results import MAX_PROPOSALS, Proposal

    node = MaskProposalNode(name="proposal_budget_test")
    assert not node.set_parameters([Parameter("max_entities", value=MAX_PROPOSALS + 1)])[0].successful
    assert node.set_parameters([Parameter("max_entities", value=MAX_PROPOSALS)])[0].successful

    class Sam:
        img_size, feature_source = 64, "test"

        def propose(self, rgb, key=None, should_stop=lambda: False, **amg):
            return [Proposal(id=i, mask=np.ones(rgb.shape[:2], bool), score=i / 100) for i in range(100)]

    sent = []
    node._sam, node._pubs = Sam(), {"": type("Pub", (), {"publish": lambda self, m: sent.append(m)})()}
    monkeypatch.setattr(results, "MAX_PROPOSAL_PIXELS", 24 * 7)  # 7 masks of 6x4 (proposals_allowed)
    node._propose(Image(height=4, width=6, encoding="rgb8", step=18, data=bytes(72)))
    assert [e.id for e in sent[0].entities] == [99, 98, 97, 96, 95, 94, 93]  # the best scored
    node.shutdown_worker()
    node.destroy_node()


def _node_recording_keys(name: str):
    """(a MaskProposalNode whose SAM proposes nothing, the list of SAM frame keys it is given)."""
    node = MaskProposalNode(name=name)
    keys = []

    class Sam:
        img_size, feature_source = 64, "test"

        def propose(self, rgb, key=None, should_stop=lambda: False, **amg):
            keys.append(key)
            return []

    node._sam = Sam()
    return node, keys


def test_an_unstamped_frame_is_stamped_when_it_arrives_and_embedded_by_its_pixels():
    """A driver that stamps nothing gave every frame stamp 0: the proposals were paired with
    whichever zero-stamped frame the grounding node held, and keyed by that stamp SAM reused
    the first frame's embedding. The frame takes the time it arrived, as the grounding node's
    frames do."""
    node, keys = _node_recording_keys("proposal_stamp_test")
    stamped = []
    node._started_pubs[""] = type("Pub", (), {"publish": lambda self, h: stamped.append(h)})()
    frame = Image(height=4, width=6, encoding="rgb8", step=18, data=bytes(72))
    before = node.get_clock().now().nanoseconds
    node._propose(frame)
    sent = stamped[-1].stamp.sec * 10**9 + stamped[-1].stamp.nanosec
    assert before <= sent <= node.get_clock().now().nanoseconds
    assert keys[-1] is not None and keys[-1][1] == sent  # a key of its own stamp, not of 0
    node.shutdown_worker()
    node.destroy_node()


def test_cameras_frames_with_one_header_and_other_pixels_are_embedded_apart():
    """Frames are keyed by their pixels as well as their header: a hardware-synced stereo pair
    in one frame_id (one stamp, one frame_id) gets two SAM embeddings, so right's proposals are
    cut from right's picture."""
    node, keys = _node_recording_keys("proposal_key_test")

    def frame(seed):
        pixels = bytes(np.random.default_rng(seed).integers(0, 255, 72, dtype=np.uint8))
        msg = Image(height=4, width=6, encoding="rgb8", step=18, data=pixels)
        msg.header.stamp.sec, msg.header.frame_id = 9, "cam"
        return msg

    node._propose(frame(1), "left")
    node._propose(frame(2), "right")
    node._propose(frame(1), "left")
    node._propose(frame(2), "left")  # a replay: one camera, one header, other pixels
    assert None not in keys and keys[0] != keys[1] and keys[0] == keys[2] != keys[3], keys
    node.shutdown_worker()
    node.destroy_node()


def test_deactivate_stops_the_run_in_flight_and_nothing_is_published_after():
    """A run (up to a minute on a CPU) went on holding SAM after deactivate returned, and one
    ending after cleanup published on a destroyed publisher ("proposals failed")."""
    from ros_ground.sam.proposals import ProposalsStopped

    started, ended = threading.Event(), []
    published, errors = [], []

    class SlowSam:  # a run that ends at its deadline unless stopped first, like mask_proposals
        img_size, feature_source, device = 64, "test", "cpu"

        def propose(self, rgb, key=None, should_stop=lambda: False, **amg):
            started.set()
            try:
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    if should_stop():
                        raise ProposalsStopped("stopped")
                    time.sleep(0.01)
                return []
            finally:
                ended.append(time.monotonic())

    node = MaskProposalNode(name="proposal_deactivate_test", sam_provider=lambda *key: SlowSam(),
                            parameter_overrides=[Parameter("min_period_s", value=0.0)])
    logger = node.get_logger()
    node.get_logger = lambda: type("Log", (), {
        "error": lambda self, text, **kw: errors.append(text),
        "__getattr__": lambda self, name: getattr(logger, name)})()
    try:
        assert node.trigger_configure().name == "SUCCESS"
        assert node.trigger_activate().name == "SUCCESS"
        node._pubs[""] = type("Pub", (), {"publish": lambda self, msg: published.append(msg)})()
        node._on_image(Image(height=4, width=4, encoding="rgb8", step=12, data=bytes(48)))
        assert started.wait(5.0)
        assert node.trigger_deactivate().name == "SUCCESS"
        returned = time.monotonic()
        assert ended and ended[0] <= returned, "deactivate returned while the run went on"
        assert node.trigger_cleanup().name == "SUCCESS"
        time.sleep(2.2)  # past the run's own deadline
        assert published == [] and errors == []
    finally:
        node.shutdown_worker()
        node.destroy_node()
