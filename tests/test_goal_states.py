"""`ask` goals follow the queued-goal pattern: ACCEPTED while they wait, EXECUTING once the
scheduler starts them, and a waiting goal holds no executor thread."""

import threading

import pytest

rclpy = pytest.importorskip("rclpy")
from action_msgs.msg import GoalStatus  # noqa: E402
from ros_ground_msgs.action import Ground  # noqa: E402
from ros_ground_msgs.msg import GroundedResponse as R  # noqa: E402

from tests.test_grounding_node import _stream, running  # noqa: E402, F401

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("ros")]


def test_a_goal_executes_when_it_starts_not_when_it_is_answered(running, monkeypatch):  # noqa: F811
    r = running(queue_size=10, max_new_tokens=4, attention_views=["identity"])
    _stream(r)
    release = threading.Event()
    original = r.node._engine.lmm.generate

    def held(*args, **kwargs):  # the model runs until the test lets it finish
        assert release.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(r.node._engine.lmm, "generate", held)
    action = r.client.action_client()
    try:
        assert action.wait_for_server(timeout_sec=10)
        handles = [r.client.wait_future(action.send_goal_async(Ground.Goal(prompt="Describe.")))
                   for _ in range(3)]
        assert all(h.accepted for h in handles)
        # the first runs (EXECUTING while the model works), the others wait (ACCEPTED)
        assert r.client.wait(lambda: handles[0].status == GoalStatus.STATUS_EXECUTING, 20)
        assert r.node.scheduler.busy and r.node.scheduler.waiting == 2
        assert [h.status for h in handles[1:]] == [GoalStatus.STATUS_ACCEPTED] * 2
        release.set()
        results = [r.client.wait_future(h.get_result_async(), 120) for h in handles]
        assert [x.status for x in results] == [GoalStatus.STATUS_SUCCEEDED] * 3
        assert all(x.result.response.status == R.STATUS_OK for x in results)
        assert r.node.goals.wait_finished(5) and len(r.node.goals) == 0
    finally:
        release.set()
        r.client.destroy_action_client(action)


def test_a_goal_canceled_while_queued_never_executes(running, monkeypatch):  # noqa: F811
    r = running(queue_size=10, max_new_tokens=4, attention_views=["identity"])
    _stream(r)
    release = threading.Event()
    original = r.node._engine.lmm.generate
    monkeypatch.setattr(r.node._engine.lmm, "generate",
                        lambda *a, **k: release.wait(60) and original(*a, **k))
    action = r.client.action_client()
    try:
        assert action.wait_for_server(timeout_sec=10)
        first, second = (r.client.wait_future(action.send_goal_async(Ground.Goal(prompt="Hi.")))
                         for _ in range(2))
        assert r.client.wait(lambda: first.status == GoalStatus.STATUS_EXECUTING, 20)
        r.client.wait_future(second.cancel_goal_async())
        canceled = r.client.wait_future(second.get_result_async(), 30)
        assert canceled.status == GoalStatus.STATUS_CANCELED
        assert canceled.result.response.status == R.STATUS_CANCELED
        release.set()
        assert r.client.wait_future(first.get_result_async(), 120).status == \
            GoalStatus.STATUS_SUCCEEDED
    finally:
        release.set()
        r.client.destroy_action_client(action)


def test_a_goal_gets_its_result_when_publishing_the_response_fails(running, monkeypatch):  # noqa: F811
    # a response publish that raises (a publisher cleanup destroyed under a request that
    # outlived the wait for it) must not leave the goal's execute callback waiting forever
    r = running(max_new_tokens=4, attention_views=["identity"])
    _stream(r)

    def destroyed(msg):
        raise RuntimeError("publisher's handle is not valid")

    monkeypatch.setattr(r.node.outputs.responses[""], "publish", destroyed)
    action = r.client.action_client()
    try:
        assert action.wait_for_server(timeout_sec=10)
        handle = r.client.wait_future(action.send_goal_async(Ground.Goal(prompt="Describe.")))
        result = r.client.wait_future(handle.get_result_async(), 60)
        assert result.status == GoalStatus.STATUS_SUCCEEDED
        assert result.result.response.status == R.STATUS_OK
        assert r.node.goals.wait_finished(5)
    finally:
        r.client.destroy_action_client(action)


def _three_goals_then(r, action, transitions) -> list:
    """Send three long goals (one runs, two wait), ask for their results at once as clients
    do, run `transitions` while the first generates; the three results."""
    assert action.wait_for_server(timeout_sec=10)
    handles = [r.client.wait_future(action.send_goal_async(Ground.Goal(
        prompt="Describe the image in detail."))) for _ in range(3)]
    assert all(h.accepted for h in handles)
    results = [h.get_result_async() for h in handles]
    assert r.client.wait(lambda: r.node.scheduler.busy, 20)
    for transition in transitions:
        assert getattr(r.node, f"trigger_{transition}")().name == "SUCCESS"
    done = [r.client.wait_future(f, 30) for f in results]
    assert [d.status for d in done] == [GoalStatus.STATUS_ABORTED] * 3  # no cancel asked
    assert [d.result.response.status for d in done] == [R.STATUS_CANCELED] * 3
    return done


@pytest.mark.parametrize("transitions", [("deactivate",), ("deactivate", "cleanup"), ("shutdown",)])
def test_goals_answered_as_the_node_stops_serving_get_their_results(running, transitions):  # noqa: F811
    # the ask server outlives the results of the goals deactivate, cleanup right after it, or
    # shutdown from active answers: destroyed at once, their results would be lost on the way
    # and the clients wait forever
    r = running(queue_size=5, max_new_tokens=300)
    _stream(r)
    action = r.client.action_client()
    try:
        done = _three_goals_then(r, action, transitions)
        assert "node deactivated" in done[-1].result.response.error or transitions == ("shutdown",)
    finally:
        r.client.destroy_action_client(action)


def test_an_inactive_node_rejects_goals_and_takes_them_again_once_active(running):  # noqa: F811
    r = running(queue_size=5, max_new_tokens=300)
    _stream(r)
    action = r.client.action_client()
    try:
        _three_goals_then(r, action, ["deactivate"])
        refused = r.client.wait_future(action.send_goal_async(Ground.Goal(prompt="Describe.")))
        assert not refused.accepted
        assert r.node.trigger_activate().name == "SUCCESS"
        again = r.client.wait_future(action.send_goal_async(Ground.Goal(prompt="Hi.")))
        assert again.accepted
        assert r.client.wait_future(again.get_result_async(), 120).result.response.status == R.STATUS_OK
    finally:
        r.client.destroy_action_client(action)


class _Handle:
    """A goal handle's part PendingGoals uses: `execute` runs the callback on its own thread."""

    def __init__(self, n: int):
        self.goal_id = type("Id", (), {"uuid": bytes([n] * 16)})()
        self.is_cancel_requested, self.state, self.result = False, "", None

    def execute(self, callback):
        self.thread = threading.Thread(target=lambda: setattr(self, "result", callback(self)))
        self.thread.start()

    def succeed(self):
        self.state = "succeeded"

    def abort(self):
        self.state = "aborted"


def test_a_started_goal_nobody_answers_is_aborted_not_waited_on_forever(monkeypatch):
    # when nothing answers a started goal (the scheduler's stop timed out), its execute
    # callback must not hold an executor thread for ever
    from ros_ground.nodes import goals as module

    monkeypatch.setattr(module, "ANSWER_WAIT_S", 0.2)
    goals, stuck, shut = module.PendingGoals(), _Handle(1), _Handle(2)
    goals.track(stuck, lambda: object())
    goals.start(stuck)
    stuck.thread.join(2.0)
    assert not stuck.thread.is_alive() and stuck.state == "aborted"
    assert "no answer within 0.2 s" in stuck.result.response.error
    assert stuck.result.response.status == R.STATUS_MODEL_ERROR
    # named as the node names a goal's request, so a client can tell which goal it was
    assert stuck.result.response.request_id == f"goal-{bytes(stuck.goal_id.uuid).hex()[:12]}"
    goals.track(shut, lambda: object())
    goals.start(shut)
    goals.give_up("node shut down before the request ended")  # after the scheduler's stop
    shut.thread.join(1.0)
    assert shut.state == "aborted" and shut.result.response.error == "node shut down before the request ended"
    assert goals.wait_finished(1.0) and len(goals) == 0
    goals.finish(stuck, R(status=R.STATUS_OK))  # the answer after all: ignored, not executed again
    assert stuck.state == "aborted"
