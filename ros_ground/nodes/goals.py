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


class PendingGoals:
    """Accepted goals not yet finished, each with the scheduler ticket that will answer it."""

    def __init__(self):
        self._tickets: dict[bytes, object] = {}
        self._answers: dict[bytes, list] = {}  # started goals: [answer or None, its Event]
        self._lock = threading.Lock()
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
        slot = [None, threading.Event()]
        with self._lock:
            self._answers[bytes(goal_handle.goal_id.uuid)] = slot

        def wait_for_answer(handle):
            slot[1].wait()
            return self._result(handle, slot[0])

        goal_handle.execute(wait_for_answer)

    def finish(self, goal_handle, response: GroundedResponse) -> None:
        """`response` is the goal's answer: hand it to its waiting execute callback, or execute
        the goal now if it never started."""
        with self._lock:
            slot = self._answers.pop(bytes(goal_handle.goal_id.uuid), None)
        if slot is None:
            goal_handle.execute(lambda handle: self._result(handle, response))
        else:
            slot[0] = response
            slot[1].set()

    def wait_finished(self, timeout: float) -> bool:
        """Wait until every tracked goal has its result (their execute callbacks ran)."""
        deadline = time.monotonic() + timeout
        while len(self) and time.monotonic() < deadline:
            time.sleep(0.01)
        return not len(self)

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
        return Ground.Result(response=response)
