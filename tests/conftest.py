"""Shared test setup: offline model loading and a private DDS domain per test run."""

import os
import random

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# A domain of our own, so two test runs (or a test and a running demo) never hear each other.
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 101))


def pytest_configure(config):
    config.addinivalue_line("markers", "ros: needs rclpy and the built ros_ground_msgs")
    config.addinivalue_line("markers", "slow: longer than a few seconds")


@pytest.fixture(scope="module")
def ros():
    """rclpy initialised for one test module, shut down after it."""
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    return int(os.environ["ROS_DOMAIN_ID"])
