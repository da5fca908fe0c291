"""Where each image token's patch lies in the original image.

The processor resizes, crops or pads the camera frame before the vision tower sees it; a token
map is only meaningful in pixels once that mapping is inverted. Three fits cover the LLaVA family:
"crop" (resize shortest edge + centre crop, the llava-hf CLIPImageProcessor default), "pad"
(centre pad to a square, then resize; original LLaVA-1.5) and "resize" (squash to the model size).
A processor that resizes (shortest edge, or squashes to a fixed height x width) to more than its
centre crop keeps a smaller window: of the frame ("crop") or of the padded square ("pad").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FITS = ("crop", "pad", "resize")
# the `image_fit` setting (lmm.fit): auto / the processor's own fit / pad to a square first
IMAGE_FITS = ("auto", "processor", "pad")


@dataclass
class ImageGeometry:
    """Original image size, token grid, and how the processor fitted one onto the other."""

    height: int
    width: int
    grid_h: int
    grid_w: int
    fit: str
    # the window (x0, y0, x1, y1) in original pixels that a processor's centre crop keeps,
    # where it is not the fit's default: fit="crop": None = the centred min(H, W) square;
    # fit="pad": None = the whole centred max(H, W) square
    crop_box: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        if min(self.height, self.width, self.grid_h, self.grid_w) <= 0:
            raise ValueError(f"non-positive size in {self}")

    def window(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the original image that the token grid covers (may exceed it)."""
        h, w = self.height, self.width
        if self.fit == "resize":
            return 0, 0, w, h
        if self.crop_box is not None:
            return self.crop_box
        if self.fit == "pad":
            s = max(h, w)
            x0, y0 = -((s - w) // 2), -((s - h) // 2)
            return x0, y0, x0 + s, y0 + s
        s = min(h, w)
        x0, y0 = (w - s) // 2, (h - s) // 2
        return x0, y0, x0 + s, y0 + s


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _size_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, int):
        return {"height": value, "width": value}
    if isinstance(value, dict):
        return dict(value)
    return {k: getattr(value, k) for k in ("height", "width", "shortest_edge", "longest_edge")
            if getattr(value, k, None) is not None}


def processor_fit(image_processor: Any) -> tuple[str, dict | None]:
    """Which fit an image processor applies, and its resize/crop sizes (None if not a crop)."""
    size = _size_dict(_get(image_processor, "size"))
    crop = _size_dict(_get(image_processor, "crop_size"))
    do_resize = _get(image_processor, "do_resize", True)
    if _get(image_processor, "do_center_crop", False) and crop.get("height"):
        return "crop", {"size": size if do_resize else {}, "crop": crop}
    return "resize", None


def _resized_size(height: int, width: int, size: dict) -> tuple[int, int]:
    """(height, width) in px that transformers' resize gives an HxW image: shortest_edge E ->
    E on the shorter side and int(E * long / short) on the longer (get_resize_output_image_size);
    a fixed height x width -> that size; no resize (an empty `size`) -> HxW unchanged."""
    edge = size.get("shortest_edge")
    if edge is not None:
        if width <= height:
            return int(edge * height / width), edge
        return edge, int(edge * width / height)
    if size.get("height") and size.get("width"):
        return size["height"], size["width"]
    return height, width


def _crop_start(resized: int, crop: int) -> int:
    """First resized pixel of a centre crop (negative: the crop pads), as transformers'
    center_crop takes it: int((R - C) / 2), or the left/top padding (C - R) // 2."""
    return (resized - crop) // 2 if resized >= crop else -((crop - resized) // 2)


def _crop_box(height: int, width: int, sizes: dict) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1), in pixels of an HxW image, that resize(sizes["size"]) +
    centre_crop(sizes["crop"]) keeps: a rectangle, also where a fixed-size squash changes the
    aspect ratio first (each axis scaled on its own). Rounded to whole pixels; may reach past the
    image where the crop is larger than the resized image (the processor pads there)."""
    rh, rw = _resized_size(height, width, sizes["size"])
    ch, cw = sizes["crop"]["height"], sizes["crop"]["width"]
    sy, sx = rh / height, rw / width  # resized px per original px
    top, left = _crop_start(rh, ch), _crop_start(rw, cw)
    x0, y0 = round(left / sx), round(top / sy)
    # at least one pixel: a crop narrower than a pixel (a 1-row image) must not round to none
    x1, y1 = max(round((left + cw) / sx), x0 + 1), max(round((top + ch) / sy), y0 + 1)
    return x0, y0, x1, y1


def geometry_for(image_processor: Any, height: int, width: int, grid_h: int, grid_w: int,
                 fit: str = "processor") -> ImageGeometry:
    """Geometry of one HxW image (px) under a grid_h x grid_w token grid.

    `image_processor` is an image processor object or its config dict. fit="processor" reads
    the processor's own fit: a resize (shortest edge, or a fixed height x width) + centre crop
    is fit "crop" with the rectangular window the crop keeps. fit="pad" means the caller padded
    the image to a max(H, W) square itself (lmm.fit); where the processor then centre-crops
    less than the resized square (a shortest_edge 384 / crop 336 processor keeps its central
    7/8), the grid covers only that part of the square. Another fit ("crop", "resize") is
    taken as given. ValueError for a fit not in FITS.
    """
    if fit not in ("processor", "pad"):
        return ImageGeometry(height, width, grid_h, grid_w, fit)
    kind, sizes = processor_fit(image_processor)
    if kind != "crop":  # a squash of the frame, or of the padded square: the whole of either
        return ImageGeometry(height, width, grid_h, grid_w, "resize" if fit == "processor" else fit)
    fit = "crop" if fit == "processor" else fit
    default = ImageGeometry(height, width, grid_h, grid_w, fit).window()
    if fit == "crop":
        box = _crop_box(height, width, sizes)
    else:  # the processor's window on the padded square, moved onto the frame
        x0, y0, x1, y1 = default
        bx0, by0, bx1, by1 = _crop_box(y1 - y0, x1 - x0, sizes)
        box = (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1)
    return ImageGeometry(height, width, grid_h, grid_w, fit, None if box == default else box)


def _span_about(start: int, stop: int, least: int, length: int) -> tuple[int, int]:
    """[lo, hi) within 0..length: start..stop and a pixel each side, widened evenly about its
    centre to at least `least` px."""
    lo, hi = start - 1, stop + 1
    grow = max(least - (hi - lo), 0)
    lo, hi = lo - grow // 2, hi + grow - grow // 2
    return max(lo, 0), min(hi, length)


def trim_to_crop(image: np.ndarray, image_processor: Any, max_ratio: float = 4.0) -> np.ndarray:
    """An [H, W] or [H, W, C] image much longer than wide, cut along its long side to the window
    a shortest-edge resize + centre-crop processor keeps.

    Resizing the shortest edge of a 1x4096 line to 336 px would build a 336x1376256 image only
    to crop its centre; cutting first (the window plus a pixel each side, centred) gives the
    processor the same centre. The short side is never cut and the long side is kept at least
    as long as it, so the processor scales the cut image as it would the whole one (a
    shortest_edge 384 / crop 336 window is shorter than the short side). Images within
    `max_ratio`, and other processors (a fixed-size squash rescales a cut image differently),
    are returned unchanged, so geometry_for on the original size stays exact for them and
    right to a pixel for the rest.
    """
    h, w = image.shape[:2]
    if max(h, w) <= max_ratio * min(h, w):
        return image
    fit, sizes = processor_fit(image_processor)
    if fit != "crop" or sizes.get("size", {}).get("shortest_edge") is None:
        return image
    x0, y0, x1, y1 = _crop_box(h, w, sizes)
    if w > h:
        lo, hi = _span_about(x0, x1, h, w)
        return image[:, lo:hi]
    lo, hi = _span_about(y0, y1, w, h)
    return image[lo:hi]


def _resize(grid_map: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    import cv2

    return cv2.resize(np.ascontiguousarray(grid_map, dtype=np.float32), (out_w, out_h),
                      interpolation=cv2.INTER_CUBIC)


def upsample_map(grid_map: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """[grid_h, grid_w] token map -> float32 [height, width] map over the original image.

    Bicubic upsampling to the window the grid covers, then cut to the image; pixels the model
    never saw (outside a centre crop) get the map's minimum. Raises ValueError when the map's
    shape is not (geometry.grid_h, geometry.grid_w).
    """
    grid_map = np.asarray(grid_map, dtype=np.float32)
    if grid_map.shape != (geometry.grid_h, geometry.grid_w):
        raise ValueError(f"map shape {grid_map.shape} != grid {(geometry.grid_h, geometry.grid_w)}")
    h, w = geometry.height, geometry.width
    if geometry.fit == "resize":
        return _resize(grid_map, h, w)
    x0, y0, x1, y1 = geometry.window()
    window = _resize(grid_map, y1 - y0, x1 - x0)
    out = np.full((h, w), grid_map.min(), dtype=np.float32)
    # intersection of the window with the image, in both coordinate frames
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0:iy1, ix0:ix1] = window[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
    return out


def pad_to_square(image: np.ndarray, fill: Any = 0) -> np.ndarray:
    """Centre an [H, W] or [H, W, C] image on a max(H, W) square of `fill`: [S, S] or [S, S, C]
    of the image's dtype, S = max(H, W); a copy when square. `fill` is a scalar or one value per
    channel (e.g. `background_fill`). LLaVA-1.5's `expand2square` (Liu et al., "Improved
    Baselines with Visual Instruction Tuning", arXiv:2310.03744; CVPR 2024)."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    s = max(h, w)
    if h == w:
        return image.copy()
    out = np.empty((s, s, *image.shape[2:]), dtype=image.dtype)
    out[...] = np.asarray(fill, dtype=image.dtype)
    y0, x0 = (s - h) // 2, (s - w) // 2
    out[y0:y0 + h, x0:x0 + w] = image
    return out


def background_fill(image_processor: Any) -> tuple[int, ...]:
    """LLaVA's pad colour: the processor's mean pixel in 0-255."""
    mean = _get(image_processor, "image_mean") or (0.5, 0.5, 0.5)
    if isinstance(mean, (int, float)):
        mean = (mean,) * 3
    return tuple(int(round(255 * m)) for m in mean)
