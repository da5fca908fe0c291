"""Simulated tabletop camera: scenes with ground truth, their texts, and rosbag2 recording.

Submodules are imported lazily so `ros_ground.sim.language` (pure vocabulary and text rules) can
be used without loading pybullet.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CATEGORIES": "scene",
    "Scene": "scene",
    "SimObject": "scene",
    "Placement": "scene",
    "CameraPose": "scene",
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
