"""A tabletop scene with ground truth, from a seed: which objects (sim.assets), placed where
(sim.world), seen from which camera (sim.camera), under which ranges (sim.ranges), and the texts
about them (sim.language).

Headless TinyRenderer in a private DIRECT client per call (no shared simulator state). Masks come
from the segmentation buffer, so occlusion is exact; objects with too few visible pixels are
dropped from the scene and its texts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ros_ground.masks import mask_bbox
from ros_ground.sim._quiet import connect_direct, import_pybullet
from ros_ground.sim.assets import ASSETS, CATEGORIES, MAX_PER_CATEGORY
from ros_ground.sim.camera import (
    FAR,
    CameraPose,
    intrinsics,
    render,
    sample_camera,
    surface_points,
)
from ros_ground.sim.language import (
    COLORS,
    Margins,
    Phrase,
    default_margins,
    facts_from_masks,
    scene_texts,
)
from ros_ground.sim.ranges import CLASSIC_RANGES, SceneRanges, scene_set_ranges
from ros_ground.sim.world import Placement, TableLook, build_world, load_table, place_objects
from ros_ground.spatial import pinhole_matrices

p = import_pybullet()


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
    unplaced: list[str] = field(default_factory=list)  # names of requests the table had no room for
    margins: Margins = field(default_factory=lambda: Margins(0.0, 0.0))  # used for relations
    table_look: TableLook = field(default_factory=TableLook)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def k(self) -> np.ndarray:
        """3x3 intrinsic matrix of `rgb` (and of `depth`, registered to it): CameraInfo's K."""
        return pinhole_matrices(*self.intrinsics)[0]

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    def sensor_depth(self) -> np.ndarray:
        """`depth` as a depth camera sends it (HxW float32, metres): NaN, no return, where the
        ray hit nothing; the renderer reads those pixels as its far plane (`FAR`)."""
        depth = self.depth.astype(np.float32, copy=True)
        depth[depth >= FAR * 0.999] = np.nan
        return depth


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
    places the same objects in the same poses under any ranges with equal object counts and
    the same fixed axes (a range of one value, such as the ood width, draws nothing, so drawing
    that axis instead shifts the second stream's later draws).
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
        _, table_top = load_table(client)
        layout, unplaced = place_objects(client, rng, requests, table_top, ranges.region, looks)
    finally:
        p.disconnect(physicsClientId=client)
    camera = sample_camera(rng, width, height, table_top, ranges, extra)
    scene = render_layout(layout, camera, width, height, seed=seed, min_visible_pixels=min_visible_pixels,
                          table_look=table_look)
    scene.unplaced = unplaced
    return scene


def scene_in_set(seed: int, scene_set: str = "in", width: int = 320, height: int = 240,
                 **kwargs) -> Scene:
    """The scene of `seed` in scene set `scene_set` (sim.ranges.SCENE_SETS: in, randomised, ood;
    or `SET:AXIS,...`, those axes drawn from the training ranges: sim.ranges.scene_set_ranges).

    `width` x `height` apply to sets with the classic image size (the "in" set, unless it names
    the width or aspect axis); the others draw their image size from their ranges. Other
    keyword arguments go to `generate_scene`. The sim camera node and the evaluation both render
    their scenes here, so a demo scene is an evaluation scene. Raises ValueError for an unknown set.
    """
    ranges = scene_set_ranges(scene_set)
    # the caller's size stands in for the classic one; a set that draws its size keeps its draw
    classic_size = (ranges.width, ranges.aspect) == (CLASSIC_RANGES.width, CLASSIC_RANGES.aspect)
    size = dict(width=width, height=height) if classic_size else {}
    return generate_scene(seed, ranges=ranges, **size, **kwargs)
