"""`ask` goals between acceptance and result: only the running goal holds an executor thread.

ros2/examples' queued-goal server pattern (handle_accepted_callback defers execute), with the
queue kept by the scheduler instead of the node: an accepted goal is only an entry here
(status ACCEPTED) while it waits in the queue. When the scheduler starts it, `start` executes
it (status EXECUTING): its execute callback waits on an executor thread for the answer, then
sets the terminal state and returns it. A goal answered without running (canceled while
queued, refused at once, the node deactivating) is executed with its answer in hand.
"""

from __future__ import annotations

import threading
import time

from ros_ground_msgs.action import Ground
from ros_ground_msgs.msg import GroundedResponse

from ros_ground.nodes.conversions import phrase_to_msg

# how long after a goal's execute callback returns its result reply is sent (tens of ms: an
# executor callback), with a margin for a loaded machine
RESULT_REPLY_S = 0.3
# the longest a started goal's execute callback (an executor thread) waits for its answer: far
# past any request (minutes on a CPU); reached only when the scheduler never answers (its
# worker stuck past a stop's timeout), and the goal is then aborted saying so
ANSWER_WAIT_S = 1800.0


class PendingGoals:
    """Accepted goals not yet finished, each with the scheduler ticket that will answer it."""

    def __init__(self):
        self._tickets: dict[bytes, object] = {}
        self._answers: dict[bytes, list] = {}  # started goals: [answer or None, its Event]
        self._given_up: set[bytes] = set()  # started goals aborted unanswered: `finish` ignores them
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)  # notified as each goal's result is set
        self._last_result = float("-inf")  # time.monotonic() of the newest goal's end

    def __len__(self) -> int:
        with self._lock:
            return len(self._tickets)

    def track(self, goal_handle, submit) -> None:
        """Record the goal, then `submit()` it (returns its ticket, or None if answered at once)."""
        key = bytes(goal_handle.goal_id.uuid)
        with self._lock:
            self._tickets[key] = None
        ticket = submit()
        with self._lock:
            if key in self._tickets:  # not finished already
                self._tickets[key] = ticket

    def ticket(self, goal_handle):
        with self._lock:
            return self._tickets.get(bytes(goal_handle.goal_id.uuid))

    @staticmethod
    def feedback(goal_handle):
        """The engine's `on_progress` callback publishing a goal's feedback (None: no goal)."""
        if goal_handle is None:
            return None

        def publish(text, phrases):
            goal_handle.publish_feedback(Ground.Feedback(
                partial_text=text, phrases=[phrase_to_msg(p) for p in phrases]))

        return publish

    def start(self, goal_handle) -> None:
        """The scheduler starts the goal's request: execute it; its callback waits for `finish`."""
        key = bytes(goal_handle.goal_id.uuid)
        slot = [None, threading.Event()]
        with self._lock:
            self._answers[key] = slot

        def wait_for_answer(handle):
            if not slot[1].wait(ANSWER_WAIT_S):
                self._give_up([key], f"no answer within {ANSWER_WAIT_S:g} s of the request "
                              "starting: the node's request worker is stuck")
            return self._result(handle, slot[0])

        goal_handle.execute(wait_for_answer)

    def finish(self, goal_handle, response: GroundedResponse) -> None:
        """`response` is the goal's answer: hand it to its waiting execute callback, or execute
        the goal now if it never started."""
        key = bytes(goal_handle.goal_id.uuid)
        with self._lock:
            slot = self._answers.pop(key, None)
            if key in self._given_up:  # already aborted: its result is out
                self._given_up.discard(key)
                return
        if slot is None:
            goal_handle.execute(lambda handle: self._result(handle, response))
        else:
            slot[0] = response
            slot[1].set()

    def give_up(self, reason: str) -> None:
        """Abort every started goal still waiting for its answer, with `reason` as its error:
        after the scheduler's stop timed out, nothing will answer them."""
        with self._lock:
            keys = list(self._answers)
        self._give_up(keys, reason)

    def _give_up(self, keys: list, reason: str) -> None:
        with self._lock:
            slots = [(key, self._answers.pop(key)) for key in keys if key in self._answers]
            self._given_up.update(key for key, _ in slots)
        for key, slot in slots:  # named as the node names a goal's request (grounding_node)
            slot[0] = GroundedResponse(status=GroundedResponse.STATUS_MODEL_ERROR, error=reason,
                                       request_id=f"goal-{key.hex()[:12]}")
            slot[1].set()

    def wait_finished(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every tracked goal has its result (their execute
        callbacks ran); whether they all have."""
        with self._finished:
            return self._finished.wait_for(lambda: not self._tickets, timeout=timeout)

    def settle(self, timeout: float) -> None:
        """`wait_finished`, then until RESULT_REPLY_S after the newest goal ended: rclpy replies
        to a client's result request in an executor callback after the goal's execute callback
        returns, and a server destroyed before then never sends it."""
        self.wait_finished(timeout)
        with self._lock:
            left = self._last_result + RESULT_REPLY_S - time.monotonic()
        if left > 0:
            time.sleep(left)

    def _result(self, handle, response: GroundedResponse) -> Ground.Result:
        if response.status == GroundedResponse.STATUS_OK:
            handle.succeed()
        elif response.status == GroundedResponse.STATUS_CANCELED and handle.is_cancel_requested:
            handle.canceled()
        else:
            handle.abort()
        with self._lock:
            self._tickets.pop(bytes(handle.goal_id.uuid), None)
            self._last_result = time.monotonic()
            self._finished.notify_all()
        return Ground.Result(response=response)
