"""Windows of a large frame at SAM's input scale, for point prompts and mask proposals on
small objects.

SAM resizes a frame's longer side to its encoder's input (`img_size`: 1024 for the released
models, 320 for `sim`), so in a frame larger than that a small object loses pixels before the
encoder sees it: on the sim's 800x450 ood frames (2.5 times the sim SAM's input) a point at an
object's innermost pixel gives masks of mIoU 0.29, against 0.64 when the same point is prompted
on a window of the frame at SAM's own scale (docs/MEASUREMENTS.md, issue 25). A point's window
has the frame's aspect and `img_size` on its longer side, a mask-proposal crop is `img_size`
square; SAM reads either without resizing. A mask-proposal crop can also be smaller
(`zoom_side`), so that SAM reads it magnified: off its training camera the sim SAM outlines far
objects better at 1.6 times their size (docs/MEASUREMENTS.md, issue 25).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, width, height (px)
# Frames whose longer side is at most this many times SAM's input get no zoom crops and no point
# windows: SAM shrinks them by less than that, and a crop or window would cost an encoder pass
# for nearly nothing (a 1032x776 frame on a released SAM: 1.01x, ~2.3 ViT-H passes an answer).
MIN_ZOOM = 1.25


def window_size(height: int, width: int, side: int) -> tuple[int, int] | None:
    """(w, h) of a window with the frame's aspect and `side` px on its longer side; None when
    the frame's longer side is at most MIN_ZOOM * `side` (SAM reads the whole frame at its
    scale, or shrunk so little that a window's encoder pass would gain nearly nothing)."""
    longest = max(height, width)
    if longest <= MIN_ZOOM * side:
        return None
    return max(1, round(width * side / longest)), max(1, round(height * side / longest))


# segment-anything's `is_box_near_crop_edge` tolerance (px): the generator drops a crop's mask
# this near one of the crop's edges inside the frame, since the object may go on past it.
EDGE_PX = 20


def check_zoom_magnification(magnification: float) -> None:
    """Raise ValueError for a zoom_magnification below 1 or not finite (a crop larger than
    SAM's input is what max_crops makes, not a setting)."""
    if not math.isfinite(magnification) or magnification < 1.0:
        raise ValueError(f"zoom_magnification must be a finite number >= 1, got {magnification}")


def zoom_side(img_size: int, magnification: float) -> int:
    """The side (px) of a mask-proposal crop that SAM, with a `img_size`-px input, reads
    `magnification` times enlarged. Raises ValueError as `check_zoom_magnification`."""
    check_zoom_magnification(magnification)
    return max(1, round(img_size / magnification))


def proposal_windows(height: int, width: int, side: int,
                     max_crops: int | None = None) -> list[list[int]]:
    """Crop boxes (x0, y0, x1, y1: SAM's crop-box convention, unlike `Box`) that tile a
    `height` x `width` frame for mask proposals at SAM's input scale.

    Each crop is `side` px square (the frame's own height or width where that is shorter): SAM
    pads its input to a square, so it reads such a crop unscaled and unpadded. Neighbours
    overlap by a quarter of a crop plus 2 * EDGE_PX, so an object up to a quarter of a crop
    across lies at least EDGE_PX inside one crop's inner edges, where the generator keeps its
    mask. On an 800x450 frame and a 320-px input: 4 x 2 crops; 1920x1080 on 1024 px: 3 x 2.

    max_crops: at most this many crops (each costs an encoder pass). Where `side`-px crops
        would be more, the crops grow, a tenth at a time, until their count fits; SAM then
        reads them shrunk by crop / `side`, still less than the whole frame. None: no limit.
    [] when the frame's longer side is at most MIN_ZOOM * `side`, or when crops few enough
    would be that large. Raises ValueError for a non-positive `side` or `max_crops` below 2.
    """
    if side <= 0:
        raise ValueError(f"window side must be > 0, got {side}")
    if max_crops is not None and max_crops < 2:
        raise ValueError(f"max_crops must be >= 2 (one crop would be the frame), got {max_crops}")
    crop = side
    while max(height, width) > MIN_ZOOM * crop:
        w, h = min(crop, width), min(crop, height)
        if max_crops is None or _count(height, h) * _count(width, w) <= max_crops:
            return [[x, y, x + w, y + h] for y in _starts(height, h) for x in _starts(width, w)]
        crop = math.ceil(crop * 1.1)
    return []


def _count(length: int, crop: int) -> int:
    """How many crops of `crop` px tile `length` px with the overlap proposal_windows needs."""
    if crop >= length:
        return 1
    step = max(0.75 * crop - 2 * EDGE_PX, crop / 2)  # crop / 2: SAM inputs below 160 px
    return math.ceil((length - crop) / step) + 1


def _starts(length: int, crop: int) -> list[int]:
    if crop >= length:
        return [0]
    return [int(v) for v in np.linspace(0, length - crop, _count(length, crop)).round()]


def point_windows(points_xy: Sequence[tuple[float, float]], height: int, width: int,
                  side: int, kept: Sequence[Box] = ()) -> list[tuple[Box, list[int]]]:
    """Group point prompts (x, y in frame pixels) into windows at SAM's input scale.

    Each point gets a window (`window_size`) centred on it and moved inside the frame, unless
    an earlier window already holds it at least a quarter of the window's size from any edge
    that is not the frame's; so points of nearby phrases share one encoder pass. `kept`: boxes
    of windows already encoded for this frame (an earlier call's, the same size), tried first.
    Returns [(window box, indices of its points)] for the windows that hold a point, kept ones
    first, then in the order the windows were made; one window of the whole frame when
    `window_size` gives none (a frame at most MIN_ZOOM * `side`). Raises ValueError for a point
    outside the frame (or not finite) or a non-positive `side`.
    """
    if side <= 0:
        raise ValueError(f"window side must be > 0, got {side}")
    points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    outside = ~np.isfinite(points).all(axis=1) | (points[:, 0] < 0) | (points[:, 0] > width) \
        | (points[:, 1] < 0) | (points[:, 1] > height)
    if outside.any():
        raise ValueError(f"point {tuple(points[outside][0])} lies outside the {width}x{height} frame")
    size = window_size(height, width, side)
    if size is None:
        return [((0, 0, width, height), list(range(len(points))))]
    w, h = size
    windows: list[tuple[Box, list[int]]] = [(tuple(box), []) for box in kept]
    for i, (x, y) in enumerate(points):
        for box, members in windows:
            if _holds(box, x, y, height, width):
                members.append(i)
                break
        else:
            x0 = int(np.clip(round(x - w / 2), 0, width - w))
            y0 = int(np.clip(round(y - h / 2), 0, height - h))
            windows.append(((x0, y0, w, h), [i]))
    return [(box, members) for box, members in windows if members]


def _holds(box: Box, x: float, y: float, height: int, width: int) -> bool:
    x0, y0, w, h = box
    left = 0 if x0 == 0 else x0 + w / 4
    right = width if x0 + w == width else x0 + w - w / 4
    top = 0 if y0 == 0 else y0 + h / 4
    bottom = height if y0 + h == height else y0 + h - h / 4
    return left <= x <= right and top <= y <= bottom


def reaches_inner_edge(mask: np.ndarray, box: Box, height: int, width: int) -> bool:
    """Whether `mask` (h x w, of the window `box` in a `height` x `width` frame) touches an edge
    of the window that is not the frame's: there the object may go on, cut off by the window."""
    x0, y0, w, h = box
    mask = np.asarray(mask, dtype=bool)
    return bool((x0 > 0 and mask[:, 0].any()) or (x0 + w < width and mask[:, -1].any())
                or (y0 > 0 and mask[0].any()) or (y0 + h < height and mask[-1].any()))


def zoom_crops_text(height: int, width: int, side: int, max_crops: int | None = None,
                    magnification: float = 1.0) -> str:
    """One line for a node's log: the `proposal_windows` a `height` x `width` frame gets with a
    `side`-px SAM input and `magnification` (`zoom_side`), their size and how much SAM scales
    them (magnified, or shrunk where `max_crops` made them larger than `side`)."""
    crop_side = zoom_side(side, magnification)
    crops = proposal_windows(height, width, crop_side, max_crops)
    if not crops:
        near = max(height, width) <= MIN_ZOOM * crop_side
        return (f"{width}x{height} frames: no zoom crops ("
                + (f"within {MIN_ZOOM} x a {crop_side}-px zoom crop)" if near else
                   f"max_zoom_crops {max_crops} would need crops near the frame's size)"))
    x0, y0, x1, y1 = crops[0]
    text = (f"{width}x{height} frames: {len(crops)} zoom crops of {x1 - x0}x{y1 - y0} px besides "
            f"the whole frame, one SAM encoder pass each")
    scale = max(x1 - x0, y1 - y0) / side
    if scale > 1:
        return text + f", shrunk {scale:.2f}x to SAM's {side}-px input (max_zoom_crops {max_crops})"
    if scale < 1:
        grown = f" (max_zoom_crops {max_crops})" if max(x1 - x0, y1 - y0) > crop_side else ""
        return text + f", magnified {1 / scale:.2f}x to SAM's {side}-px input{grown}"
    return text
