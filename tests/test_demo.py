"""`make demo`'s job end to end: the composed graph answers every prompt, each with its own picture."""

import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_runs_the_composed_graph(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ros_ground.nodes.cli", "demo", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "The simulated camera sees:" in text
    assert "its wording is often wrong" in text
    assert "Question 1: Describe the scene." in text and "Question 2: Where is the " in text
    assert "Question 3: Pick up the " in text
    assert text.count("Answered in ") == 3
    # every answer line says something: words, or why there are none
    assert not re.search(r"Answer: *\n", text), text
    # the manipulation command: its target's pixels and its position beside the sim's truth
    assert "The command is about " in text and "% of the picture), box x=" in text
    assert "found from the depth image:" in text and "the simulator's truth:" in text
    # "Where is ...?" asks only to find it, "Pick up ..." to act (GroundedResponse.intent)
    assert "It asks the robot only to find or tell about it (INTENT_LOCATE)." in text
    assert "It asks the robot to act on it (INTENT_ACT)." in text
    assert "objects found" in text and "average overlap" in text
    assert not re.search(r"chars \d|proposal \d|AP50|mIoU|it/s", text)
    assert "Loading weights" not in out.stderr  # no progress bar when stderr is not a terminal
    # config/demo.yaml: the far-camera settings; every answer picks among the proposal node's
    # outlines of its one run (a point-prompt fallback would mean they were lost or too old)
    assert re.search(r"\d+ outlines after", text), text
    assert text.count("masks picked among the outlines of the objects in the frame") == 2
    assert "masks cut around the spot the model looked at" not in text
    pictures = sorted(tmp_path.glob("*.png"))
    assert len(pictures) == 3 and text.count("  Picture: ") == 3
    # each answer's own picture: both questions are grounded on one frame, so a picture matched
    # by the frame's stamp alone would be the same file twice
    assert pictures[0].read_bytes() != pictures[1].read_bytes()
    # the demo's camera is outside the training ranges (config/demo.yaml): OOD_RANGES' 800x450
    # frames, drawn at their own size
    from PIL import Image

    from ros_ground.sim.ranges import OOD_RANGES

    width = OOD_RANGES.width[0]
    assert Image.open(pictures[0]).size == (width, round(width / OOD_RANGES.aspect[0]))
    assert "demo.yaml" in text


def test_a_node_that_cannot_configure_ends_the_wait_with_its_own_error(tmp_path):
    # a model that does not load must end the demo's wait with the configure error, read from
    # the graph's log, not after 300 s for outlines with "no action server" blamed
    pytest.importorskip("rclpy")
    from ros_ground.nodes.demo import GraphFailed, GraphWatch

    log = tmp_path / "graph.log"
    log.write_text("[INFO] [1.0] [demo.sim_camera_node]: scene 0: a red mug\n")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        watch = GraphWatch(sleeper, log)
        assert watch.failure() is None
        watch.check()  # nothing to say yet
        with open(log, "a") as out:
            out.write("[ERROR] [2.0] [demo.grounding_node]: configure failed: SamLoadError: "
                      "unknown SAM spec '/nonexistent'\n")
        with pytest.raises(GraphFailed, match=r"^demo.grounding_node: configure failed: "
                                              r"SamLoadError: unknown SAM spec '/nonexistent'$"):
            watch.check()
    finally:
        sleeper.kill()
        sleeper.wait()
    watch = GraphWatch(sleeper, tmp_path / "graph.log")
    watch._offset = log.stat().st_size  # the error already read: the ended process is the news
    assert watch.failure() == "the graph's process ended with status -9"
