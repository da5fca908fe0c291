"""Camera payloads -> numpy: sensor_msgs/Image and CompressedImage to RGB, depth to metres; no ROS.

Every encoding of sensor_msgs/image_encodings that a colour camera or a depth sensor publishes
becomes HxWx3 uint8 RGB through OpenCV's colour conversions (packed YUV 4:2:2, NV12/NV21, the
four Bayer patterns in 8 and 16 bits, 8/16-bit RGB(A)/BGR(A), mono, and the scalar 8UC*, 16UC1,
16SC1, 32FC1, 64FC1 types); rows may be padded (`step`) and multi-byte pixels big-endian.
Compressed payloads are decoded as image_transport writes them: `compressed` (JPEG/PNG, format
strings such as "jpeg" or "rgb8; jpeg compressed bgr8") and `compressedDepth` (a 12-byte
ConfigHeader, then a PNG). Depth decodes to float32 metres with NaN where the sensor had no
return.

cv_bridge is not used: these conversions cover every encoding it would convert, so one path
is tested (PyPI's `cv-bridge` port also fails under numpy 2). The field-level functions take
plain values, so they can be fuzzed without ROS messages.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from ros_ground.errors import ImageCodecError, ImageDecodeError, shorten  # noqa: F401 - ImageCodecError: raised by this API
from ros_ground.payload_checks import (
    DEFAULT_MAX_PIXELS,
    check_complete,
    check_declared_size,
    check_image_size,
)

# encoding -> (channels per pixel in the buffer, numpy dtype without byte order)
_PLAIN = {
    "rgb8": (3, "u1"), "bgr8": (3, "u1"), "rgba8": (4, "u1"), "bgra8": (4, "u1"),
    "rgb16": (3, "u2"), "bgr16": (3, "u2"), "rgba16": (4, "u2"), "bgra16": (4, "u2"),
    "mono8": (1, "u1"), "mono16": (1, "u2"),
    "8uc1": (1, "u1"), "8uc3": (3, "u1"), "8uc4": (4, "u1"),
    "16uc1": (1, "u2"), "16sc1": (1, "i2"), "32fc1": (1, "f4"), "64fc1": (1, "f8"),
    # packed YUV 4:2:2, two bytes per pixel; "uyvy"/"yuyv" are ROS 2's aliases
    "yuv422": (2, "u1"), "uyvy": (2, "u1"), "yuv422_yuy2": (2, "u1"), "yuyv": (2, "u1"),
    **{f"bayer_{p}{bits}": (1, "u1" if bits == 8 else "u2")
       for p in ("rggb", "bggr", "gbrg", "grbg") for bits in (8, 16)},
}
# semi-planar YUV 4:2:0: `height` rows of Y, then height/2 rows of interleaved chroma
_SEMI_PLANAR = {"nv12": cv2.COLOR_YUV2RGB_NV12, "nv21": cv2.COLOR_YUV2RGB_NV21}

_CONVERSIONS = {
    "bgr8": cv2.COLOR_BGR2RGB, "bgr16": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB, "rgba16": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB, "bgra16": cv2.COLOR_BGRA2RGB,
    # TYPE_8UC3/8UC4 carry no colour order; OpenCV's (and so cv_bridge users') is BGR
    "8uc3": cv2.COLOR_BGR2RGB, "8uc4": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB, "8uc1": cv2.COLOR_GRAY2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    **{f"bayer_{p}{bits}": getattr(cv2, f"COLOR_Bayer{p.upper()}2RGB")
       for p in ("rggb", "bggr", "gbrg", "grbg") for bits in (8, 16)},
}
_SCALAR = ("mono16", "16uc1", "16sc1", "32fc1", "64fc1")  # grey by min-max scaling
# one channel, decoded to three equal ones: colour words cannot be judged on them (command/refer.py)
GREY_ENCODINGS = frozenset(k for k, (n, _) in _PLAIN.items() if n == 1 and not k.startswith("bayer"))
# REP 118 defines 16UC1 (millimetres) and 32FC1 (metres) only. mono16 as millimetres is our
# convention: it is 16UC1's layout under a display name, which some drivers and image_transport's
# PNG path give depth, and REP 118's one scale for 16-bit depth is the millimetre
DEPTH_UNITS_PER_METRE = {"16uc1": 1000.0, "mono16": 1000.0, "32fc1": 1.0}

SUPPORTED_ENCODINGS = tuple(sorted([*_PLAIN, *_SEMI_PLANAR]))
DEPTH_ENCODINGS = tuple(sorted(DEPTH_UNITS_PER_METRE))

# compressed_depth_image_transport's ConfigHeader: int32 compressionFormat (INV_DEPTH = 0), float32
# depthParam[2] (inverse-depth quantisation A, B), memcpy'd: the sender's native order, unmarked;
# read as little-endian, the order of every platform ROS 2 ships for (x86-64, arm64)
_DEPTH_HEADER = struct.Struct("<iff")


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: int | bool,
    data: bytes | bytearray | memoryview | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """HxWx3 uint8 RGB copy of a sensor_msgs/Image's fields; raises ImageDecodeError on bad input.

    `encoding` is matched case-insensitively against SUPPORTED_ENCODINGS; `step` is the row
    length in bytes (>= width * bytes per pixel; padding is dropped). 16-bit colour keeps its
    high byte. Scalar images (mono16, 16UC1, 16SC1, 32FC1, 64FC1: depth or raw sensor values)
    become grey by min-max scaling over their finite pixels; NaN/inf pixels become black.
    YUV 4:2:2 needs an even width, NV12/NV21 an even width and height. Images above
    `max_pixels` pixels are refused with an error naming the limit.
    """
    key, pixels = _pixels(encoding, height, width, step, is_bigendian, data, max_pixels)
    return _to_rgb8(key, pixels)


def decode_depth(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: int | bool,
    data: bytes | bytearray | memoryview | np.ndarray,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """HxW float32 depth in metres from a depth image's fields; NaN where there is no return.

    16UC1 is millimetres, 32FC1 metres (REP 118); mono16 is read as 16UC1 (our convention:
    DEPTH_UNITS_PER_METRE); 0 and non-finite values mean no return. Other encodings raise ImageDecodeError.
    """
    units = depth_units(encoding)
    _, pixels = _pixels(encoding, height, width, step, is_bigendian, data, max_pixels)
    return depth_metres(pixels[:, :, 0], units)


def depth_units(encoding: str) -> float:
    """Units per metre of a depth encoding (REP 118: 16UC1 and mono16 millimetres, 32FC1
    metres; case-insensitive). Raises ImageDecodeError for any other encoding."""
    key = _key(encoding)
    if key not in DEPTH_UNITS_PER_METRE:
        raise ImageDecodeError(f"depth must be one of {', '.join(DEPTH_ENCODINGS)} (REP 118 "
                               f"encodings), got {shorten(encoding)!r}")
    return DEPTH_UNITS_PER_METRE[key]


def depth_to_metres(depth: np.ndarray, encoding: str | None = None) -> np.ndarray:
    """A depth array (HxW, or HxWx1) as new HxW float32 metres, NaN where there is no return.

    `encoding` as `depth_units` takes it; None takes it from the dtype (unsigned integers:
    16UC1 millimetres; floats: 32FC1 metres). 0, negative, NaN and inf become NaN, as in
    `decode_depth`. Raises ImageDecodeError (a ValueError) for another shape, encoding, or a
    dtype that does not fit the encoding.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise ImageDecodeError(f"depth must be HxW, got shape {depth.shape}")
    units = depth_units(encoding if encoding is not None else
                        "16uc1" if depth.dtype.kind == "u" else "32fc1")
    if units != 1.0 and depth.dtype.kind not in "ui":
        raise ImageDecodeError(f"{encoding} depth must hold integers, got {depth.dtype}")
    if units == 1.0 and depth.dtype.kind != "f":
        raise ImageDecodeError(f"depth must be uint16 millimetres or float metres, got "
                               f"{depth.dtype}" + (f" for {encoding}" if encoding else ""))
    return depth_metres(depth, units)


def decode_compressed(format: str, data, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB of a sensor_msgs/CompressedImage payload (`format`, `data`).

    Accepts what image_transport's `compressed` plugin writes ("jpeg", "png",
    "rgb8; jpeg compressed bgr8", "mono16; png compressed mono16", ...) and `compressedDepth`
    payloads (shown as grey, scaled like decode_image's depth). Raises ImageDecodeError when the
    payload does not decode, holds samples other than unsigned 8 or 16 bits (a float32 TIFF:
    `imdecode`), or the image is above `max_pixels`.
    """
    if _is_compressed_depth(format):
        depth = decode_compressed_depth(format, data, max_pixels)
        return _to_rgb8("32fc1", depth[:, :, None])
    image = imdecode(_byte_view(data), f"compressed image ({shorten(format)!r})", max_pixels)
    if image.ndim == 2:
        key = "mono8" if image.dtype == np.uint8 else "mono16"
        return _to_rgb8(key, image[:, :, None])
    channels = image.shape[2]
    if channels not in (3, 4):
        raise ImageDecodeError(f"compressed image ({shorten(format)!r}) has {channels} channels")
    depth = "8" if image.dtype == np.uint8 else "16"
    order = "rgb" if _rgb_ordered(format) else "bgr"
    return _to_rgb8((order if channels == 3 else order + "a") + depth, image)


def _rgb_ordered(format: str) -> bool:
    """Whether the payload's channels are stored red first: a colour image's format naming a
    compressed encoding other than "bgr" ("rgb8; jpeg compressed rgb8"), read as
    compressed_image_transport's subscriber reads it; "jpeg" alone and "... compressed bgr8" are
    blue first, what OpenCV writes."""
    encoding, _, compressed = (format or "").lower().partition(";")
    return encoding.strip()[:3] in ("rgb", "bgr") and "compressed" in compressed and \
        "compressed bgr" not in compressed


def decode_compressed_depth(format: str, data, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxW float32 metres of a `compressedDepth` payload; NaN where there is no return.

    `format` is "16UC1; compressedDepth png" (millimetres) or "32FC1; compressedDepth [png]"
    (inverse depth quantised with the header's A, B: depth = A / (value - B)). The RVL
    variant is refused: OpenCV has no RVL codec.
    """
    encoding, _, rest = (format or "").partition(";")
    key = _key(encoding)
    if "rvl" in rest.lower():
        raise ImageDecodeError(f"compressedDepth RVL payloads are not supported ({shorten(format)!r})")
    if key not in ("16uc1", "32fc1"):
        raise ImageDecodeError(f"compressedDepth encoding must be 16UC1 or 32FC1, got {shorten(format)!r}")
    raw = _byte_view(data)
    if raw.size <= _DEPTH_HEADER.size:
        raise ImageDecodeError(f"compressedDepth payload of {raw.size} bytes has no image after "
                               f"its {_DEPTH_HEADER.size}-byte header")
    _, quant_a, quant_b = _DEPTH_HEADER.unpack(raw[:_DEPTH_HEADER.size].tobytes())
    image = imdecode(raw[_DEPTH_HEADER.size:], f"compressedDepth image ({shorten(format)!r})", max_pixels)
    if image.ndim != 2 or image.dtype != np.uint16:
        raise ImageDecodeError(f"compressedDepth image is {image.dtype} with shape {image.shape}, "
                               "expected one 16-bit channel")
    if key == "16uc1":
        return depth_metres(image, depth_units(key))
    values = image.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (values - np.float32(quant_b))
    return depth_metres(np.where(image == 0, np.nan, depth).astype(np.float32), 1.0)


def image_to_rgb(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxWx3 uint8 RGB of a sensor_msgs/Image or CompressedImage (any object with their fields).

    A message with `format` is compressed. Raises ImageDecodeError on bad input.
    """
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, msg.data, max_pixels)
    return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                        msg.data, max_pixels)


def image_to_depth(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxW float32 metres (NaN = no return) of a depth Image or compressedDepth CompressedImage."""
    if hasattr(msg, "format"):
        return decode_compressed_depth(msg.format, msg.data, max_pixels)
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                        msg.data, max_pixels)


def _key(encoding) -> str:
    return str(encoding or "").strip().lower()


def _pixels(encoding, height, width, step, is_bigendian, data, max_pixels):
    """(encoding key, native-order array) of an image message's fields.

    The array is HxWxC, or for NV12/NV21 (3H/2)xW bytes, the layout cvtColor takes.
    """
    key = _key(encoding)
    if key not in _PLAIN and key not in _SEMI_PLANAR:
        raise ImageDecodeError(f"unsupported encoding {shorten(encoding)!r}; supported: "
                               f"{', '.join(SUPPORTED_ENCODINGS)}")
    height, width, step = int(height), int(width), int(step)
    check_image_size(height, width, max_pixels)
    channels, kind = _PLAIN.get(key, (1, "u1"))
    rows = height
    if key in _SEMI_PLANAR:
        if height % 2 or width % 2:
            raise ImageDecodeError(f"{encoding} needs an even width and height, got {width}x{height}")
        rows = height + height // 2
    elif channels == 2 and width % 2:
        raise ImageDecodeError(f"{encoding} (YUV 4:2:2) needs an even width, got {width}")
    itemsize = int(kind[1:])
    row_bytes = width * channels * itemsize
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} is smaller than width*channels*bytes = {row_bytes} "
                               f"for {encoding}")
    buffer = _byte_view(data)
    if buffer.size != rows * step:
        raise ImageDecodeError(
            f"data has {buffer.size} bytes, expected {'3/2*' if rows != height else ''}"
            f"height*step = {rows * step}"
        )
    packed = np.ascontiguousarray(buffer.reshape(rows, step)[:, :row_bytes])
    dtype = np.dtype((">" if is_bigendian else "<") + kind) if itemsize > 1 else np.dtype(kind)
    pixels = packed.view(dtype).reshape(rows, width, channels)
    if itemsize > 1:
        pixels = pixels.astype(dtype.newbyteorder("="), copy=False)  # OpenCV wants native order
    if key in _SEMI_PLANAR:
        pixels = pixels[:, :, 0]
    return key, pixels


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
    if key in _SCALAR:
        return cv2.cvtColor(_grey_from_scalar(pixels[:, :, 0]), cv2.COLOR_GRAY2RGB)
    if key in _SEMI_PLANAR:
        rgb = cv2.cvtColor(pixels, _SEMI_PLANAR[key])
    elif key in ("rgb8", "rgb16"):
        rgb = pixels.copy()
    else:
        image = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
        rgb = cv2.cvtColor(np.ascontiguousarray(image), _CONVERSIONS[key])
    if rgb.dtype == np.uint16:
        rgb = (rgb >> 8).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def _grey_from_scalar(values: np.ndarray) -> np.ndarray:
    """Min-max scale a depth or 16-bit image to uint8 grey; non-finite pixels become black."""
    with np.errstate(invalid="ignore"):  # casting signalling NaNs warns; they become black
        values = values.astype(np.float64)
    valid = np.isfinite(values)
    if not valid.any():
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = float(values[valid].min()), float(values[valid].max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    scaled = np.where(valid, (np.where(valid, values, lo) - lo) * scale, 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def depth_metres(values: np.ndarray, units_per_metre: float) -> np.ndarray:
    """New float32 metres of `values` (e.g. uint16 mm, 1000); NaN: 0, negative, NaN, inf."""
    depth = values.astype(np.float32) / np.float32(units_per_metre)
    return np.where(np.isfinite(depth) & (depth > 0), depth, np.float32(np.nan)).astype(np.float32)


def _is_compressed_depth(format: str) -> bool:
    return "compresseddepth" in (format or "").lower()


def imdecode(raw: np.ndarray, what: str, max_pixels: int = DEFAULT_MAX_PIXELS,
             flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """cv2.imdecode (`flags`: cv2.IMREAD_*) of an encoded image, `raw` 1-D uint8, `what` in errors.

    Its header is read first, so a small payload declaring a huge image (a decompression bomb:
    a 1 MB PNG can declare 16384x16384) is refused above `max_pixels` before its pixels are
    allocated. Raises ImageDecodeError when it is empty, too large, truncated or undecodable,
    and when its samples are other than uint8 or uint16 (a float or signed TIFF: `flags` with
    cv2.IMREAD_ANYDEPTH or cv2.IMREAD_UNCHANGED keep them, so they are seen, not reinterpreted).
    """
    if raw.size == 0:
        raise ImageDecodeError(f"{what} has no data")
    payload = raw.tobytes()  # one copy for both checks
    check_declared_size(payload, max_pixels, what)
    check_complete(payload, what)
    try:
        image = cv2.imdecode(raw, flags)
    except cv2.error as exc:  # e.g. a GIF frame outside its screen
        raise ImageDecodeError(f"cannot decode {what}: {exc.err}") from exc
    if image is None or image.size == 0:
        raise ImageDecodeError(f"cannot decode {what}: {_undecodable(raw, flags)}")
    unread = _unread_samples(image.dtype)
    if unread:
        raise ImageDecodeError(f"cannot decode {what}: {unread}")
    check_image_size(image.shape[0], image.shape[1], max_pixels)
    return image


def _unread_samples(dtype: np.dtype) -> str | None:
    """Why an image of samples `dtype` is not read, None for uint8 and uint16: a float TIFF is
    not a 16-bit image, nor a signed one an unsigned (read as such, a float32 one became black
    and int16 -1 white), and no one scale makes either a picture."""
    if dtype in (np.uint8, np.uint16):
        return None
    kind = {"f": "floating-point", "i": "signed integer", "u": "unsigned integer"}.get(dtype.kind, dtype.kind)
    return (f"it is {'an' if dtype.kind == 'i' else 'a'} {dtype} ({kind}) image; unsigned 8- and "
            "16-bit images are read")


def _undecodable(raw: np.ndarray, flags: int) -> str:
    """Why OpenCV decoded nothing: an image of samples it does not convert to the depth asked
    for (a one-channel float32 TIFF asked for in colour: `_unread_samples`), or no image it reads."""
    whole = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if flags != cv2.IMREAD_UNCHANGED else None
    unread = None if whole is None else _unread_samples(whole.dtype)
    return unread or "not an image OpenCV reads, or corrupt"
