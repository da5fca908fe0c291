"""Shared test setup: offline model loading and a private DDS domain per test run."""

import fcntl
import os
import random
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_DOMAIN_LOCKS = []


def claim_ros_domain() -> int:
    """A ROS domain (1..101; 0, the default, is left to demos) that no other test run here holds.

    Each run keeps an exclusive flock on its domain's file in the temp folder while it lives; the
    kernel drops it when the process ends, even on a crash, so no stale claim outlives a run.
    """
    domains = list(range(1, 102))
    random.SystemRandom().shuffle(domains)
    for domain in domains:
        handle = open(Path(tempfile.gettempdir()) / f"ros_ground_test_domain_{domain}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _DOMAIN_LOCKS.append(handle)
        return domain
    return domains[0]  # 101 runs at once: share a domain rather than not run


# A domain of our own, so two test runs (or a test and a running demo) never hear each other.
os.environ["ROS_DOMAIN_ID"] = str(claim_ros_domain())


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
