"""sensor_msgs/Image payloads <-> numpy RGB, without ROS.

Written here rather than taken from cv_bridge: the ROS 2 cv_bridge is not installable from
PyPI, and PyPI's `cv-bridge` port fails under numpy 2 and maps 16UC1 wrongly. On a ROS install
the node could use the apt cv_bridge; these functions are the tested path everywhere. Fields are
passed as plain values so the decoder can be fuzzed without ROS messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_PIXELS = 4096 * 4096


class ImageDecodeError(ValueError):
    """The image fields are inconsistent or the encoding is not supported."""


@dataclass(frozen=True)
class _Layout:
    channels: int
    dtype: str  # numpy kind+size without byte order, e.g. "u1", "u2", "f4"


_LAYOUTS = {
    "rgb8": _Layout(3, "u1"),
    "bgr8": _Layout(3, "u1"),
    "rgba8": _Layout(4, "u1"),
    "bgra8": _Layout(4, "u1"),
    "mono8": _Layout(1, "u1"),
    "8uc1": _Layout(1, "u1"),
    "8uc3": _Layout(3, "u1"),
    "mono16": _Layout(1, "u2"),
    "16uc1": _Layout(1, "u2"),
    "32fc1": _Layout(1, "f4"),
    "rgb16": _Layout(3, "u2"),
    "bgr16": _Layout(3, "u2"),
}

SUPPORTED_ENCODINGS = tuple(sorted(_LAYOUTS))


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: int | bool,
    data: bytes | bytearray | memoryview | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """RGB uint8 HxWx3 view of an image message's fields; raises ImageDecodeError on bad input.

    Depth (16UC1 in millimetres, 32FC1 in metres) and mono16 become grey by min-max scaling over
    the finite pixels; NaN/inf pixels become black.
    """
    key = (encoding or "").strip().lower()
    layout = _LAYOUTS.get(key)
    if layout is None:
        raise ImageDecodeError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({width}x{height})")
    if height * width > max_pixels:
        raise ImageDecodeError(
            f"image {width}x{height} has {height * width} pixels, above the limit of {max_pixels}"
        )
    itemsize = int(layout.dtype[1:])
    row_bytes = width * layout.channels * itemsize
    if step < row_bytes:
        raise ImageDecodeError(
            f"step {step} is smaller than width*channels*bytes = {row_bytes} for {encoding}"
        )
    buffer = _byte_view(data)
    if buffer.size != height * step:
        raise ImageDecodeError(
            f"data has {buffer.size} bytes, expected height*step = {height * step}"
        )
    rows = buffer.reshape(height, step)[:, :row_bytes]
    order = ">" if is_bigendian else "<"
    dtype = np.dtype(order + layout.dtype) if itemsize > 1 else np.dtype(layout.dtype)
    pixels = np.ascontiguousarray(rows).view(dtype).reshape(height, width, layout.channels)
    return _to_rgb8(key, pixels)


def _byte_view(data) -> np.ndarray:
    """Flat uint8 view of bytes, bytearray, array('B') (rclpy's type for uint8[]) or an array."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).ravel()
    try:
        return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    except TypeError:
        try:
            return np.asarray(data, dtype=np.uint8).ravel()
        except (TypeError, ValueError, OverflowError) as exc:
            raise ImageDecodeError(f"image data is not a byte sequence: {exc}") from exc


def _to_rgb8(key: str, pixels: np.ndarray) -> np.ndarray:
    if key in ("rgb8", "8uc3"):
        return pixels.copy()
    if key == "bgr8":
        return pixels[:, :, ::-1].copy()
    if key == "rgba8":
        return pixels[:, :, :3].copy()
    if key == "bgra8":
        return pixels[:, :, 2::-1].copy()
    if key in ("mono8", "8uc1"):
        return np.repeat(pixels, 3, axis=2)
    if key in ("rgb16", "bgr16"):
        rgb = (pixels >> 8).astype(np.uint8)
        return rgb if key == "rgb16" else rgb[:, :, ::-1].copy()
    return np.repeat(_grey_from_scalar(pixels[:, :, 0]), 3, axis=2)


def _grey_from_scalar(values: np.ndarray) -> np.ndarray:
    """Min-max scale a depth or 16-bit image to uint8 grey; non-finite pixels become black."""
    values = values.astype(np.float64)
    valid = np.isfinite(values)
    out = np.zeros(values.shape, dtype=np.uint8)
    if valid.any():
        lo, hi = float(values[valid].min()), float(values[valid].max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        scaled = np.where(valid, (np.where(valid, values, lo) - lo) * scale, 0.0)
        out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return out[:, :, None]


def encode_rgb8(image: np.ndarray) -> tuple[int, int, int, bytes]:
    """(height, width, step, data) of an RGB uint8 image, for an rgb8 message."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageDecodeError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    height, width = image.shape[:2]
    return height, width, width * 3, image.tobytes()
