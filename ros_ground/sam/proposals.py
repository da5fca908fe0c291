"""Automatic mask proposals: SAM prompted with a grid of points over the whole image.

The steps are those of segment-anything's `SamAutomaticMaskGenerator`, assembled from its public
pieces (point grids, crop boxes, `SamPredictor.predict_torch`, `calculate_stability_score`,
torchvision's `batched_nms`, `MaskData`, the small-region clean-up) so that the full frame is
decoded on the caller's predictor, whose cached embedding is used as is. Crops (crop_n_layers >
0, proposal_zoom) are encoded on a second predictor, so the full frame's embedding is never
replaced. For the same settings the result is the generator's, mask for mask, in the same order.

`proposal_zoom`, the one setting the generator lacks, adds crops at SAM's input scale
(`windows.proposal_windows`): in a frame larger than the encoder's input a far object keeps its
pixels, as in `point_zoom` for point prompts. SAM's own crop layers halve a crop's side per
layer, whatever the frame's size, so on an 800x450 frame and the sim SAM's 320-px input layer 1
still shrinks its crops 1.5 times and layer 2 costs 21 encoder passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.utils.amg import (
    MaskData,
    batch_iterator,
    batched_mask_to_box,
    build_all_layer_point_grids,
    calculate_stability_score,
    generate_crop_boxes,
    is_box_near_crop_edge,
    mask_to_rle_pytorch,
    rle_to_mask,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from torchvision.ops import batched_nms, box_area

from ros_ground.sam.windows import check_zoom_magnification, proposal_windows, zoom_side
from ros_ground.settings import AMG_DEFAULTS, PROPOSAL_DEFAULTS

# Settings that change how the work is batched (memory), never which masks are proposed.
BATCHING_SETTINGS = ("points_per_batch",)
# The most bytes of mask logits one batch of point prompts decodes to (3 float32 candidates per
# point at the crop's size): points_per_batch is cut on large frames, where 64 x 3 full-size
# float masks of a 4096x4096 frame would take 12.9 GB at once.
MAX_BATCH_LOGIT_BYTES = 512 * 2**20

# Crop settings left at segment-anything's defaults (not settable here).
CROP_NMS_THRESH = 0.7
CROP_OVERLAP_RATIO = 512 / 1500
CROP_N_POINTS_DOWNSCALE_FACTOR = 1


class ProposalsStopped(Exception):
    """A `mask_proposals` run ended early because its `should_stop` said so."""


def _stopper(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    def stop() -> None:
        if should_stop is not None and should_stop():
            raise ProposalsStopped("mask proposals stopped before the run ended")

    return stop


def proposal_settings(**params: Any) -> dict[str, Any]:
    """AMG_DEFAULTS updated with `params`; raises TypeError naming any unknown parameter and
    ValueError for a zoom_magnification below 1."""
    unknown = set(params) - set(AMG_DEFAULTS)
    if unknown:
        raise TypeError(
            f"unknown mask-proposal parameters {sorted(unknown)}; allowed: {sorted(AMG_DEFAULTS)}"
        )
    settings = {**AMG_DEFAULTS, **params}
    check_zoom_magnification(settings["zoom_magnification"])  # fails before any encoder pass
    return settings


@torch.no_grad()
def mask_proposals(
    predictor: SamPredictor,
    image: np.ndarray,
    crop_predictor: SamPredictor | None = None,
    should_stop: Callable[[], bool] | None = None,
    **params: Any,
) -> MaskData:
    """Mask proposals for `image` (HxWx3 uint8 RGB), in the generator's order (highest
    predicted IoU first when there are no crops and no small-region clean-up).

    predictor: holds `image`'s embedding already (set_image done); it is only read.
    crop_predictor: encodes the crops when crop_n_layers > 0 or proposal_zoom (a new
        SamPredictor of the same model when None); its image is reset afterwards.
    params: see AMG_DEFAULTS (points_per_side, points_per_batch, pred_iou_thresh,
        stability_score_thresh, stability_score_offset, box_nms_thresh, min_mask_region_area,
        crop_n_layers, proposal_zoom, max_zoom_crops, zoom_magnification); unknown names raise
        TypeError, a zoom_magnification below 1 ValueError; so does an `image` of another size
        than the one `predictor` holds. With proposal_zoom, a frame larger
        than the encoder's input is also prompted on `proposal_windows` crops (at most
        max_zoom_crops), each with the whole frame's grid of points_per_side^2 points (one
        encoder pass each: 8 for an 800x450 frame and a 320-px input). The crops are the
        encoder's input side / zoom_magnification px, so SAM reads them magnified that many
        times (1.6 on 800x450 and a 320-px input: 28 crops, where max_zoom_crops allows).
    should_stop: asked before each crop's encoder pass and each batch of point prompts; True
        raises ProposalsStopped (a run on a CPU takes seconds to a minute, and a node being
        stopped must end within seconds).
    Returns MaskData with numpy fields: "masks" (list of bool HxW), "iou_preds" and
    "stability_score" (float32 [N]), "boxes" (XYXY [N, 4]), "points" (prompt x, y [N, 2]) and
    "crop_boxes" ([N, 4]).
    """
    p = proposal_settings(**params)
    if tuple(predictor.original_size) != image.shape[:2]:
        raise ValueError(
            f"the predictor holds a {tuple(predictor.original_size)} image, not {image.shape[:2]}"
        )
    orig_size = image.shape[:2]
    grids = build_all_layer_point_grids(
        p["points_per_side"], p["crop_n_layers"], CROP_N_POINTS_DOWNSCALE_FACTOR
    )
    crop_boxes, layers = generate_crop_boxes(orig_size, p["crop_n_layers"], CROP_OVERLAP_RATIO)
    if p["proposal_zoom"]:
        zoom = proposal_windows(*orig_size, zoom_side(predictor.model.image_encoder.img_size,
                                                      p["zoom_magnification"]),
                                p["max_zoom_crops"])
        crop_boxes, layers = crop_boxes + zoom, layers + [None] * len(zoom)
    stop = _stopper(should_stop)
    data = MaskData()
    try:
        for crop_box, layer in zip(crop_boxes, layers):
            stop()
            if layer == 0:  # the whole image: its embedding is the caller's
                data.cat(_crop_proposals(predictor, grids[0], crop_box, orig_size, p, stop))
                continue
            if crop_predictor is None:
                crop_predictor = SamPredictor(predictor.model)
            x0, y0, x1, y1 = crop_box
            crop_predictor.set_image(image[y0:y1, x0:x1, :])
            grid = grids[0 if layer is None else layer]  # a zoom crop: the whole frame's grid
            data.cat(_crop_proposals(crop_predictor, grid, crop_box, orig_size, p, stop))
    finally:
        if crop_predictor is not None:
            crop_predictor.reset_image()

    if len(crop_boxes) > 1:  # duplicates between crops: prefer the mask of the smaller crop
        scores = (1 / box_area(data["crop_boxes"])).to(data["boxes"].device)
        data.filter(batched_nms(
            data["boxes"].float(), scores, torch.zeros(len(data["boxes"])),
            iou_threshold=CROP_NMS_THRESH,
        ))
    data.to_numpy()
    if p["min_mask_region_area"] > 0:
        data = SamAutomaticMaskGenerator.postprocess_small_regions(
            data, p["min_mask_region_area"], max(p["box_nms_thresh"], CROP_NMS_THRESH)
        )
    data["masks"] = [rle_to_mask(rle) for rle in data["rles"]]
    del data["rles"]
    return data


def _crop_proposals(
    predictor: SamPredictor,
    grid: np.ndarray,
    crop_box: list[int],
    orig_size: tuple[int, int],
    p: dict[str, Any],
    stop: Callable[[], None],
) -> MaskData:
    """The masks of one crop (whose embedding `predictor` holds), duplicates removed, in the
    whole image's coordinates; `stop()` before each batch. Masks are kept run-length encoded:
    a full-size bool mask per prompt and candidate would not fit in memory for dense grids."""
    crop_size = tuple(predictor.original_size)
    points_for_crop = grid * np.array(crop_size)[None, ::-1]
    data = MaskData()
    for (points,) in batch_iterator(points_per_batch(p["points_per_batch"], crop_size),
                                    points_for_crop):
        stop()
        data.cat(_batch_proposals(predictor, points, crop_size, crop_box, orig_size, p))
    data.filter(batched_nms(
        data["boxes"].float(), data["iou_preds"], torch.zeros(len(data["boxes"])),
        iou_threshold=p["box_nms_thresh"],
    ))
    data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
    data["points"] = uncrop_points(data["points"], crop_box)
    data["crop_boxes"] = torch.tensor([crop_box for _ in range(len(data["rles"]))])
    return data


def points_per_batch(requested: int, crop_size: tuple[int, int]) -> int:
    """How many point prompts to decode at once on a crop of `crop_size` (H, W) px: `requested`,
    cut so their mask logits (3 float32 candidates per point at the crop's size) stay within
    MAX_BATCH_LOGIT_BYTES; at least 1. The masks proposed are the same either way."""
    per_point = 3 * 4 * int(crop_size[0]) * int(crop_size[1])
    return max(1, min(int(requested), MAX_BATCH_LOGIT_BYTES // max(per_point, 1)))


def _batch_proposals(
    predictor: SamPredictor,
    points: np.ndarray,
    crop_size: tuple[int, int],
    crop_box: list[int],
    orig_size: tuple[int, int],
    p: dict[str, Any],
) -> MaskData:
    """Decode one batch of single-point prompts (3 candidates each) and keep the masks that
    pass the predicted-IoU and stability filters and do not touch a crop's inner edge."""
    orig_h, orig_w = orig_size
    coords = torch.as_tensor(
        predictor.transform.apply_coords(points, crop_size), device=predictor.device
    )
    labels = torch.ones(coords.shape[0], dtype=torch.int, device=coords.device)
    masks, iou_preds, _ = predictor.predict_torch(
        coords[:, None, :], labels[:, None], multimask_output=True, return_logits=True
    )
    data = MaskData(
        masks=masks.flatten(0, 1),
        iou_preds=iou_preds.flatten(0, 1),
        points=torch.as_tensor(points.repeat(masks.shape[1], axis=0)),
    )
    del masks
    if p["pred_iou_thresh"] > 0.0:
        data.filter(data["iou_preds"] > p["pred_iou_thresh"])
    threshold = predictor.model.mask_threshold
    # SAM's score is 0/0 for a mask empty at both thresholds: as unstable as a mask can be
    data["stability_score"] = torch.nan_to_num(calculate_stability_score(
        data["masks"], threshold, p["stability_score_offset"]
    ), nan=0.0)
    if p["stability_score_thresh"] > 0.0:
        data.filter(data["stability_score"] >= p["stability_score_thresh"])
    data["masks"] = data["masks"] > threshold
    data["boxes"] = batched_mask_to_box(data["masks"])
    near_edge = is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
    if torch.any(near_edge):
        data.filter(~near_edge)
    data["masks"] = uncrop_masks(data["masks"], crop_box, orig_h, orig_w)
    data["rles"] = mask_to_rle_pytorch(data["masks"])
    del data["masks"]
    return data


def changed_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The settings `params` (as given to `mask_proposals`) propose with that differ from
    PROPOSAL_DEFAULTS, the proposal node's, leaving out BATCHING_SETTINGS; names missing from
    `params` take AMG_DEFAULTS' values, as in `mask_proposals`."""
    used = proposal_settings(**params)
    return {name: used[name] for name in PROPOSAL_DEFAULTS
            if name not in BATCHING_SETTINGS and used[name] != PROPOSAL_DEFAULTS[name]}
