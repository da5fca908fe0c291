"""Flipped views of the image, for steadier attention maps (test-time augmentation).

The answer is generated once, on the image as it is; the extra views re-read that answer's
attention on flipped copies of the image (together, one batched teacher-forced pass) and flip
the maps back. The
mean over views keeps what the views agree on, the object a phrase names, and averages away
what they don't. Measured on the embedded sim model: see its model card.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("identity", "hflip", "vflip", "rot180")
FLIPS = VIEWS  # the default set: the image and its three flips


def check_views(views) -> tuple[str, ...]:
    """The views as a tuple; rejects unknown, repeated or no views."""
    views = tuple(views)
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown attention views {unknown}; choose from {VIEWS}")
    if not views:
        raise ValueError(f"attention_views needs at least one of {VIEWS}")
    if len(set(views)) != len(views):
        raise ValueError(f"attention views repeated: {list(views)}")
    return views


def flip_image(image: np.ndarray, view: str) -> np.ndarray:
    """The HxWxC image as `view` shows it (a contiguous copy unless identity)."""
    return np.ascontiguousarray(_flip(image, view, rows_axis=0, cols_axis=1))


def unflip_maps(maps: np.ndarray, view: str) -> np.ndarray:
    """[T, h, w] maps read on `view` -> the same maps on the original image (flips are their own
    inverse)."""
    return np.ascontiguousarray(_flip(maps, view, rows_axis=-2, cols_axis=-1))


def _flip(array: np.ndarray, view: str, rows_axis: int, cols_axis: int) -> np.ndarray:
    if view == "identity":
        return array
    if view == "hflip":
        return np.flip(array, axis=cols_axis)
    if view == "vflip":
        return np.flip(array, axis=rows_axis)
    if view == "rot180":
        return np.flip(array, axis=(rows_axis, cols_axis))
    raise ValueError(f"unknown view {view!r}; choose from {VIEWS}")
