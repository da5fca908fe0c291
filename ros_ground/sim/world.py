"""The pybullet world of a scene: the table (with its look), the objects' bodies, and their
resting poses on the table top, placed by hand (`place_at`) or at random (`place_objects`).

No physics stepping: objects are placed resting on the table top from their bounding boxes,
which keeps a layout deterministic per seed and fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pybullet_data

from ros_ground.sim._quiet import connect_direct, import_pybullet
from ros_ground.sim.assets import ASSETS, CATEGORIES, TABLE_URDF, Asset
from ros_ground.sim.language import COLORS

p = import_pybullet()
REGION = (0.28, 0.17)  # half extents (m) of the table area objects are placed in, around its centre
GAP = 0.005  # clearance (m) between object footprints


@dataclass(frozen=True)
class TableLook:
    """The table's appearance: tint (RGB 0..1) over one of TABLE_TEXTURES (noise from `seed`)."""

    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    texture: str = "wood"
    seed: int = 0


@dataclass(frozen=True)
class Placement:
    """One object as placed in the world: enough to rebuild the scene exactly."""

    category: str
    color: str | None
    position: tuple[float, float, float]  # base position (m, world)
    orientation: tuple[float, float, float, float]  # base quaternion (x, y, z, w)
    scale: float = 1.0  # times the asset's own scale
    rgb: tuple[float, float, float] | None = None  # paint (0..1); None: the colour word's COLORS entry

    @property
    def name(self) -> str:
        return object_name(self.category, self.color)


def object_name(category: str, color: str | None) -> str:
    """'red mug'; a category without a colour word is its own name."""
    return f"{color} {category}" if color else category


def _asset_path(source: str) -> str:
    return f"{pybullet_data.getDataPath()}/{source}"


def _load_body(client: int, asset: Asset, color: str | None,
               position: Sequence[float], yaw_orientation: Sequence[float], scale: float = 1.0,
               rgb: Sequence[float] | None = None) -> int:
    """Create one object; mesh-only assets get a cylinder collision shape so getAABB is right.

    `scale` multiplies the asset's own; `rgb` (0..1) replaces the colour word's paint.
    """
    upright = p.getQuaternionFromEuler(asset.upright)
    if asset.source.endswith(".urdf"):
        orientation = p.multiplyTransforms((0, 0, 0), yaw_orientation, (0, 0, 0), upright)[1]
        body = p.loadURDF(_asset_path(asset.source), position, orientation,
                          globalScaling=asset.scale * scale, useFixedBase=True, physicsClientId=client)
    elif asset.source == "primitive:cylinder":
        radius, length = 0.025 * asset.scale * scale, 0.07 * asset.scale * scale
        visual = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=length, physicsClientId=client)
        collision = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=length,
                                           physicsClientId=client)
        body = p.createMultiBody(0, collision, visual, position, yaw_orientation, physicsClientId=client)
    else:  # the torus OBJ: y-up ring of outer radius 0.752 and tube diameter 0.499
        s = asset.scale * scale
        visual = p.createVisualShape(p.GEOM_MESH, fileName=_asset_path(asset.source), meshScale=[s] * 3,
                                     visualFrameOrientation=upright, physicsClientId=client)
        collision = p.createCollisionShape(p.GEOM_CYLINDER, radius=0.752 * s, height=0.499 * s,
                                           physicsClientId=client)
        body = p.createMultiBody(0, collision, visual, position, yaw_orientation, physicsClientId=client)
    if asset.recolor and color is not None:
        paint = COLORS[color] if rgb is None else tuple(rgb)
        p.changeVisualShape(body, -1, rgbaColor=[*paint, 1.0], textureUniqueId=-1,
                            physicsClientId=client)
    return body


def noise_texture(seed: int, size: int = 256) -> np.ndarray:
    """A smooth grey noise image (size x size x 3 uint8) for the table: cubic upsampled 16x16
    random values around mid grey, so the tint still decides the table's colour."""
    import cv2

    coarse = np.random.default_rng([seed, 3]).uniform(0.55, 1.0, (16, 16)).astype(np.float32)
    fine = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grey = np.clip(fine * 255, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def load_table(client: int, look: TableLook | None = None) -> tuple[int, float]:
    """Load the table with `look` (None: its own); returns its body id and the height of its top."""
    table = p.loadURDF(_asset_path(TABLE_URDF), useFixedBase=True, physicsClientId=client)
    if look is not None and look != TableLook():
        texture = {"wood": None, "flat": -1}.get(look.texture)
        if look.texture == "noise":
            import tempfile

            import cv2

            with tempfile.TemporaryDirectory() as tmp:
                path = f"{tmp}/table.png"
                cv2.imwrite(path, noise_texture(look.seed))
                texture = p.loadTexture(path, physicsClientId=client)
        extra = {} if texture is None else {"textureUniqueId": texture}
        p.changeVisualShape(table, -1, rgbaColor=[*look.tint, 1.0], physicsClientId=client, **extra)
    return table, float(p.getAABB(table, physicsClientId=client)[1][2])


def build_world(client: int, layout: Sequence[Placement], table_look: TableLook | None = None
                ) -> tuple[int, list[int]]:
    """Load the table (with `table_look`) and the placed objects into `client`; returns (table id,
    object body ids).

    Body ids follow the layout order, so a rebuilt world has the ids the scene recorded.
    """
    table, _ = load_table(client, table_look)
    bodies = []
    for placement in layout:
        asset = ASSETS[placement.category]
        bodies.append(_load_body(client, asset, placement.color, (0, 0, 0), (0, 0, 0, 1),
                                 placement.scale, placement.rgb))
        p.resetBasePositionAndOrientation(bodies[-1], placement.position, placement.orientation,
                                          physicsClientId=client)
    return table, bodies



def _resting_pose(client: int, category: str, color: str | None, yaw: float, scale: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Bounding box and base pose of an object loaded at the origin with `yaw` (then removed)."""
    body = _load_body(client, ASSETS[category], color, (0, 0, 0),
                      p.getQuaternionFromEuler((0.0, 0.0, yaw)), scale)
    lo, hi = (np.array(v) for v in p.getAABB(body, physicsClientId=client))
    base_pos, base_orn = p.getBasePositionAndOrientation(body, physicsClientId=client)
    p.removeBody(body, physicsClientId=client)
    return lo, hi, base_pos, base_orn


def _placement(category: str, color: str | None, x: float, y: float, table_top: float,
               box: tuple[np.ndarray, np.ndarray, tuple, tuple], scale: float = 1.0,
               rgb: tuple[float, float, float] | None = None) -> Placement:
    """Placement whose bounding box is centred on (x, y) and rests on the table top."""
    lo, hi, base_pos, base_orn = box
    centre = (lo + hi) / 2
    position = (float(x - centre[0] + base_pos[0]), float(y - centre[1] + base_pos[1]),
                float(table_top - lo[2] + base_pos[2] + 0.0005))
    return Placement(category, color, position, tuple(float(v) for v in base_orn), scale, rgb)


def place_at(category: str, x: float, y: float, yaw: float = 0.0, color: str | None = None) -> Placement:
    """A placement of one object resting on the table with its box centred on (x, y) (metres)."""
    if category not in ASSETS:
        raise ValueError(f"unknown category {category!r}; categories: {CATEGORIES}")
    if color is not None and color not in COLORS:
        raise ValueError(f"unknown colour {color!r}; known: {sorted(COLORS)}")
    asset = ASSETS[category]
    color = color if asset.recolor else asset.own_color
    client = connect_direct(p)
    try:
        _, table_top = load_table(client)
        return _placement(category, color, x, y, table_top, _resting_pose(client, category, color, yaw))
    finally:
        p.disconnect(physicsClientId=client)


def place_objects(client: int, rng: np.random.Generator, requests: Sequence[tuple[str, str | None]],
           table_top: float, region: tuple[float, float] = REGION,
           looks: Sequence[tuple[float, tuple[float, float, float] | None]] | None = None
           ) -> tuple[list[Placement], list[str]]:
    """Random non-overlapping resting poses (bounding circles apart) within `region` of the
    table; `looks` gives each request's (scale, paint) (default: 1 and its colour word's).

    Returns the placements and the names of the requests no free spot was found for (200
    random tries each), in request order.
    """
    placed: list[tuple[float, float, float]] = []  # x, y, footprint radius
    layout, unplaced = [], []
    for k, (category, color) in enumerate(requests):
        scale, rgb = looks[k] if looks is not None else (1.0, None)
        box = _resting_pose(client, category, color, float(rng.uniform(0, 2 * math.pi)), scale)
        radius = 0.5 * float(np.hypot(*(box[1] - box[0])[:2]))
        for _ in range(200):
            x, y = rng.uniform(-region[0], region[0]), rng.uniform(-region[1], region[1])
            if all(math.hypot(x - px, y - py) > radius + pr + GAP for px, py, pr in placed):
                break
        else:
            unplaced.append(object_name(category, color))
            continue
        placed.append((x, y, radius))
        layout.append(_placement(category, color, x, y, table_top, box, scale, rgb))
    return layout, unplaced
