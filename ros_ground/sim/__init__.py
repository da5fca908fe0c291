"""Simulated tabletop camera: scenes with ground truth, their texts, and rosbag2 recording.

Modules, one job each:

- `assets`: the object categories and the pybullet_data assets they are built from;
- `ranges`: the ranges a scene's settings are drawn from (classic, training, out of distribution);
- `world`: the pybullet world: table, bodies, resting placements;
- `camera`: the pinhole camera: sampling, intrinsics, rendering, unprojection;
- `scene`: `generate_scene` / `render_layout`, a `Scene` with masks and texts;
- `language`: the vocabulary and the texts about a scene;
- `bag`: recording scenes to rosbag2 and reading them back.

Submodules are imported lazily so `ros_ground.sim.language`, `assets` and `ranges` (pure data and
text rules) can be used without loading pybullet.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CATEGORIES": "assets",
    "Scene": "scene",
    "SimObject": "scene",
    "Placement": "world",
    "CameraPose": "camera",
    "generate_scene": "scene",
    "render_layout": "scene",
    "write_scenes": "bag",
    "read_images": "bag",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
