"""The request scheduler without ROS: one answer per request, fairness, cancel, close."""

import threading
import time

import pytest

from ros_ground.scheduler import Rejected, Scheduler


class Harness:
    """A scheduler whose `run` blocks until released, recording every answer."""

    def __init__(self, queue_size=4):
        self.answers = []
        self.order = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.scheduler = Scheduler(self.run, self.deliver, lambda t, why: ("canceled", why),
                                   lambda t, exc: ("failed", str(exc)), queue_size=queue_size)
        self.scheduler.open()

    def run(self, ticket):
        self.order.append(ticket.payload)
        self.started.set()
        while not self.release.wait(0.01):
            if self.scheduler.should_stop(ticket):
                return ("stopped", ticket.payload)
        if ticket.payload == "boom":
            raise RuntimeError("model failed")
        return ("ok", ticket.payload)

    def deliver(self, ticket, answer):
        with self.lock:
            self.answers.append((ticket.payload, answer))

    def wait(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not predicate():
            time.sleep(0.005)
        return predicate()

    def by_payload(self):
        out = {}
        for payload, answer in self.answers:
            assert payload not in out, f"{payload} answered twice"
            out[payload] = answer
        return out


@pytest.fixture
def h():
    harness = Harness()
    yield harness
    harness.release.set()
    harness.scheduler.stop()


def test_every_request_is_answered_once_and_the_queue_is_bounded(h):
    h.scheduler.submit("first")
    assert h.started.wait(5)
    for i in range(4):
        h.scheduler.submit(f"q{i}")
    with pytest.raises(Rejected, match=r"busy: one request running and 4 waiting \(queue_size=4\)"):
        h.scheduler.submit("one too many")
    h.release.set()
    assert h.wait(lambda: len(h.answers) == 5)
    assert h.by_payload() == {p: ("ok", p) for p in ["first", "q0", "q1", "q2", "q3"]}


def test_an_idle_worker_takes_a_request_even_with_queue_size_zero():
    h = Harness(queue_size=0)
    try:
        h.scheduler.submit("a")
        assert h.started.wait(5)
        with pytest.raises(Rejected, match=r"one request running and 0 waiting \(queue_size=0\)"):
            h.scheduler.submit("b")
        h.release.set()
        assert h.wait(lambda: len(h.answers) == 1)
        h.scheduler.submit("c")
        assert h.wait(lambda: len(h.answers) == 2)
    finally:
        h.release.set()
        h.scheduler.stop()


def test_sources_take_turns_so_a_flood_does_not_starve_another_source(h):
    h.scheduler.queue_size = 30
    h.scheduler.submit("cam0-0", source="cam0")
    assert h.started.wait(5)
    for i in range(1, 6):
        h.scheduler.submit(f"cam0-{i}", source="cam0")
    h.scheduler.submit("cam1-0", source="cam1")
    h.scheduler.submit("cam1-1", source="cam1")
    h.release.set()
    assert h.wait(lambda: len(h.answers) == 8)
    assert h.order[:5] == ["cam0-0", "cam0-1", "cam1-0", "cam0-2", "cam1-1"]


def test_cancel_answers_a_queued_request_at_once_and_stops_a_running_one(h):
    running = h.scheduler.submit("running")
    assert h.started.wait(5)
    queued = h.scheduler.submit("queued")
    h.scheduler.cancel(queued)
    assert h.by_payload() == {"queued": ("canceled", "canceled while queued")}
    h.scheduler.cancel(running)
    assert h.wait(lambda: len(h.answers) == 2)
    assert h.by_payload()["running"] == ("stopped", "running")
    h.scheduler.cancel(running)  # already answered: nothing more
    time.sleep(0.05)
    assert len(h.answers) == 2


def test_a_failing_request_is_answered_and_the_worker_goes_on(h):
    h.release.set()
    h.scheduler.submit("boom")
    h.scheduler.submit("next")
    assert h.wait(lambda: len(h.answers) == 2)
    assert h.by_payload() == {"boom": ("failed", "model failed"), "next": ("ok", "next")}


def test_close_answers_the_queue_waits_for_the_running_request_and_rejects_new_ones(h):
    h.scheduler.submit("running")
    assert h.started.wait(5)
    h.scheduler.submit("waiting")
    h.scheduler.close("node deactivated")
    answers = h.by_payload()  # the running one saw should_stop and answered before close returned
    assert answers == {"waiting": ("canceled", "node deactivated"),
                       "running": ("stopped", "running")}
    with pytest.raises(Rejected, match="not accepting"):
        h.scheduler.submit("late")
    h.scheduler.open()
    h.release.set()
    h.scheduler.submit("again")
    assert h.wait(lambda: len(h.answers) == 3)


def test_stop_ends_the_worker_thread(h):
    h.release.set()
    h.scheduler.stop()
    assert not h.scheduler._worker.is_alive()


def test_queue_size_must_not_be_negative():
    with pytest.raises(ValueError, match="queue_size"):
        Scheduler(lambda t: None, lambda t, a: None, lambda t, w: None, lambda t, e: None,
                  queue_size=-1)
