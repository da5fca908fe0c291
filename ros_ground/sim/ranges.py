"""The ranges a scene's settings are drawn from (camera, image, light, table, objects), and the
three named sets of them: classic, training (domain randomisation) and out of distribution."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ros_ground.sim.assets import TABLE_TEXTURES
from ros_ground.sim.language import COLORS


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

# The named scene sets the evaluation and the simulated camera draw from ("in": the classic
# setting, inside every training range; "randomised": the training ranges; "ood": outside them).
SCENE_SETS = {"in": CLASSIC_RANGES, "randomised": TRAINING_RANGES, "ood": OOD_RANGES}


def scene_set_ranges(name: str) -> SceneRanges:
    """The ranges of scene set `name`: one of SCENE_SETS, or `SET:AXIS,...`, set SET with those
    axes drawn from the training ranges instead (`with_training_axes`), which measures what each
    axis outside training costs (e.g. "ood:distance,elevation_deg"). ValueError naming the sets
    or the axes otherwise."""
    base, colon, axes = name.partition(":")
    if base not in SCENE_SETS:
        raise ValueError(f"scene set must be one of {tuple(SCENE_SETS)}, optionally followed by "
                         f"':AXIS,...' (training axes), got {name!r}")
    if not colon:
        return SCENE_SETS[base]
    return with_training_axes(SCENE_SETS[base], axes.split(","))


def with_training_axes(ranges: SceneRanges, axes) -> SceneRanges:
    """`ranges` with `axes` (SceneRanges field names; "palette" brings its `color_jitter`) taken
    from TRAINING_RANGES. ValueError for an unknown, repeated or missing axis."""
    axes = list(axes)
    names = [f.name for f in fields(SceneRanges) if f.name != "color_jitter"]
    unknown = [a for a in axes if a not in names]
    if unknown or not axes or len(set(axes)) != len(axes):
        raise ValueError(f"training axes must be distinct names among {names}, got {axes}")
    change = {a: getattr(TRAINING_RANGES, a) for a in axes}
    if "palette" in axes:
        change["color_jitter"] = TRAINING_RANGES.color_jitter
    return replace(ranges, **change)
