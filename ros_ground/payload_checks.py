"""Checks of an encoded image's bytes (JPEG, PNG, ...) before or beside decoding: a header that
declares a decompression bomb, and a JPEG cut short or overwritten; no ROS.

OpenCV decodes either without a word (a bomb's pixels allocated, a cut frame's missing rows
grey), so these read the bytes themselves.
"""

from __future__ import annotations

import io
import re
import struct
import warnings

import numpy as np
import PIL.Image

from ros_ground.errors import ImageDecodeError

DEFAULT_MAX_PIXELS = 4096 * 4096


def check_image_size(height: int, width: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Raise ImageDecodeError for an empty image or one above `max_pixels` (named in the error)."""
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({width}x{height})")
    if height * width > max_pixels:
        raise ImageDecodeError(f"image {width}x{height} has {height * width} pixels, above the "
                               f"limit of {max_pixels} (max_image_pixels)")


def check_complete(data, what: str = "image") -> None:
    """Raises ImageDecodeError for a JPEG with no end-of-image marker after its first scan: a frame
    cut short, which libjpeg decodes with its missing rows grey. Data after the marker (padding, a
    motion photo's video) is allowed: entropy-coded data holds no marker, so that one ends it."""
    raw = data if isinstance(data, bytes) else np.frombuffer(data, np.uint8).tobytes()
    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") <= raw.find(b"\xff\xda"):
        raise ImageDecodeError(f"{what} is a truncated JPEG: its {len(raw)} bytes end without "
                               "the end-of-image marker")
    if raw[:2] == b"\xff\xd8":
        _check_scans(raw, what)


# the markers a JPEG's scans may hold between their first SOS and the EOI: byte stuffing (00),
# restart markers (D0-D7), fill bytes (FF), and the segments between the scans of a progressive
# or multi-scan JPEG (DHT C4, DAC CC, SOS DA, DQT DB, DRI DD, APPn E0-EF, COM FE)
_IN_SCANS = np.zeros(256, bool)
_IN_SCANS[[0x00, 0xFF, 0xC4, 0xCC, 0xDA, 0xDB, 0xDD, 0xFE, *range(0xD0, 0xD8), *range(0xE0, 0xF0)]] = True


def _check_scans(raw: bytes, what: str) -> None:
    """Raises ImageDecodeError for a JPEG whose scans hold a marker no scan may (`_IN_SCANS`):
    bytes overwritten in transit (a USB MJPEG camera's), which libjpeg decodes into garbage
    rows with a warning on stderr only. Hand-written because neither OpenCV nor Pillow reports
    that warning (of 100 frames with 400 random bytes, Pillow refused 69 and this check 71;
    most of the rest hold no 0xFF byte at all, and decode to garbage unseen)."""
    start = raw.find(b"\xff\xda")
    end = raw.find(b"\xff\xd9", start)
    scans = np.frombuffer(raw, np.uint8, count=end - start - 2, offset=start + 2)
    after_ff = scans[np.flatnonzero(scans[:-1] == 0xFF) + 1]
    bad = after_ff[~_IN_SCANS[after_ff]]
    if bad.size:
        raise ImageDecodeError(f"{what} is a corrupt JPEG: its scan data holds {bad.size} marker(s) "
                               f"no scan may (0xFF{int(bad[0]):02X} first): bytes lost or overwritten")


def check_declared_size(data, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "image") -> None:
    """Raises ImageDecodeError when an encoded image's header declares more than `max_pixels`.

    `data`: the file's bytes (JPEG, PNG, TIFF, ...), `what` names it. Pillow's open() parses the
    header only: a bomb is refused before its pixels are allocated. A PNG Pillow refuses (a bad
    ancillary CRC, which libpng decodes) is sized from its IHDR; other payloads are left to
    OpenCV (its decoders answer None or are bounded by OPENCV_IO_MAX_IMAGE_PIXELS)."""
    raw = data if isinstance(data, bytes) else np.frombuffer(data, np.uint8).tobytes()
    try:  # max_pixels is the only limit; Pillow's (a global, every thread's) is left as it is:
        with warnings.catch_warnings():  # its warning silenced, its refusal's count checked
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(raw)) as header:
                width, height = header.size
    except PIL.Image.DecompressionBombError as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message holds the declared size
        if size and int(size[1]) <= max_pixels:
            return  # decoded, the image's size is checked again
        size = size[1] if size else f"over {2 * PIL.Image.MAX_IMAGE_PIXELS}"
        raise ImageDecodeError(f"{what} is above the limit of {max_pixels} (max_image_pixels): its "
                               f"header declares {size} pixels") from exc
    except Exception:  # noqa: BLE001 - Pillow raises many types for what it cannot parse
        if raw[:8] != b"\x89PNG\r\n\x1a\n" or raw[12:16] != b"IHDR" or len(raw) < 24:
            return
        width, height = struct.unpack(">II", raw[16:24])  # IHDR: the first chunk, fixed place
    check_image_size(height, width, max_pixels)
