"""The simulated pinhole camera: its pose and light, sampling one from scene ranges, its
intrinsics, rendering through it (RGB, metric depth, segmentation) and unprojecting pixels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ros_ground.sim._quiet import import_pybullet
from ros_ground.sim.ranges import CLASSIC_RANGES, SceneRanges

p = import_pybullet()
NEAR, FAR = 0.02, 5.0  # clipping planes (m); background depth reads FAR


@dataclass(frozen=True)
class CameraPose:
    """Pinhole camera looking at the table; matrices in pybullet's column-major order."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float]
    fov_deg: float  # vertical field of view
    near: float
    far: float
    light_direction: tuple[float, float, float]
    view_matrix: tuple[float, ...]
    projection_matrix: tuple[float, ...]
    light_ambient: float = 0.6  # TinyRenderer's lighting coefficients (its defaults)
    light_diffuse: float = 0.35

    def world_from_optical(self) -> np.ndarray:
        """4x4 pose of the optical frame (x right, y down, z forward, as in ROS) in the world."""
        eye, target = np.array(self.eye), np.array(self.target)
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, np.array(self.up))
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        pose = np.eye(4)
        pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
        return pose


def sample_camera(rng: np.random.Generator, width: int, height: int, table_top: float = 0.626,
                  ranges: SceneRanges = CLASSIC_RANGES, extra: np.random.Generator | None = None
                  ) -> CameraPose:
    """A camera looking at the table centre from `ranges` (default: 0.5-0.8 m away, 30-60 degrees
    above it, within 40 degrees of looking along +y), with a random light from above.

    The light's coefficients are drawn from `extra` (their lows without it), so `rng` draws the
    same numbers under any ranges.
    """
    r = ranges
    target = (float(rng.uniform(*r.target_offset)), float(rng.uniform(*r.target_offset)), table_top)
    distance = rng.uniform(*r.distance)
    azimuth, elevation = np.radians(rng.uniform(*r.azimuth_deg)), np.radians(rng.uniform(*r.elevation_deg))
    fov = float(rng.uniform(*r.fov_deg))
    offset = distance * np.array([math.sin(azimuth) * math.cos(elevation),
                                  -math.cos(azimuth) * math.cos(elevation), math.sin(elevation)])
    eye = tuple(float(v) for v in np.array(target) + offset)
    light = (float(rng.uniform(*r.light_xy)), float(rng.uniform(*r.light_xy)), float(rng.uniform(*r.light_z)))
    ambient, diffuse = ((float(extra.uniform(*r.light_ambient)), float(extra.uniform(*r.light_diffuse)))
                        if extra is not None else (r.light_ambient[0], r.light_diffuse[0]))
    return make_camera(eye, target, fov, width, height, light, ambient, diffuse)


def make_camera(eye: Sequence[float], target: Sequence[float], fov_deg: float, width: int, height: int,
                light_direction: Sequence[float] = (0.5, -0.5, 2.0), light_ambient: float = 0.6,
                light_diffuse: float = 0.35) -> CameraPose:
    """Camera pose with z up, for an image of width x height."""
    up = (0.0, 0.0, 1.0)
    view = p.computeViewMatrix(eye, target, up)
    proj = p.computeProjectionMatrixFOV(fov_deg, width / height, NEAR, FAR)
    return CameraPose(tuple(eye), tuple(target), up, float(fov_deg), NEAR, FAR, tuple(light_direction),
                      tuple(view), tuple(proj), float(light_ambient), float(light_diffuse))


def intrinsics(camera: CameraPose, width: int, height: int) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy of the rendered image, pixel centres at integer coordinates (OpenCV/ROS).

    The principal point is where TinyRenderer actually puts it: (W/2, H/2 - 1), half a pixel off
    the ideal ((W-1)/2, (H-1)/2) in each axis; measured by rendering 4 mm spheres at known points
    (residual < 0.01 px at 640x480).
    """
    fy = (height / 2) / math.tan(math.radians(camera.fov_deg) / 2)
    return fy, fy, width / 2, height / 2 - 1


def render(client: int, camera: CameraPose, width: int, height: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """RGB (HxWx3 uint8), metric depth (HxW float32, registered to the RGB: metres along the
    optical axis, the depth buffer linearised with the near/far planes), segmentation (HxW
    int32 body ids, -1 none) and the raw depth buffer (HxW float64, 0..1)."""
    _, _, rgba, zbuf, seg = p.getCameraImage(
        width, height, camera.view_matrix, camera.projection_matrix,
        lightDirection=camera.light_direction, lightAmbientCoeff=camera.light_ambient,
        lightDiffuseCoeff=camera.light_diffuse, renderer=p.ER_TINY_RENDERER, physicsClientId=client)
    rgb = np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3])
    zbuf = np.asarray(zbuf, dtype=np.float64).reshape(height, width)
    depth = (camera.far * camera.near / (camera.far - (camera.far - camera.near) * zbuf)).astype(np.float32)
    return rgb, depth, np.asarray(seg, dtype=np.int32).reshape(height, width), zbuf


def surface_points(camera: CameraPose, zbuf: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The rendered surface points of the masked pixels, [N, 3] in the camera optical frame (m).

    Unprojected through pybullet's own view and projection matrices (normalised device
    coordinates of each pixel and its depth-buffer value), not through `intrinsics` and the
    linearised depth, so the two routes check each other. The pixel-to-NDC mapping uses the
    principal point TinyRenderer draws with (see `intrinsics`).
    """
    height, width = zbuf.shape
    rows, cols = np.nonzero(mask)
    ndc = np.stack([(cols - width / 2) / (width / 2), -(rows - (height / 2 - 1)) / (height / 2),
                    2.0 * zbuf[rows, cols] - 1.0, np.ones(rows.size)])
    clip_from_world = (np.asarray(camera.projection_matrix).reshape(4, 4).T
                       @ np.asarray(camera.view_matrix).reshape(4, 4).T)
    world = np.linalg.inv(clip_from_world) @ ndc
    world = world[:3] / world[3]
    optical_from_world = np.linalg.inv(camera.world_from_optical())
    return (optical_from_world[:3, :3] @ world + optical_from_world[:3, 3:]).T
