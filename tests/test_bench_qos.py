"""bench.qos: 1080p rgb8 frames from a reliable publisher reach a reliable subscriber process."""

import pytest

pytest.importorskip("rclpy")

from bench.qos import markdown, run_case  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_large_frames_cross_processes_with_reliable_qos():
    result = run_case(1920, 1080, "reliable", "default", rate=2.0, seconds=3.0)
    assert result["sent"] == 6
    # keep-last-1 may drop a frame the subscriber had no time to take on a loaded machine;
    # best effort loses all of them on this machine (bench/RESULTS.md)
    assert result["received"] >= 4, result
    table = markdown([result], {"cpu": "x", "cpu_family_model": "1/1", "usable_cpus": 2,
                                "ram_gb": 1, "os": "Linux", "python": "3"}, 2.0, 3.0)
    assert "| 1920x1080 rgb8 | reliable | default | 6 |" in table
