"""PyBullet tabletop scenes with ground-truth masks, from a seed.

Headless TinyRenderer in a private DIRECT client per call (no shared simulator state), no physics
stepping: objects are placed resting on the table top from their bounding boxes, which keeps a
scene deterministic per seed and fast. Masks come from the segmentation buffer, so occlusion is
exact; objects with too few visible pixels are dropped from the scene and its texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Placement:
    """One object as placed in the world: enough to rebuild the scene exactly."""

    category: str
    color: str | None
    position: tuple[float, float, float]  # base position (m, world)
    orientation: tuple[float, float, float, float]  # base quaternion (x, y, z, w)

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
               position: Sequence[float], yaw_orientation: Sequence[float]) -> int:
    """Create one object; mesh-only assets get a cylinder collision shape so getAABB is right."""
    upright = p.getQuaternionFromEuler(asset.upright)
    if asset.source.endswith(".urdf"):
        orientation = p.multiplyTransforms((0, 0, 0), yaw_orientation, (0, 0, 0), upright)[1]
        body = p.loadURDF(_asset_path(asset.source), position, orientation, globalScaling=asset.scale,
                          useFixedBase=True, physicsClientId=client)
    elif asset.source == "primitive:cylinder":
        radius, length = 0.025 * asset.scale, 0.07 * asset.scale
        visual = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=length, physicsClientId=client)
        collision = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=length,
                                           physicsClientId=client)
        body = p.createMultiBody(0, collision, visual, position, yaw_orientation, physicsClientId=client)
    else:  # the torus OBJ: y-up ring of outer radius 0.752 and tube diameter 0.499
        s = asset.scale
        visual = p.createVisualShape(p.GEOM_MESH, fileName=_asset_path(asset.source), meshScale=[s] * 3,
                                     visualFrameOrientation=upright, physicsClientId=client)
        collision = p.createCollisionShape(p.GEOM_CYLINDER, radius=0.752 * s, height=0.499 * s,
                                           physicsClientId=client)
        body = p.createMultiBody(0, collision, visual, position, yaw_orientation, physicsClientId=client)
    if asset.recolor and color is not None:
        p.changeVisualShape(body, -1, rgbaColor=[*COLORS[color], 1.0], textureUniqueId=-1,
                            physicsClientId=client)
    return body


def _table(client: int) -> tuple[int, float]:
    """Load the table; returns its body id and the height of its top."""
    table = p.loadURDF(_asset_path(TABLE_URDF), useFixedBase=True, physicsClientId=client)
    return table, float(p.getAABB(table, physicsClientId=client)[1][2])


def build_world(client: int, layout: Sequence[Placement]) -> tuple[int, list[int]]:
    """Load the table and the placed objects into `client`; returns (table id, object body ids).

    Body ids follow the layout order, so a rebuilt world has the ids the scene recorded.
    """
    table, _ = _table(client)
    bodies = []
    for placement in layout:
        asset = ASSETS[placement.category]
        bodies.append(_load_body(client, asset, placement.color, (0, 0, 0), (0, 0, 0, 1)))
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


def _resting_pose(client: int, category: str, color: str | None, yaw: float
                  ) -> tuple[np.ndarray, np.ndarray, tuple, tuple]:
    """Bounding box and base pose of an object loaded at the origin with `yaw` (then removed)."""
    body = _load_body(client, ASSETS[category], color, (0, 0, 0), p.getQuaternionFromEuler((0.0, 0.0, yaw)))
    lo, hi = (np.array(v) for v in p.getAABB(body, physicsClientId=client))
    base_pos, base_orn = p.getBasePositionAndOrientation(body, physicsClientId=client)
    p.removeBody(body, physicsClientId=client)
    return lo, hi, base_pos, base_orn


def _placement(category: str, color: str | None, x: float, y: float, table_top: float,
               box: tuple[np.ndarray, np.ndarray, tuple, tuple]) -> Placement:
    """Placement whose bounding box is centred on (x, y) and rests on the table top."""
    lo, hi, base_pos, base_orn = box
    centre = (lo + hi) / 2
    position = (float(x - centre[0] + base_pos[0]), float(y - centre[1] + base_pos[1]),
                float(table_top - lo[2] + base_pos[2] + 0.0005))
    return Placement(category, color, position, tuple(float(v) for v in base_orn))


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
           table_top: float) -> list[Placement]:
    """Random non-overlapping resting poses (bounding circles apart) within REGION of the table."""
    placed: list[tuple[float, float, float]] = []  # x, y, footprint radius
    layout = []
    for category, color in requests:
        box = _resting_pose(client, category, color, float(rng.uniform(0, 2 * math.pi)))
        radius = 0.5 * float(np.hypot(*(box[1] - box[0])[:2]))
        for _ in range(200):
            x, y = rng.uniform(-REGION[0], REGION[0]), rng.uniform(-REGION[1], REGION[1])
            if all(math.hypot(x - px, y - py) > radius + pr + GAP for px, py, pr in placed):
                break
        else:
            continue  # no room left: place fewer objects
        placed.append((x, y, radius))
        layout.append(_placement(category, color, x, y, table_top, box))
    return layout


def sample_camera(rng: np.random.Generator, width: int, height: int, table_top: float = 0.626) -> CameraPose:
    """A camera 0.5-0.8 m from the table centre, 30-60 degrees above it, within 40 degrees of
    looking along +y, with a random light from above."""
    target = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04)), table_top)
    distance = rng.uniform(0.5, 0.8)
    azimuth, elevation = np.radians(rng.uniform(-40, 40)), np.radians(rng.uniform(30, 60))
    fov = float(rng.uniform(48, 60))
    offset = distance * np.array([math.sin(azimuth) * math.cos(elevation),
                                  -math.cos(azimuth) * math.cos(elevation), math.sin(elevation)])
    eye = tuple(float(v) for v in np.array(target) + offset)
    light = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)), float(rng.uniform(1.5, 3)))
    return make_camera(eye, target, fov, width, height, light)


def make_camera(eye: Sequence[float], target: Sequence[float], fov_deg: float, width: int, height: int,
                light_direction: Sequence[float] = (0.5, -0.5, 2.0)) -> CameraPose:
    """Camera pose with z up, for an image of width x height."""
    up = (0.0, 0.0, 1.0)
    view = p.computeViewMatrix(eye, target, up)
    proj = p.computeProjectionMatrixFOV(fov_deg, width / height, NEAR, FAR)
    return CameraPose(tuple(eye), tuple(target), up, float(fov_deg), NEAR, FAR, tuple(light_direction),
                      tuple(view), tuple(proj))


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
        lightDirection=camera.light_direction, renderer=p.ER_TINY_RENDERER, physicsClientId=client)
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
                  seed: int = 0, min_visible_pixels: int | None = None) -> Scene:
    """Render a given layout from a given camera into a Scene with masks and texts.

    `seed` drives only the choice among valid texts, so equal inputs give equal scenes.
    """
    if min_visible_pixels is None:
        min_visible_pixels = default_min_pixels(width, height)
    client = connect_direct(p)
    try:
        table, bodies = build_world(client, layout)
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
                 phrases=texts.phrases, layout=list(layout), dropped=dropped, margins=margins)


def generate_scene(seed: int, width: int = 320, height: int = 240,
                   num_objects: int | tuple[int, int] = (2, 6), objects: list[str] | None = None,
                   min_visible_pixels: int | None = None) -> Scene:
    """A random tabletop scene, identical for equal arguments.

    `objects` names the objects to place ("mug", "red cube", "duck"); otherwise 2-6 (or
    `num_objects`) are drawn from CATEGORIES with random palette colours.
    """
    if width < 16 or height < 16:
        raise ValueError(f"image too small: {width}x{height}")
    rng = np.random.default_rng(seed)
    requests = _choose_objects(rng, num_objects, objects)
    client = connect_direct(p)
    try:
        _, table_top = _table(client)
        layout = _place(client, rng, requests, table_top)
    finally:
        p.disconnect(physicsClientId=client)
    camera = sample_camera(rng, width, height, table_top)
    return render_layout(layout, camera, width, height, seed=seed, min_visible_pixels=min_visible_pixels)
