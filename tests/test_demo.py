"""`make demo`'s job end to end: the composed graph answers both prompts and writes overlays."""

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_runs_the_composed_graph(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "demo", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "the simulated camera sees:" in text
    assert "asking: 'Describe the scene.'" in text and "asking: 'Where is the " in text
    assert text.count("grounded phrase(s)") == 2
    assert "grounding mask recall" in text and "mIoU" in text
    # the proposal node takes seconds a frame here: without proposal_max_age_s in config/sim.yaml
    # the command's frame never has proposals and every answer falls back to point prompts
    assert "proposals after" in text and "entity mask proposals (GROUNDHOG-style)" in text
    assert len(list(tmp_path.glob("*.png"))) == 2
