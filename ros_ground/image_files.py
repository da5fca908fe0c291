"""Image files <-> numpy: colour images and registered depth read and written; no ROS.

Every reader raises OSError when the path is no readable file (missing, a folder, a device or
pipe) and image_codec.ImageDecodeError (a ValueError) when its content is not what was asked
for, so a command line can print either as one line.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ros_ground.image_codec import DEFAULT_MAX_PIXELS, ImageDecodeError, depth_to_metres, imdecode
from ros_ground.out_paths import check_output_file


def _check_readable(path: str | Path, what: str) -> Path:
    """`path` as a Path; OSError naming `what` and why when it is no regular file."""
    path = Path(path)
    if not path.is_file():
        why = ("a folder" if path.is_dir() else "not a regular file (a device or pipe)"
               if path.exists() else "no such file")
        raise OSError(f"could not read {what} from {path}: {why}")
    return path


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """HxWx3 RGB uint8 image read from `path` (any format OpenCV reads).

    Raises OSError when it is no regular file, and ImageDecodeError when it does not decode, is
    a truncated JPEG, holds samples other than unsigned 8 or 16 bits (a float or signed TIFF,
    which cv2.IMREAD_COLOR alone would reinterpret: int16 -1 as white), or has more than
    `max_pixels` pixels (judged from its header before it is decoded). 16-bit images keep
    their high byte, as cv2.IMREAD_COLOR keeps it.
    """
    path = _check_readable(path, "an image")
    image = imdecode(np.fromfile(path, dtype=np.uint8), str(path), max_pixels,
                     cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)  # the samples' type, then checked
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_depth(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Depth from a file as HxW float32 metres (NaN = no return): a 16-bit PNG in millimetres
    (as RealSense tools save it) or a .npy array in metres (uint16 .npy arrays are millimetres).

    Raises OSError when it is no regular file, and ImageDecodeError when it does not decode or
    is not single-channel 16-bit, or holds more than `max_pixels` values (judged from its header).
    """
    path = _check_readable(path, "a depth image")
    if path.suffix.lower() == ".npy":
        try:  # a memory map reads the header only: the size is judged before any data
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:  # not .npy, truncated, object arrays
            raise ImageDecodeError(f"cannot read depth array {str(path)!r}: {exc}") from None
        if array.size > max_pixels:
            raise ImageDecodeError(f"depth array {str(path)!r} has {array.size} values, above "
                                   f"the limit of {max_pixels} (max_image_pixels)")
        return depth_to_metres(np.array(array))
    depth = imdecode(np.fromfile(path, dtype=np.uint8), f"depth image {str(path)!r}", max_pixels)
    if depth.dtype != np.uint16 or depth.ndim != 2:
        raise ImageDecodeError(f"depth image {str(path)!r} must be single-channel 16-bit "
                               f"(millimetres), got {depth.dtype} with shape {depth.shape}")
    return depth_to_metres(depth, "16UC1")


def save_png(path: str | Path, image: np.ndarray) -> None:
    """Write an HxWx3 RGB uint8 image to `path` (format from the extension); OSError if it
    cannot."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def check_writable(path: str | Path) -> None:
    """OSError saying why `save_png` could not write `path` (a folder, no such folder, no
    permission, or no OpenCV writer for its extension), checked before long work; None when it
    could."""
    check_output_file(path)
    if not cv2.haveImageWriter(str(path)):
        raise OSError(f"cannot write {path}: no image format for the extension {Path(path).suffix!r}")
