"""PyBullet tabletop scenes with ground-truth masks, from a seed.

Headless TinyRenderer in a private DIRECT client per call (no shared simulator state), no physics
stepping: objects are placed resting on the table top from their bounding boxes, which keeps a
scene deterministic per seed and fast. Masks come from the segmentation buffer, so occlusion is
exact; objects with too few visible pixels are dropped from the scene and its texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pybullet_data

from ros_ground.rle import mask_bbox
from ros_ground.sim._quiet import connect_direct, import_pybullet
from ros_ground.sim.language import (
    COLORS,
    Margins,
    Phrase,
    default_margins,
    facts_from_masks,
    scene_texts,
)

p = import_pybullet()
TABLE_URDF = "table/table.urdf"
NEAR, FAR = 0.02, 5.0  # clipping planes (m); background depth reads FAR
REGION = (0.28, 0.17)  # half extents (m) of the table area objects are placed in, around its centre
GAP = 0.005  # clearance (m) between object footprints


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


@dataclass(frozen=True)
class SceneRanges:
    """Where a scene's settings are drawn from: each (low, high) pair uniformly, declared once.

    Axes: the camera (distance to its look-at point, elevation above the table plane, azimuth
    around the table with 0 looking along +y, look-at point offset from the table centre in x and
    y, which turns the view off centre in yaw and pitch; vertical field of view), the image
    (width in pixels, width / height), the light (direction x, y and z; TinyRenderer's ambient
    and diffuse coefficients), the table (tint per channel multiplying its look, which is one of
    `table_textures`), the objects (count, half extents of the placement region around the
    table centre in metres, scale times the asset's own, paint: `palette` or COLORS per colour
    word, each channel moved by at most `color_jitter`).
    """

    distance: tuple[float, float]  # m
    elevation_deg: tuple[float, float]
    azimuth_deg: tuple[float, float]
    target_offset: tuple[float, float]  # m, x and y each
    fov_deg: tuple[float, float]
    width: tuple[int, int]  # px
    aspect: tuple[float, float]  # width / height
    light_xy: tuple[float, float]
    light_z: tuple[float, float]
    light_ambient: tuple[float, float]
    light_diffuse: tuple[float, float]
    table_tint: tuple[float, float]  # per channel
    table_textures: tuple[str, ...]
    num_objects: tuple[int, int]
    region: tuple[float, float]  # m, half extents in x and y (not a range)
    object_scale: tuple[float, float]
    color_jitter: float  # largest change of one paint channel (0..1 units)
    palette: tuple[tuple[str, tuple[float, float, float]], ...] | None = None  # None: COLORS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in ("table_textures", "region", "palette", "color_jitter") and value[0] > value[1]:
                raise ValueError(f"{f.name}: low {value[0]} > high {value[1]}")
        if not set(self.table_textures) <= set(TABLE_TEXTURES) or not self.table_textures:
            raise ValueError(f"table_textures must be some of {TABLE_TEXTURES}, got {self.table_textures}")

    def paint(self, color: str) -> tuple[float, float, float]:
        """The base RGB (0..1) of a colour word under these ranges, before jitter."""
        return dict(self.palette)[color] if self.palette else COLORS[color]


    def paint_box(self, color: str) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest RGB (0..1 per channel) an object of colour word `color` is painted."""
        base = np.array(self.paint(color))
        return np.clip(base - self.color_jitter, 0, 1), np.clip(base + self.color_jitter, 0, 1)

    def axes_outside(self, reference: SceneRanges) -> list[str]:
        """The axes on which every setting these ranges can draw lies outside `reference`'s:
        disjoint intervals; table textures `reference` never uses; a wider placement region; a
        palette whose every colour word is painted outside `reference`'s paints for that word."""
        out = []
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(reference, f.name)
            if f.name == "table_textures":
                disjoint = not set(mine) & set(theirs)
            elif f.name == "region":
                disjoint = mine[0] > theirs[0] or mine[1] > theirs[1]
            elif f.name == "palette":
                disjoint = all(_boxes_disjoint(self.paint_box(c), reference.paint_box(c)) for c in COLORS)
            elif f.name == "color_jitter":
                continue  # part of the palette axis
            else:
                disjoint = mine[1] < theirs[0] or mine[0] > theirs[1]
            if disjoint:
                out.append(f.name)
        return out

    def within(self, reference: SceneRanges) -> bool:
        """Whether every setting these ranges can draw is one `reference` can draw too."""
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(reference, f.name)
            if f.name == "table_textures":
                inside = set(mine) <= set(theirs)
            elif f.name == "region":
                inside = mine[0] <= theirs[0] and mine[1] <= theirs[1]
            elif f.name == "palette":
                inside = all(np.all(self.paint_box(c)[0] >= reference.paint_box(c)[0])
                             and np.all(self.paint_box(c)[1] <= reference.paint_box(c)[1]) for c in COLORS)
            elif f.name == "color_jitter":
                continue
            else:
                inside = theirs[0] <= mine[0] and mine[1] <= theirs[1]
            if not inside:
                return False
        return True


def _boxes_disjoint(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(np.any((a[1] < b[0]) | (a[0] > b[1])))


# What every scene looked like before randomisation (and still does by default): a 320x240 image
# from a camera 0.5-0.8 m away and 30-60 degrees up, the wooden table, the palette as it is.
CLASSIC_RANGES = SceneRanges(
    distance=(0.5, 0.8), elevation_deg=(30.0, 60.0), azimuth_deg=(-40.0, 40.0),
    target_offset=(-0.04, 0.04), fov_deg=(48.0, 60.0), width=(320, 320), aspect=(4 / 3, 4 / 3),
    light_xy=(-1.0, 1.0), light_z=(1.5, 3.0), light_ambient=(0.6, 0.6), light_diffuse=(0.35, 0.35),
    table_tint=(1.0, 1.0), table_textures=("wood",), num_objects=(2, 6), region=(0.28, 0.17),
    object_scale=(1.0, 1.0), color_jitter=0.0)

# Domain randomisation for training: every classic setting lies inside these (tests check it).
TRAINING_RANGES = SceneRanges(
    distance=(0.45, 0.9), elevation_deg=(25.0, 70.0), azimuth_deg=(-60.0, 60.0),
    target_offset=(-0.1, 0.1), fov_deg=(42.0, 66.0), width=(240, 640), aspect=(1.25, 1.5),
    light_xy=(-1.5, 1.5), light_z=(0.8, 3.0), light_ambient=(0.4, 0.8), light_diffuse=(0.2, 0.6),
    table_tint=(0.45, 1.0), table_textures=TABLE_TEXTURES, num_objects=(2, 8), region=(0.34, 0.22),
    object_scale=(0.8, 1.25), color_jitter=0.08)

# Shades of each colour word that training never paints: every one differs from its COLORS
# entry by more than two training jitters in some channel, so it lies outside the training box.
HELD_OUT_PALETTE: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("red", (0.62, 0.04, 0.22)),
    ("green", (0.35, 0.8, 0.3)),
    ("blue", (0.25, 0.5, 1.0)),
    ("yellow", (0.8, 0.68, 0.02)),
    ("orange", (0.88, 0.3, 0.02)),
    ("purple", (0.68, 0.32, 0.88)),
    ("white", (0.76, 0.78, 0.8)),
    ("black", (0.24, 0.22, 0.2)),
)

# Out of distribution: a camera lower (elevation) and farther than any training pose, a 16:9
# 800x450 image (wider and flatter than any trained), held-out shades; the rest as in training.
OOD_RANGES = SceneRanges(
    distance=(1.0, 1.2), elevation_deg=(12.0, 20.0), azimuth_deg=(-60.0, 60.0),
    target_offset=(-0.1, 0.1), fov_deg=(42.0, 66.0), width=(800, 800), aspect=(16 / 9, 16 / 9),
    light_xy=(-1.5, 1.5), light_z=(0.8, 3.0), light_ambient=(0.4, 0.8), light_diffuse=(0.2, 0.6),
    table_tint=(0.45, 1.0), table_textures=TABLE_TEXTURES, num_objects=(2, 8), region=(0.34, 0.22),
    object_scale=(0.8, 1.25), color_jitter=0.03, palette=HELD_OUT_PALETTE)


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
        return f"{self.color} {self.category}" if self.color else self.category


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


@dataclass
class SimObject:
    name: str  # "red mug"
    category: str  # "mug"
    color: str | None  # "red"; own colour for objects that keep theirs, None if it has no one colour
    urdf: str  # source asset, relative to pybullet_data
    body_id: int
    position: tuple[float, float, float]  # centre of the world bounding box (m)
    mask: np.ndarray  # bool HxW, visible pixels
    bbox: tuple[int, int, int, int]  # x, y, w, h of the mask
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    depth: float = 0.0  # median camera-frame depth of the visible pixels (m)
    # centre of the visible surface (mean of its rendered points), camera optical frame (m)
    centroid: tuple[float, float, float] = (math.nan, math.nan, math.nan)


@dataclass
class Scene:
    seed: int
    rgb: np.ndarray  # HxWx3 uint8
    depth: np.ndarray  # HxW float32, metres along the optical axis; FAR where nothing was hit
    objects: list[SimObject]  # visible objects only
    intrinsics: tuple[float, float, float, float]  # fx, fy, cx, cy (pixel centres at integers)
    camera: CameraPose
    description: str
    referring: list[tuple[str, int]]  # (expression, index into objects)
    questions: list[tuple[str, str]]  # (question, answer)
    phrases: list[Phrase] = field(default_factory=list)  # description spans -> object indices
    layout: list[Placement] = field(default_factory=list)  # everything placed, visible or not
    dropped: list[str] = field(default_factory=list)  # names of placed objects too hidden to keep
    margins: Margins = field(default_factory=lambda: Margins(0.0, 0.0))  # used for relations
    table_look: TableLook = field(default_factory=TableLook)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def k(self) -> np.ndarray:
        """3x3 intrinsic matrix of `rgb` (and of `depth`, registered to it): CameraInfo's K."""
        fx, fy, cx, cy = self.intrinsics
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


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


def _table(client: int, look: TableLook | None = None) -> tuple[int, float]:
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
    table, _ = _table(client, table_look)
    bodies = []
    for placement in layout:
        asset = ASSETS[placement.category]
        bodies.append(_load_body(client, asset, placement.color, (0, 0, 0), (0, 0, 0, 1),
                                 placement.scale, placement.rgb))
        p.resetBasePositionAndOrientation(bodies[-1], placement.position, placement.orientation,
                                          physicsClientId=client)
    return table, bodies


def _parse_request(text: str, rng: np.random.Generator) -> tuple[str, str | None]:
    """'red mug' -> ('mug', 'red'); 'mug' -> ('mug', random or own colour)."""
    text = " ".join(text.lower().split())
    for category in sorted(CATEGORIES, key=len, reverse=True):
        if text == category or text.endswith(" " + category):
            word = text[: len(text) - len(category)].strip() or None
            asset = ASSETS[category]
            if asset.recolor:
                if word is not None and word not in COLORS:
                    raise ValueError(f"unknown colour {word!r} in {text!r}; known: {sorted(COLORS)}")
                return category, word or str(rng.choice(list(COLORS)))
            if word is not None and word != asset.own_color:
                raise ValueError(f"{category} keeps its own colour ({asset.own_color}); got {word!r}")
            return category, asset.own_color
    raise ValueError(f"unknown object {text!r}; categories: {CATEGORIES}")


def _choose_objects(rng: np.random.Generator, num_objects: int | tuple[int, int],
                    objects: Sequence[str] | None) -> list[tuple[str, str | None]]:
    if objects is not None:
        return [_parse_request(o, rng) for o in objects]
    low, high = (num_objects, num_objects) if isinstance(num_objects, int) else num_objects
    if not 1 <= low <= high:
        raise ValueError(f"num_objects must be >= 1 and low <= high, got {num_objects}")
    count = int(rng.integers(low, high + 1))
    chosen: list[tuple[str, str | None]] = []
    while len(chosen) < count:
        category = str(rng.choice(CATEGORIES))
        if sum(c == category for c, _ in chosen) >= MAX_PER_CATEGORY.get(category, count):
            continue
        asset = ASSETS[category]
        chosen.append((category, str(rng.choice(list(COLORS))) if asset.recolor else asset.own_color))
    return chosen


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
        _, table_top = _table(client)
        return _placement(category, color, x, y, table_top, _resting_pose(client, category, color, yaw))
    finally:
        p.disconnect(physicsClientId=client)


def _place(client: int, rng: np.random.Generator, requests: Sequence[tuple[str, str | None]],
           table_top: float, region: tuple[float, float] = REGION,
           looks: Sequence[tuple[float, tuple[float, float, float] | None]] | None = None
           ) -> list[Placement]:
    """Random non-overlapping resting poses (bounding circles apart) within `region` of the
    table; `looks` gives each request's (scale, paint) (default: 1 and its colour word's)."""
    placed: list[tuple[float, float, float]] = []  # x, y, footprint radius
    layout = []
    for k, (category, color) in enumerate(requests):
        scale, rgb = looks[k] if looks is not None else (1.0, None)
        box = _resting_pose(client, category, color, float(rng.uniform(0, 2 * math.pi)), scale)
        radius = 0.5 * float(np.hypot(*(box[1] - box[0])[:2]))
        for _ in range(200):
            x, y = rng.uniform(-region[0], region[0]), rng.uniform(-region[1], region[1])
            if all(math.hypot(x - px, y - py) > radius + pr + GAP for px, py, pr in placed):
                break
        else:
            continue  # no room left: place fewer objects
        placed.append((x, y, radius))
        layout.append(_placement(category, color, x, y, table_top, box, scale, rgb))
    return layout


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


def default_min_pixels(width: int, height: int) -> int:
    """Smallest visible area kept: 0.05 % of the image, at least 20 pixels (38 at 320x240)."""
    return max(20, int(0.0005 * width * height))


def render_layout(layout: Sequence[Placement], camera: CameraPose, width: int = 320, height: int = 240,
                  seed: int = 0, min_visible_pixels: int | None = None,
                  table_look: TableLook | None = None) -> Scene:
    """Render a given layout from a given camera into a Scene with masks and texts.

    `seed` drives only the choice among valid texts, so equal inputs give equal scenes.
    `table_look`: the table's tint and texture (None: its own wood).
    """
    if min_visible_pixels is None:
        min_visible_pixels = default_min_pixels(width, height)
    client = connect_direct(p)
    try:
        table, bodies = build_world(client, layout, table_look)
        rgb, depth, seg, zbuf = render(client, camera, width, height)
        objects, dropped = [], []
        for placement, body in zip(layout, bodies):
            mask = seg == body
            if int(mask.sum()) < min_visible_pixels:
                dropped.append(placement.name)
                continue
            lo, hi = p.getAABB(body, physicsClientId=client)
            rows, cols = np.nonzero(mask)
            objects.append(SimObject(
                name=placement.name, category=placement.category, color=placement.color,
                urdf=ASSETS[placement.category].source, body_id=body,
                position=tuple(float((a + b) / 2) for a, b in zip(lo, hi)), mask=mask,
                bbox=mask_bbox(mask), orientation=placement.orientation,
                depth=float(np.median(depth[rows, cols])),
                centroid=tuple(float(v) for v in surface_points(camera, zbuf, mask).mean(axis=0))))
    finally:
        p.disconnect(physicsClientId=client)
    margins = default_margins(width)
    facts = facts_from_masks([o.category for o in objects], [o.color for o in objects],
                             [o.mask for o in objects], depth)
    text_rng = np.random.default_rng([seed, 1])
    present = {o.category for o in objects}
    absent = [c for c in CATEGORIES if c not in present]
    absent = [absent[int(text_rng.integers(len(absent)))]] if absent else []  # one category to ask "no" about
    texts = scene_texts(facts, margins, text_rng, absent=absent)
    return Scene(seed=seed, rgb=rgb, depth=depth, objects=objects,
                 intrinsics=intrinsics(camera, width, height), camera=camera,
                 description=texts.description, referring=texts.referring, questions=texts.questions,
                 phrases=texts.phrases, layout=list(layout), dropped=dropped, margins=margins,
                 table_look=table_look or TableLook())


def sample_size(rng: np.random.Generator, ranges: SceneRanges) -> tuple[int, int]:
    """(width, height): a width from `ranges.width`, the height from an aspect in `ranges.aspect`."""
    width = int(rng.integers(ranges.width[0], ranges.width[1] + 1))
    return width, max(16, int(round(width / float(rng.uniform(*ranges.aspect)))))


def _looks(rng: np.random.Generator, requests: Sequence[tuple[str, str | None]], ranges: SceneRanges
           ) -> list[tuple[float, tuple[float, float, float] | None]]:
    """(scale, paint) per requested object; paint None where the colour word's COLORS entry is
    used as it is (classic ranges) or the object keeps its own look."""
    looks = []
    for category, color in requests:
        scale = float(rng.uniform(*ranges.object_scale))
        rgb = None
        if ASSETS[category].recolor and color is not None and (ranges.palette or ranges.color_jitter):
            base = np.array(ranges.paint(color))
            jitter = rng.uniform(-ranges.color_jitter, ranges.color_jitter, 3)
            rgb = tuple(float(v) for v in np.clip(base + jitter, 0.0, 1.0))
        looks.append((scale, rgb))
    return looks


def _table_look(rng: np.random.Generator, ranges: SceneRanges) -> TableLook:
    tint = tuple(float(v) for v in rng.uniform(*ranges.table_tint, 3))
    texture = str(ranges.table_textures[int(rng.integers(len(ranges.table_textures)))])
    return TableLook(tint, texture, int(rng.integers(2**31)))


def generate_scene(seed: int, width: int | None = None, height: int | None = None,
                   num_objects: int | tuple[int, int] | None = None, objects: list[str] | None = None,
                   min_visible_pixels: int | None = None, ranges: SceneRanges | None = None) -> Scene:
    """A random tabletop scene, identical for equal arguments.

    `objects` names the objects to place ("mug", "red cube", "duck"); otherwise `num_objects`
    (default the ranges' count, 2-6) are drawn from CATEGORIES with random palette colours.
    `ranges` (default CLASSIC_RANGES) are the settings drawn from, e.g. TRAINING_RANGES for
    domain randomisation or OOD_RANGES; `width` and `height` (default 320x240 under the classic
    ranges, else drawn from the ranges) override the image size. The draws the classic scenes
    make come from one seeded stream and everything randomisation adds from a second, so a seed
    places the same objects in the same poses under any ranges with equal object counts.
    """
    ranges = CLASSIC_RANGES if ranges is None else ranges
    extra = np.random.default_rng([seed, 2])
    if width is None and height is None:
        width, height = (320, 240) if ranges == CLASSIC_RANGES else sample_size(extra, ranges)
    elif width is None or height is None:
        raise ValueError("give both width and height, or neither")
    if width < 16 or height < 16:
        raise ValueError(f"image too small: {width}x{height}")
    rng = np.random.default_rng(seed)
    requests = _choose_objects(rng, ranges.num_objects if num_objects is None else num_objects, objects)
    looks = _looks(extra, requests, ranges)
    table_look = _table_look(extra, ranges) if ranges != CLASSIC_RANGES else None
    client = connect_direct(p)
    try:
        _, table_top = _table(client)
        layout = _place(client, rng, requests, table_top, ranges.region, looks)
    finally:
        p.disconnect(physicsClientId=client)
    camera = sample_camera(rng, width, height, table_top, ranges, extra)
    return render_layout(layout, camera, width, height, seed=seed, min_visible_pixels=min_visible_pixels,
                         table_look=table_look)
