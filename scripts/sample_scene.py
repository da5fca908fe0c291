#!/usr/bin/env python3
"""docs/sample/: one simulated scene as a camera gives it, for trying `ros-ground ground` without
a camera: scene.png (RGB), depth.png (16-bit millimetres, 0 = no return) and camera_info.yaml
(the camera_calibration format `--camera-info` reads). Re-run after a change to the simulator."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ros_ground.image_files import save_png  # noqa: E402
from ros_ground.sim.scene import generate_scene  # noqa: E402

SEED = 3  # held out of training (its seeds start at 100000): a teddy bear, two ducks, a green mug, ...


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    scene = generate_scene(SEED)
    save_png(out / "scene.png", scene.rgb)
    depth = scene.sensor_depth()  # NaN where the ray hit nothing (the renderer's far plane)
    depth_mm = np.where(np.isfinite(depth) & (depth > 0), depth * 1000.0, 0.0)
    # save_png writes RGB only; a 16-bit single-channel PNG goes through OpenCV directly
    if not cv2.imwrite(str(out / "depth.png"), np.clip(np.rint(depth_mm), 0, 65535).astype(np.uint16)):
        raise OSError(f"could not write {out / 'depth.png'}")
    fx, fy, cx, cy = scene.intrinsics
    height, width = scene.rgb.shape[:2]
    k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    (out / "camera_info.yaml").write_text(
        f"image_width: {width}\nimage_height: {height}\ncamera_name: sim\n"
        f"camera_matrix: {{rows: 3, cols: 3, data: {k}}}\ndistortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0.0, 0.0, 0.0, 0.0, 0.0]}\n"
        "rectification_matrix: {rows: 3, cols: 3, data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]}\n"
        f"projection_matrix: {{rows: 3, cols: 4, data: {p}}}\n")
    print(f"{out}: seed {SEED}, {width}x{height}: {scene.description}")


if __name__ == "__main__":
    main(Path(__file__).resolve().parent.parent / "docs" / "sample")
