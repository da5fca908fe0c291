"""Uncompressed run-length encoding of binary masks (COCO convention).

Counts run over the column-major flattening and alternate starting with zeros, so
`{"size": [h, w], "counts": counts}` is accepted by pycocotools' `frPyObjects` and equals
segment-anything's `uncompressed_rle` output. Written with numpy rather than pycocotools
because pycocotools only emits the compressed string form; the tests check both agree.
"""

from __future__ import annotations

import numpy as np

MAX_MASK_PIXELS = 64_000_000  # refuses absurd sizes from untrusted messages before allocating


class RLEError(ValueError):
    """A run-length encoding that does not describe a mask of its stated size."""


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D boolean mask, column-major, starting with a (possibly empty) zero run.

    Works on the C-ordered array: run boundaries of the column-major flattening are the vertical
    changes inside each column plus the changes from one column's last pixel to the next
    column's first, so only the (few) change positions are sorted, not the whole mask
    transposed (3x faster on 640x480 masks). [] for a mask with no pixels. Raises RLEError
    (a ValueError) when the mask is not 2-D.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise RLEError(f"mask must be 2-D, got shape {m.shape}")
    height, width = m.shape
    if m.size == 0:
        return []
    rows, cols = np.divmod(np.flatnonzero(m[1:, :] != m[:-1, :]), width)
    inside = cols.astype(np.int64) * height + rows + 1
    across = (np.flatnonzero(m[0, 1:] != m[-1, :-1]).astype(np.int64) + 1) * height
    change = np.sort(np.concatenate((inside, across)))
    counts = np.diff(np.concatenate(([0], change, [height * width])))
    if m[0, 0]:
        counts = np.concatenate(([0], counts))
    return counts.astype(np.int64).tolist()


def counts_to_mask(height: int, width: int, counts) -> np.ndarray:
    """Decode counts into a bool (height, width) mask; raises RLEError on inconsistent input."""
    height, width = int(height), int(width)
    if height < 0 or width < 0:
        raise RLEError(f"negative mask size {height}x{width}")
    if height * width > MAX_MASK_PIXELS:
        raise RLEError(f"mask size {height}x{width} exceeds {MAX_MASK_PIXELS} pixels")
    try:
        raw = np.asarray(counts)
    except (TypeError, ValueError) as exc:  # ragged nesting
        raise RLEError(f"RLE counts are not a list of integers: {exc}") from None
    if raw.size and raw.dtype.kind not in "iu":  # 2.5 or "2" would be truncated or parsed
        raise RLEError(f"RLE counts must be integers, got {raw.dtype} values")
    runs = raw.astype(np.int64).ravel()
    if runs.size and runs.min() < 0:
        raise RLEError("negative run length")
    total = int(runs.sum()) if runs.size else 0
    if total != height * width:
        raise RLEError(f"RLE counts sum to {total}, expected height*width = {height * width}")
    values = (np.arange(runs.size) % 2).astype(bool)
    flat = np.repeat(values, runs)
    return flat.reshape((height, width), order="F")


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO uncompressed RLE dict {"size": [h, w], "counts": [...]} of a 2-D [h, w] boolean
    mask. Raises RLEError (a ValueError) when the mask is not 2-D."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise RLEError(f"mask must be 2-D, got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": mask_to_counts(mask)}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Bool [h, w] mask from a COCO uncompressed RLE dict {"size": [h, w], "counts": [...]}.

    Raises RLEError (a ValueError) when `rle` lacks "size" or "counts", its counts are a
    compressed string, or they do not describe a mask of that size (`counts_to_mask`).
    """
    try:
        height, width = rle["size"]
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as exc:
        raise RLEError(f"not an uncompressed RLE dict: {exc}") from exc
    if isinstance(counts, (str, bytes)):
        raise RLEError("compressed (string) RLE counts are not accepted; expected a list of ints")
    return counts_to_mask(height, width, counts)


def rle_area(counts) -> int:
    """Number of set pixels, read off the counts without decoding."""
    return int(sum(counts[1::2]))
