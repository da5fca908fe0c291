"""The core's Python logging reaches /rosout as the node's own messages do."""

import logging
import time

import pytest

rclpy = pytest.importorskip("rclpy")
from rcl_interfaces.msg import Log  # noqa: E402

from ros_ground.nodes.common import RosLogging, forward_core_logging  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def core_logger():
    core = logging.getLogger("ros_ground")
    handlers, propagate = list(core.handlers), core.propagate
    yield core
    core.handlers[:], core.propagate = handlers, propagate


def test_a_core_warning_is_published_on_rosout_by_the_node(ros, core_logger):
    node = rclpy.create_node("logging_probe")
    seen = []
    node.create_subscription(Log, "/rosout", seen.append, 100)
    forward_core_logging(node.get_logger())
    time.sleep(0.5)  # the subscription matched before the message goes out
    logging.getLogger("ros_ground.lmm.fit").warning("the frame is cut at x %d", 80)
    logging.getLogger("ros_ground.lmm.fit").info("not a warning")  # below the logger's level
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("cut at" in m.msg for m in seen):
        rclpy.spin_once(node, timeout_sec=0.1)
    ours = [m for m in seen if m.name == "logging_probe"]
    assert [(m.level, m.msg) for m in ours] == [(Log.WARN, "[lmm.fit] the frame is cut at x 80")]
    assert core_logger.propagate is False  # each message once, not also on stderr
    node.destroy_node()


def test_levels_are_kept_and_one_handler_is_installed(core_logger):
    calls = []

    class Logger:
        def __getattr__(self, level):
            return lambda msg: calls.append((level, msg))

    forward_core_logging(Logger())
    forward_core_logging(Logger())  # a second node's process start replaces, not doubles
    assert sum(isinstance(h, RosLogging) for h in core_logger.handlers) == 1
    log = logging.getLogger("ros_ground.scheduler")
    log.setLevel(logging.DEBUG)
    try:
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
            log.log(level, "x")
    finally:
        log.setLevel(logging.NOTSET)
    assert [level for level, _ in calls] == ["debug", "info", "warning", "error", "error"]


def test_core_messages_of_every_level_reach_rosout_from_one_handler(ros, core_logger):
    # rclpy refuses a call site whose severity changes ("Logger severity cannot be changed
    # between calls"): one call for every level lost each message after the first level's
    node = rclpy.create_node("logging_levels_probe")
    seen = []
    node.create_subscription(Log, "/rosout", seen.append, 100)
    forward_core_logging(node.get_logger())
    time.sleep(0.5)
    log = logging.getLogger("ros_ground.scheduler")
    log.setLevel(logging.INFO)
    try:
        log.info("first an info")
        log.warning("then a warning")
        log.error("then an error")
    finally:
        log.setLevel(logging.NOTSET)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("then an error" in m.msg for m in seen):
        rclpy.spin_once(node, timeout_sec=0.1)
    ours = [(m.level, m.msg) for m in seen if m.name == "logging_levels_probe"]
    assert ours == [(Log.INFO, "[scheduler] first an info"), (Log.WARN, "[scheduler] then a warning"),
                    (Log.ERROR, "[scheduler] then an error")], ours
    node.destroy_node()


def test_a_failed_delivery_says_why_and_the_traceback_goes_to_debug(core_logger):
    # the scheduler logs a failed publish with exc_info: the ROS line must carry the reason
    # (here the one a message built from another msg/ than its type support raises)
    from ros_ground.scheduler import Scheduler

    calls = []

    class Logger:
        def __getattr__(self, level):
            return lambda msg: calls.append((level, msg))

    def deliver(ticket, answer):
        raise AttributeError("'GroundedResponse' object has no attribute 'second_landmark'")

    forward_core_logging(Logger())
    scheduler = Scheduler(lambda t: "answer", deliver, lambda t, why: None, lambda t, e: None)
    scheduler.open()
    scheduler.submit("request")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(calls) < 2:
        time.sleep(0.01)
    scheduler.stop()
    (level, line), (debug, trace) = [c for c in calls if "deliver" in c[1]]
    assert level == "error"
    assert line.startswith("[scheduler] delivering the answer of request 1 failed: AttributeError: "
                           "'GroundedResponse' object has no attribute 'second_landmark' (at "
                           "test_ros_logging.py:"), line
    assert line.endswith(" in deliver)") and "\n" not in line
    assert debug == "debug" and trace.startswith("Traceback (most recent call last):")


def test_an_exception_is_one_line_even_when_its_message_is_not():
    from ros_ground.nodes.common import exception_summary

    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    try:
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")
    except RuntimeError as exc:
        line = exception_summary(exc)
    assert line.startswith("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (at ")
    assert "\n" not in line
    assert exception_summary(Unprintable()) == "Unprintable"
