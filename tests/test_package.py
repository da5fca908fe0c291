"""Packaging: manifests validate, entry points resolve, lint is clean."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parent.parent
ENTRY_POINTS = ["grounding_node", "mask_proposal_node", "sim_camera_node", "ground_container",
                "ros-ground"]


@pytest.mark.parametrize("path,name,build_type", [
    (ROOT / "package.xml", "ros_ground", "ament_python"),
    (ROOT / "msg" / "package.xml", "ros_ground_msgs", "ament_cmake"),
])
def test_manifest_validates(path, name, build_type):
    package = parse_package(path)
    package.validate()
    assert package.name == name
    assert package.package_format == 3
    assert package.get_build_type() == build_type


def _setup_kwargs() -> dict:
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "setup")
    return {kw.arg: kw.value for kw in call.keywords}


def test_entry_points_resolve():
    scripts = ast.literal_eval(_setup_kwargs()["entry_points"])["console_scripts"]
    names = {s.split("=")[0].strip(): s.split("=")[1].strip() for s in scripts}
    assert sorted(names) == sorted(ENTRY_POINTS)
    for target in names.values():
        module, func = target.split(":")
        code = f"import importlib; assert callable(getattr(importlib.import_module('{module}'), '{func}'))"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_installed_console_scripts_exist():
    bindir = Path(sys.executable).parent
    missing = [n for n in ENTRY_POINTS if not (bindir / n).exists()]
    assert not missing, f"not installed in {bindir}: {missing} (run make setup)"


def test_core_does_not_import_rclpy():
    """Imports point one way: only ros_ground.nodes may touch rclpy or ROS messages."""
    offenders = []
    for path in (ROOT / "ros_ground").rglob("*.py"):
        if "nodes" in path.relative_to(ROOT / "ros_ground").parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in {"rclpy", "sensor_msgs", "std_msgs", "ros_ground_msgs", "builtin_interfaces"} \
                        or name.startswith("ros_ground.nodes"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is not installed in the venv"
    result = subprocess.run([ruff, "check", "ros_ground", "tests", "scripts", "launch", "bench"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
