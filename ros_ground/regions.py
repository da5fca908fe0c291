"""Region prompts (Groma's localized visual tokens): ask the LMM about a region of the image.

Groma: "Groma: Localized Visual Tokenization for Grounding Multimodal Large Language Models",
ECCV 2024, arXiv:2404.13013.

A region (box, mask or pixel) becomes an entity mask: the proposal that fits it best, else SAM's
mask for it. Its token, pooled from the LMM's own projected image tokens (lmm.tokens), is put
into the context where the prompt refers to it: the embedding of the referring word ("this",
"it", or a literal `<region>`) is replaced during the prefill. Pooled projector features are in
the language model's input space, so this needs no training for a LLaVA-style model.
`focus` additionally keeps only the region's own image tokens in view (the others are replaced
by the median token of the rest of the image): for a model never shown a region token, such as
the captions-only sim model, the region is then the only object it can name.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ros_ground.errors import InputError, shorten
from ros_ground.masks import iou
from ros_ground.spatial import depth_at, project

if TYPE_CHECKING:  # torch loads with the model: resolving a region (CLI checks, nodes) needs none
    import torch

REGION_PLACEHOLDER = "<region>"
REFERRING_WORDS = ("this", "that", "it")
FOCUS_MODES = ("none", "region")


@dataclass
class Region:
    """A region of one frame: `mask` bool HxW, and how it was given ("box", "mask", "point")."""

    mask: np.ndarray
    kind: str


def box_mask(shape: tuple[int, int], x: int, y: int, w: int, h: int) -> np.ndarray:
    """bool `shape` mask of the box with top-left (x, y), size w x h in pixels.

    Raises InputError unless the box is non-empty and lies wholly in the image: a box that
    reaches past an edge was drawn on another image or overflowed (a width of 2**32 - 1), and
    clipping it would answer about another region than the one asked.
    """
    height, width = shape
    x, y, w, h = (int(v) for v in (x, y, w, h))
    if w <= 0 or h <= 0:
        raise InputError(f"region box {(x, y, w, h)} is empty (width and height must be >= 1)")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise InputError(f"region box {(x, y, w, h)} reaches outside the {width}x{height} image "
                         "(x, y >= 0, x + width <= image width, y + height <= image height)")
    mask = np.zeros(shape, dtype=bool)
    mask[y:y + h, x:x + w] = True
    return mask


def entity_for_box(box: np.ndarray, proposals) -> np.ndarray | None:
    """The proposal mask of highest IoU with the `box` mask (at least 0.3), else None.
    ValueError when a proposal's mask is not the box's shape (masks.iou)."""
    best, best_iou = None, 0.3
    for p in proposals or []:
        mask = np.asarray(p.mask, dtype=bool)
        value = iou(mask, box)
        if value >= best_iou:
            best, best_iou = mask, value
    return best


def entity_for_point(x: float, y: float, proposals) -> np.ndarray | None:
    """The smallest proposal mask that holds pixel (x, y), else None."""
    held = [np.asarray(p.mask, dtype=bool) for p in proposals or []
            if np.asarray(p.mask, dtype=bool)[int(y), int(x)]]
    return min(held, key=lambda m: int(m.sum())) if held else None


def check_point(shape: tuple[int, int], x: float, y: float) -> None:
    """InputError unless pixel (x, y) lies inside an image of `shape` (H, W)."""
    if not (0 <= x < shape[1] and 0 <= y < shape[0]):
        where = f"({float(x):.10g}, {float(y):.10g})"  # numpy scalars print as np.float64(...)
        raise InputError(f"region point {where} is outside the {shape[1]}x{shape[0]} image")


def referring_position(prompt_text: str, spans: list[tuple[int, int]]) -> int | None:
    """Index of the prompt token that refers to the region: a `<region>` placeholder, else the
    first of REFERRING_WORDS; None when the prompt has neither (the token is then appended)."""
    lowered = prompt_text.lower()
    found = lowered.find(REGION_PLACEHOLDER)
    if found < 0:
        match = re.search(r"\b(" + "|".join(REFERRING_WORDS) + r")\b", lowered)
        found = match.start() if match else -1
    if found < 0:
        return None
    return next((i for i, (a, b) in enumerate(spans) if a <= found < b or a >= found), None)


def _background(tokens: torch.Tensor) -> torch.Tensor:
    """The token shown in place of the image outside the region: the element-wise median of
    the other tokens (mostly table; a mean would blend the other objects' colours in)."""
    return tokens.median(0).values


@dataclass
class RegionInputs:
    """What a region changes in the prefill: `token` ([D], for the referring word's position);
    the image-token cells that are the region's own, `cells` ([grid_h * grid_w] bool); with
    focus, the other cells all show `rest` ([D], None without focus or when the region covers
    every cell); `offset` ([D], a trained region encoder's vector, or None) is added to the
    token and to the region's own cells."""

    token: torch.Tensor
    cells: torch.Tensor
    rest: torch.Tensor | None
    offset: torch.Tensor | None = None


def region_inputs(features, geometry, mask: np.ndarray, focus: str = "none") -> RegionInputs:
    """The region's token pooled from `features` ([grid_h * grid_w, D], the LMM's image tokens)
    over `mask` (HxW bool); its own cells, those it covers at least half of, or its best-covered
    one (a small object may cover no cell half); with `focus="region"`, the others to hide.
    Raises InputError when the region covers no cell, ValueError for an unknown focus or a
    mask of another size than the image `geometry` describes."""
    import torch

    from ros_ground.lmm.tokens import token_grid_weights

    if focus not in FOCUS_MODES:
        raise ValueError(f"focus must be one of {FOCUS_MODES}, got {focus!r}")
    weights = token_grid_weights(mask, geometry).reshape(-1)
    if weights.sum() <= 0:
        raise InputError("the region covers none of the image the model sees")
    features = torch.as_tensor(np.asarray(features, dtype=np.float32))
    w = torch.as_tensor(weights)
    token = (w[:, None] * features).sum(0) / w.sum()
    cells = w >= min(0.5, float(w.max()))
    rest = _background(features[~cells]) if focus == "region" and not cells.all() else None
    return RegionInputs(token, cells, rest)


def apply_region(embeds: torch.Tensor, inputs: RegionInputs, position: int | None,
                 image_positions: torch.Tensor) -> torch.Tensor:
    """A copy of prefill `embeds` ([L, D]) with the region's token at `position` (None: none),
    the image cells not the region's (at sequence indices `image_positions`) replaced by
    `rest` when there is one, and the offset, when there is one, added to the token and the
    region's own cells."""
    embeds = embeds.clone()
    offset = 0 if inputs.offset is None else inputs.offset.to(embeds.dtype).to(embeds.device)
    if position is not None:
        embeds[position] = inputs.token.to(embeds.dtype).to(embeds.device) + offset
    if inputs.rest is not None:
        rows = image_positions[~inputs.cells].to(embeds.device)
        embeds[rows] = inputs.rest.to(embeds.dtype).to(embeds.device)
    if inputs.offset is not None:
        embeds[image_positions[inputs.cells].to(embeds.device)] += offset
    return embeds


def region_position(adapter, prompt: str, input_ids: torch.Tensor) -> tuple[int | None, int | None]:
    """(index among the prompt's own tokens, sequence position) of the token the region's
    token replaces: the referring word (`referring_position`), else the prompt's last token;
    (None, None) when the prompt's tokens cannot be found."""
    own = adapter.prompt_tokens(prompt, input_ids)
    index = referring_position(own.text, own.spans) if own.positions else None
    position = own.positions[index] if index is not None else (
        own.positions[-1] if own.positions else None)
    return index, position


def token_encoder(region_token: str, model: str):
    """The region encoder the `region_token` setting asks for: None for "pooled", LMM `model`'s
    trained region_encoder.RegionEncoder for "encoder" (InputError when it ships none)."""
    if region_token != "encoder":
        return None
    from ros_ground.region_encoder import encoder_for

    return encoder_for(model)


@contextlib.contextmanager
def region_context(adapter, image: np.ndarray, prompt: str, features: np.ndarray,
                   geometry, mask: np.ndarray, focus: str = "none", encoder=None):
    """While active, the adapter's next `generate(image, prompt)` sees the region: its token
    (pooled from `features`, [grid_h * grid_w, D]) in place of the referring word's embedding
    (or of the prompt's last token when none refers), and with `focus="region"` only the
    region's image tokens (`region_inputs`); `encoder.encode(image, mask)` (a trained
    region_encoder.RegionEncoder), when given, is added to the token and the region's own image
    tokens (`apply_region`). Yields the prompt token index that was replaced."""
    region = region_inputs(features, geometry, mask, focus)
    if encoder is not None:
        region.offset = encoder.encode(image, mask)
    inputs, layout, _ = adapter.prepare(image, prompt)
    index, position = region_position(adapter, prompt, inputs["input_ids"])
    length = int(inputs["input_ids"].shape[1])
    image_positions = layout.positions.cpu()

    def hook(module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is None or embeds.shape[1] != length:  # only the prefill holds the prompt
            return None
        kwargs["inputs_embeds"] = apply_region(embeds[0], region, position, image_positions)[None]
        return args, kwargs

    handle = adapter.model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield index
    finally:
        handle.remove()


def resolve_region(shape: tuple[int, int], proposals=None, segment_point=None,
                   box: tuple[int, int, int, int] | None = None, mask: np.ndarray | None = None,
                   point: tuple[float, float] | None = None) -> Region:
    """The entity mask of a region given as a `mask` (HxW, used as it is), a `box`
    (x, y, w, h: the proposal of highest IoU with it, else the box itself) or a `point`
    (x, y pixel: the smallest proposal holding it, else `segment_point(x, y)`, SAM's mask).
    Exactly one of them. Raises InputError when none or several are given, or one is outside
    the image of `shape` (H, W) or empty."""
    given = [name for name, value in (("box", box), ("mask", mask), ("point", point))
             if value is not None]
    if len(given) != 1:
        raise InputError(f"give exactly one region (box, mask or point), got {given or 'none'}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise InputError(f"region mask is {mask.shape}, the image is {tuple(shape)}")
        if not mask.any():
            raise InputError("region mask is empty")
        return Region(mask, "mask")
    if box is not None:
        boxed = box_mask(shape, *box)
        found = entity_for_box(boxed, proposals)
        return Region(boxed if found is None else found, "box")
    x, y = point
    check_point(shape, x, y)
    found = entity_for_point(x, y, proposals)
    if found is None and segment_point is not None:
        found = np.asarray(segment_point(float(x), float(y)), dtype=bool)
    if found is None or not found.any():
        raise InputError(f"no entity under region point {(x, y)}")
    return Region(found, "point")


def goal_region(goal, decode_mask) -> dict | None:
    """`resolve_region` keyword arguments from a Ground goal's region fields, None when the
    goal names no region: `region_mask` (non-empty counts; `decode_mask(msg)` -> HxW), else
    `region` (a RegionOfInterest; all zero is none, as in sensor_msgs), else `region_x`/`region_y`
    (both -1 is none). The first set one wins, so a client may fill a box and the mask it came
    from. Raises InputError for a mask that does not decode, a box with a zero side, and a pixel
    with a negative coordinate other than the (-1, -1) of none."""
    rle = getattr(goal, "region_mask", None)
    if rle is not None and len(rle.counts):
        try:
            return {"mask": decode_mask(rle)}
        except ValueError as exc:
            raise InputError(f"bad region_mask: {exc}") from exc
    roi = getattr(goal, "region", None)
    if roi is not None and (roi.x_offset, roi.y_offset, roi.width, roi.height) != (0, 0, 0, 0):
        return {"box": (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))}
    x, y = int(getattr(goal, "region_x", -1)), int(getattr(goal, "region_y", -1))
    if (x, y) == (-1, -1):
        return None
    if x < 0 or y < 0:
        raise InputError(f"region_x and region_y must both be set (>= 0), or both -1 for no pixel; "
                         f"got {(x, y)}")
    return {"point": (x, y)}


CLICK_SURFACE_M = 0.1  # a 3-D click this far from the surface seen at its pixel is refused


def click_region(point, frame, registered, other_frames=()) -> dict:
    """`resolve_region` keywords for a clicked point on `frame`.

    `point` is a geometry_msgs/PointStamped (or alike: header.frame_id, point.x/y/z), as rviz's
    "Publish Point" tool sends it; `frame` has header.frame_id (the camera's optical frame) and
    rgb. `registered()` returns (depth HxW metres registered to the frame, K 3x3) or raises
    LookupError / ValueError saying what is missing; it is called for a 3-D point only. The rule:

    - the point must be in the image's frame_id: an empty or another frame is refused (no tf
      lookup here: set rviz's Fixed Frame to the camera's optical frame, or transform it first);
    - z == 0: a pixel, x the column and y the row (no point the camera can see has z 0: that
      plane passes through the lens);
    - z > 0: a 3-D point in metres, seen at the pixel K projects it to; the depth there (median
      of a 5x5 window) must be within CLICK_SURFACE_M of the point's z, else the point is hidden
      behind something or in free space, and the entity under its pixel is not what was clicked;
    - z < 0 or not finite: refused (not in front of the camera).
    The pixel must lie in the image. Every refusal is an InputError saying why, naming the
    frames of `other_frames` (the node's other cameras' images) when the point is in none.
    """
    if frame is None or getattr(frame, "rgb", None) is None:
        raise InputError("no image received yet to click on")
    camera, frame_id = frame.header.frame_id, point.header.frame_id
    if frame_id != camera:
        given = f"in frame {shorten(frame_id)!r}" if frame_id else "without a frame_id"
        others = sorted(set(other_frames) - {camera})
        also = f" (the other cameras' in {', '.join(repr(shorten(f)) for f in others)})" if others else ""
        raise InputError(f"clicked point {given}, the image is in {shorten(camera)!r}{also}: points are "
                         f"not transformed here; set rviz's Fixed Frame to {shorten(camera)!r}")
    x, y, z = float(point.point.x), float(point.point.y), float(point.point.z)
    shape = frame.rgb.shape[:2]
    if z == 0.0:
        check_point(shape, x, y)
        return {"point": (x, y)}
    if not (np.isfinite([x, y, z]).all() and z > 0):
        raise InputError(f"clicked point {(x, y, z)} is not in front of the camera: give a "
                         "3-D point with z > 0 metres, or a pixel with z 0")
    try:
        depth, k = registered()
        col, row = project((x, y, z), k)
    except (LookupError, ValueError) as exc:
        raise InputError(f"clicked 3-D point {(x, y, z)} cannot be projected: {exc}") from exc
    if np.shape(depth)[:2] != tuple(shape):
        raise InputError(f"depth is {np.shape(depth)[:2]}, the image {tuple(shape)}: not registered")
    check_point(shape, col, row)
    seen = depth_at(depth, col, row)
    if not abs(seen - z) <= CLICK_SURFACE_M:
        where = ("no depth return" if np.isnan(seen) else
                 f"the camera sees a surface at {seen:.3f} m, the point is at {z:.3f} m")
        raise InputError(f"clicked 3-D point {(x, y, z)} is not on what pixel "
                         f"({col:.0f}, {row:.0f}) shows: {where}")
    return {"point": (col, row)}
