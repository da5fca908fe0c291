"""Checks of an encoded image's bytes (JPEG, PNG, ...) before or beside decoding: a header that
declares a decompression bomb (or does not say its size), and a JPEG cut short or overwritten; no ROS.

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
from PIL import TiffImagePlugin

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


# the formats taken: OpenCV's decoder for each is chosen by its first bytes (imgcodecs'
# checkSignature), and Pillow reads each one's size from its header without decoding it. Name,
# the first bytes, the names Pillow gives it. Others OpenCV decodes (Radiance HDR, PFM, PAM,
# OpenEXR) are refused: their size would be known only once their pixels were allocated.
_FORMATS = (
    ("JPEG", rb"\xff\xd8\xff", ("JPEG", "MPO")),
    ("PNG", rb"\x89PNG\r\n\x1a\n", ("PNG",)),
    ("TIFF", rb"II[*+]\0|MM\0[*+]", ("TIFF",)),  # and BigTIFF
    ("BMP", rb"BM", ("BMP",)),
    ("WebP", rb"RIFF....WEBP", ("WEBP",)),
    ("AVIF", rb"\0\0\0.ftyp", ("AVIF",)),  # a small ftyp box, so no other format's first bytes
    ("GIF", rb"GIF8[79]a", ("GIF",)),
    ("JPEG 2000", rb"\0\0\0\x0cjP  \r\n\x87\n|\xff\x4f\xff\x51", ("JPEG2000",)),
    ("PBM/PGM/PPM", rb"P[1-6]", ("PPM",)),
    ("Sun raster", rb"\x59\xa6\x6a\x95", ("SUN",)),
)
TAKEN_FORMATS = ", ".join(name for name, _, _ in _FORMATS)


def _signature(raw: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(name, Pillow's names) of the `_FORMATS` entry OpenCV would decode `raw` as; None for none."""
    for name, start, pillow_names in _FORMATS:
        if re.match(start, raw[:16], re.DOTALL):
            return name, pillow_names
    return None


def check_declared_size(data, max_pixels: int = DEFAULT_MAX_PIXELS, what: str = "image") -> None:
    """Raises ImageDecodeError when an encoded image's header declares more than `max_pixels`, or
    does not say its size: it is then not decoded at all.

    `data`: the file's bytes, `what` names it. Taken: `TAKEN_FORMATS`, told by their first bytes
    as OpenCV tells them; Pillow's open() parses the header only, so a bomb is refused before its
    pixels are allocated. The format Pillow reads must be the one OpenCV will decode (a file read
    as one format and decoded as another is refused). A PNG Pillow refuses (a bad ancillary CRC,
    which libpng decodes) is sized from its IHDR, a TIFF (a float RGB one) from its first IFD.
    Any other payload (Radiance HDR: a 9 MB one declaring 12000x12000 took 2-4 GB to decode,
    its size checked only after) is refused, naming the formats taken. OpenCV's own limit
    (OPENCV_IO_MAX_IMAGE_PIXELS, 2^30) is left as it is: it is read once, when cv2 is loaded."""
    raw = data if isinstance(data, bytes) else np.frombuffer(data, np.uint8).tobytes()
    signature = _signature(raw)
    if signature is None:
        raise ImageDecodeError(f"cannot decode {what}: not an image of a format taken ({TAKEN_FORMATS}: "
                               "those whose header says their size before decoding)")
    name, pillow_names = signature
    try:  # max_pixels is the only limit; Pillow's (a global, every thread's) is left as it is:
        with warnings.catch_warnings():  # its warning silenced, its refusal's count checked
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(io.BytesIO(raw)) as header:
                (width, height), read_as = header.size, header.format
    except PIL.Image.DecompressionBombError as exc:
        size = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow's message holds the declared size
        if size and int(size[1]) <= max_pixels:
            return  # decoded, the image's size is checked again
        size = size[1] if size else f"over {2 * PIL.Image.MAX_IMAGE_PIXELS}"
        raise ImageDecodeError(f"{what} is above the limit of {max_pixels} (max_image_pixels): its "
                               f"header declares {size} pixels") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for what it cannot parse
        width, height = _fallback_size(name, raw, what, exc)
        read_as = pillow_names[0]
    if read_as not in pillow_names:
        raise ImageDecodeError(f"cannot decode {what}: its first bytes say {name}, but its header "
                               f"reads as {read_as}")
    check_image_size(height, width, max_pixels)


def _fallback_size(name: str, raw: bytes, what: str, exc: Exception) -> tuple[int, int]:
    """(width, height) of a PNG's IHDR or a TIFF's first IFD, for one Pillow refused with `exc`;
    ImageDecodeError (naming `exc`) when there is none."""
    try:
        if name == "PNG" and raw[12:16] == b"IHDR" and len(raw) >= 24:
            return struct.unpack(">II", raw[16:24])  # IHDR: the first chunk, fixed place
        if name == "TIFF":
            ifd = TiffImagePlugin.ImageFileDirectory_v2(raw[:8])
            stream = io.BytesIO(raw)
            stream.seek(ifd.next)
            ifd.load(stream)
            return int(ifd[256]), int(ifd[257])  # ImageWidth, ImageLength
    except Exception:  # noqa: BLE001, S110 - a header Pillow's reader cannot parse either
        pass
    raise ImageDecodeError(f"cannot decode {what}: its {name} header does not say its size "
                           f"({type(exc).__name__}: {exc}); taken: {TAKEN_FORMATS}")
