"""The objects a simulated scene can hold: one pybullet_data asset per category, with how to
stand it up and whether it is painted with a colour word; the table's textures.

Pure data (no pybullet import), so vocabularies and training code can read the categories
without loading the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TABLE_URDF = "table/table.urdf"


@dataclass(frozen=True)
class Asset:
    """How to build one category from pybullet_data: source file, size, upright pose, colour."""

    category: str
    source: str  # path relative to pybullet_data (URDF or OBJ) or "primitive:cylinder"
    scale: float = 1.0
    upright: tuple[float, float, float] = (0.0, 0.0, 0.0)  # roll, pitch, yaw that stands it up
    own_color: str | None = None  # colour word for objects that keep their own look
    recolor: bool = True  # painted with a palette colour (texture removed)


ASSETS: dict[str, Asset] = {a.category: a for a in (
    Asset("mug", "objects/mug.urdf"),
    Asset("duck", "duck_vhacd.urdf", own_color="yellow", recolor=False),
    Asset("teddy bear", "teddy_vhacd.urdf", 1.4, upright=(math.pi / 2, 0.0, 0.0), recolor=False),
    Asset("lego brick", "lego/lego.urdf", 1.5),
    Asset("jenga block", "jenga/jenga.urdf", 0.8),
    Asset("cube", "cube_small.urdf"),
    Asset("sphere", "sphere2.urdf", 0.06),
    Asset("soccer ball", "soccerball.urdf", 0.07, recolor=False),
    Asset("torus", "torus/torus_textured.obj", 0.06, upright=(math.pi / 2, 0.0, 0.0)),
    Asset("tray", "tray/tray.urdf", 0.3),
    Asset("cylinder", "primitive:cylinder", 1.0),
)}

CATEGORIES: list[str] = list(ASSETS)
MAX_PER_CATEGORY = {"tray": 1}  # a second tray would crowd the table
TABLE_TEXTURES = ("wood", "flat", "noise")  # the URDF's own wood image, none, smooth random noise
