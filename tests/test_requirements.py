"""requirements-robot.txt, what a robot with an apt ROS pip-installs beside it: the ML stack only."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _names(path: Path) -> list[str]:
    """The distribution names a requirements file lists (its own lines, not those it includes)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower().replace("_", "-")
            for line in lines if line and not line.startswith("-")]


def test_the_robot_requirements_hold_no_ros_package_no_dev_tool_and_no_abi_shadowing_pin():
    robot = _names(ROOT / "requirements-robot.txt")
    assert "torch" in robot and "transformers" in robot
    ros = [n for n in robot if n.startswith(("ros-", "rclpy", "ament", "colcon", "catkin", "rosidl"))]
    tools = [n for n in robot if n in ("pytest", "pytest-timeout", "hypothesis", "ruff", "vermin",
                                       "cmake", "ninja")]
    # apt gives these (package.xml); a pip copy shadows the one apt's OpenCV/SciPy were built on
    apt = [n for n in robot if n in ("scipy", "opencv-python", "opencv-python-headless")]
    assert not ros and not tools and not apt, (ros, tools, apt)
    pinned = re.findall(r"^numpy\s*==", (ROOT / "requirements-robot.txt").read_text(), re.M)
    assert not pinned, "numpy is a floor apt's meets, never an exact pin"


def test_the_development_venv_installs_what_a_robot_does():
    assert "-r requirements-robot.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    assert "requirements-robot.txt" in (ROOT / "Makefile").read_text()
    constraints = set(_names(ROOT / "constraints.txt"))
    assert set(_names(ROOT / "requirements-robot.txt")) <= constraints  # CI pins each exactly
