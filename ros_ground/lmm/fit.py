"""How a camera frame is fitted to the LMM's image input (the `image_fit` setting).

llava-hf's LLaVA-1.5 processors resize the shortest edge and centre-crop a square: of a 640x480
frame the model never sees x < 80 or x >= 560, of a 1280x720 frame x < 280 or x >= 1000. An
object there is neither described nor grounded. Padding the frame to a square first (LLaVA-1.5's
own `expand2square`, which it was trained with and attend-and-segment used) shows the model the
whole frame, at a smaller scale, where the processor's crop is its resize (336/336, as llava-hf's
LLaVA-1.5; one that resizes to more than it crops still cuts the padded square's edges, and
report_unseen says so). Other processors (the sim model's and LLaVA-NeXT's squash
resize, Qwen2-VL's dynamic resize) already read the whole frame.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ros_ground.geometry import (
    IMAGE_FITS,
    ImageGeometry,
    background_fill,
    pad_to_square,
    processor_fit,
    trim_to_crop,
)

LOG = logging.getLogger(__name__)
# a frame longer than this is shrunk to it before padding: the processor shrinks the square to
# a few hundred px anyway, and a 1x4096 line (allowed by max_image_pixels) would pad to 4096^2
PAD_MAX_SIDE = 2048
# model types whose image tokens form one square grid of the processor's fitted image
# (lmm.layout): only these can be given a centre crop
CROPPING_MODEL_TYPES = ("llava",)


def resolve_image_fit(image_fit: str, model_type: str, image_processor: Any) -> str:
    """`image_fit` (IMAGE_FITS) -> "processor" or "pad". auto: pad where the processor would
    centre-crop the frame (a LLaVA-1.5-style model with a crop processor), else the processor's
    own fit, which sees the whole frame. ValueError for another value."""
    if image_fit not in IMAGE_FITS:
        raise ValueError(f"image_fit must be one of {IMAGE_FITS}, got {image_fit!r}")
    if image_fit != "auto":
        return image_fit
    crops = model_type in CROPPING_MODEL_TYPES and processor_fit(image_processor)[0] == "crop"
    return "pad" if crops else "processor"


def fit_image(image: np.ndarray, image_fit: str, model_type: str, image_processor: Any) -> np.ndarray:
    """The frame (HxWx3 uint8) as the processor is given it under a resolved `image_fit`:
    padded to a square of the processor's mean colour (first shrunk to PAD_MAX_SIDE on its
    longer side, where longer), or (processor) a very long frame cut to the window a
    centre-crop processor keeps (geometry.trim_to_crop). Either way geometry_for on the
    original size places the model's grid on the frame (to a pixel)."""
    if image_fit == "pad":
        height, width = image.shape[:2]
        if max(height, width) > PAD_MAX_SIDE:
            import cv2

            scale = PAD_MAX_SIDE / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
        return pad_to_square(image, background_fill(image_processor))
    if model_type in CROPPING_MODEL_TYPES:
        return trim_to_crop(image, image_processor)
    return image


def report_unseen(geometry: ImageGeometry, said: set) -> None:
    """Log once per frame size (tracked in `said`) the part of the frame a centre crop keeps
    from the model: nothing there is described or grounded. image_fit processor: the crop of
    the frame; pad: the processor's crop of the padded square, where its crop is smaller than
    its resize (a shortest_edge 384 / crop 336 processor keeps the central 7/8 of the square,
    so a 640x480 frame loses x < 40 and x >= 600)."""
    size = (geometry.height, geometry.width)
    if geometry.fit not in ("crop", "pad") or size in said:
        return
    said.add(size)
    x0, y0, x1, y1 = geometry.window()
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, geometry.width), min(y1, geometry.height)
    seen = (x1 - x0) * (y1 - y0) / (geometry.width * geometry.height)
    if seen >= 1.0:
        return
    if geometry.fit == "crop":
        LOG.warning("image_fit processor: the LMM's processor centre-crops each %dx%d frame to "
                    "x %d..%d, y %d..%d, so %.0f%% of the frame is never seen, described or "
                    "grounded; image_fit pad (or auto) shows it the whole frame",
                    geometry.width, geometry.height, x0, x1, y0, y1, 100 * (1 - seen))
    else:
        LOG.warning("image_fit pad: the LMM's processor centre-crops the padded square of each "
                    "%dx%d frame (its crop_size is smaller than its resize), keeping x %d..%d, "
                    "y %d..%d, so %.0f%% of the frame is never seen, described or grounded",
                    geometry.width, geometry.height, x0, x1, y0, y1, 100 * (1 - seen))
