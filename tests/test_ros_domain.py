"""Each test run claims a ROS domain that no other run on this machine holds (conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

import conftest


def _claim_in_another_process() -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    claim = "import os, conftest; print(os.environ['ROS_DOMAIN_ID'])"  # claimed on import
    out = subprocess.run([sys.executable, "-c", claim], env=env, capture_output=True, text=True,
                         check=True)
    return int(out.stdout)


def test_a_run_started_now_gets_the_one_domain_nobody_holds(ros_domain_id):
    # hold every domain but one, as 100 runs at once would; a new run must find the free one
    # (a random draw, as before, would find it about one time in a hundred)
    assert ros_domain_id == int(os.environ["ROS_DOMAIN_ID"])
    held = len(conftest._DOMAIN_LOCKS)
    try:
        claimed = {ros_domain_id} | {conftest.claim_ros_domain() for _ in range(99)}
        assert len(claimed) == 100 and claimed <= set(range(1, 102))
        free = (set(range(1, 102)) - claimed).pop()
        assert _claim_in_another_process() == free
    finally:
        for handle in conftest._DOMAIN_LOCKS[held:]:
            handle.close()  # releases its lock
        del conftest._DOMAIN_LOCKS[held:]
    assert _claim_in_another_process() != ros_domain_id  # ours is still held
