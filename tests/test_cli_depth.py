"""`ros-ground ground --depth --camera-info`: 3-D positions offline, and the flags' errors."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from ros_ground.image_files import save_png
from ros_ground.sim.camera import FAR
from ros_ground.sim.scene import generate_scene


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    scene = generate_scene(3, width=160, height=120, num_objects=3)
    root = tmp_path_factory.mktemp("depth")
    save_png(root / "rgb.png", scene.rgb)
    depth = scene.depth.copy()
    depth[depth >= FAR * 0.999] = np.nan
    np.save(root / "depth.npy", depth)
    cv2.imwrite(str(root / "depth.png"), np.nan_to_num(depth * 1000, nan=0).round().astype(np.uint16))
    k = scene.k
    info = {"image_width": 160, "image_height": 120, "camera_name": "sim",
            "camera_matrix": {"rows": 3, "cols": 3, "data": k.ravel().tolist()},
            "distortion_model": "plumb_bob",
            "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5},
            "projection_matrix": {"rows": 3, "cols": 4,
                                  "data": np.hstack([k, np.zeros((3, 1))]).ravel().tolist()}}
    (root / "camera.yaml").write_text(yaml.safe_dump(info))
    wrong = dict(info, image_width=320)
    (root / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    return scene, root


def _run(*args, check=True):
    return subprocess.run([sys.executable, "-m", "ros_ground.cli", "ground", "--model", "tiny",
                           "--sam-model", "tiny", *args], capture_output=True, text=True,
                          check=check, timeout=300)


@pytest.mark.parametrize("depth", ["depth.npy", "depth.png"])
def test_json_has_positions_of_every_masked_phrase(files, depth):
    scene, root = files
    out = _run("--image", str(root / "rgb.png"), "--depth", str(root / depth),
               "--camera-info", str(root / "camera.yaml"), "--prompt", "Pick up the mug.", "--json")
    result = json.loads(out.stdout)
    assert result["prompt"] == "Pick up the mug." and isinstance(result["target"], int)
    phrases = result["phrases"] + result["prompt_phrases"]
    located = [p for p in phrases if p["depth_points"] > 0]
    assert located, phrases
    valid = np.isfinite(scene.depth) & (scene.depth < FAR * 0.999)
    z_lo, z_hi = scene.depth[valid].min(), scene.depth[valid].max()
    for p in located:
        assert len(p["position"]) == 3 and len(p["size"]) == 3
        assert z_lo - 0.01 <= p["position"][2] <= z_hi + 0.01
    for p in phrases:
        if p["depth_points"] == 0:
            assert p["position"] == [None, None, None]
    unlocated = [p["text"] for p in phrases if p["depth_points"] == 0 and p["mask_rle"]["counts"][1:]]
    assert (result["position_error"] == "") == (not unlocated)


def test_a_depth_with_no_valid_value_under_the_masks_says_so(files, tmp_path):
    # an all-zero depth leaves every position null: the output must say why
    _, root = files
    np.save(tmp_path / "zero.npy", np.zeros((120, 160), np.float32))
    out = _run("--image", str(root / "rgb.png"), "--depth", str(tmp_path / "zero.npy"),
               "--camera-info", str(root / "camera.yaml"), "--prompt", "Pick up the mug.", "--json")
    result = json.loads(out.stdout)
    assert result["position_error"].startswith(
        "no valid depth (0, NaN, inf or negative; a black, shiny or transparent surface may "
        "return none) inside the mask of")
    text = _run("--image", str(root / "rgb.png"), "--depth", str(tmp_path / "zero.npy"),
                "--camera-info", str(root / "camera.yaml"), "--prompt", "Pick up the mug.").stdout
    assert "No 3-D positions: no valid depth" in text


def test_human_output_shows_positions_and_target(files):
    _, root = files
    out = _run("--image", str(root / "rgb.png"), "--depth", str(root / "depth.npy"),
               "--camera-info", str(root / "camera.yaml"), "--prompt", "Pick up the mug.")
    assert "xyz=(" in out.stdout


def test_depth_flags_errors(files):
    _, root = files
    image = ("--image", str(root / "rgb.png"))
    out = _run(*image, "--depth", str(root / "depth.npy"), check=False)
    assert out.returncode == 2 and "--camera-info" in out.stderr
    out = _run(*image, "--depth", str(root / "depth.npy"), "--camera-info",
               str(root / "wrong.yaml"), check=False)
    assert out.returncode == 2 and "320x120" in out.stderr
    out = _run(*image, "--depth", str(root / "none.npy"), "--camera-info",
               str(root / "camera.yaml"), check=False)
    assert out.returncode == 2 and "could not read a depth image from" in out.stderr
