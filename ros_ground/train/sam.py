"""Train the embedded SAM-architecture model on simulated (point prompt -> mask) pairs.

The model is segment-anything's own `Sam` (ImageEncoderViT + PromptEncoder + MaskDecoder with a
TwoWayTransformer), only small, built by `ros_ground.sam.build_sam_from_config` and saved with
`ros_ground.sam.save_sam`, so it loads and runs through the same `SamPredictor` /
`SamAutomaticMaskGenerator` paths as the released checkpoints.

Training follows SAM's recipe at small scale: a foreground point inside a segment (an object,
the table or the empty background), three candidate masks, focal (x20) + dice loss on the best
candidate only (ambiguity-aware), and the IoU head regressed onto every candidate's actual IoU
(Kirillov et al., "Segment Anything", ICCV 2023: focal and dice loss 20:1, the IoU head by MSE).
Images are preprocessed exactly as `SamPredictor.set_image` does (resize longest side to
img_size, normalise, pad bottom/right).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss
from transformers import get_cosine_with_min_lr_schedule_with_warmup

from ros_ground.train.configs import SAMTrainConfig
from ros_ground.train.data import (
    BACKGROUND,
    FIRST_OBJECT,
    TABLE,
    SceneStore,
    batches,
    check_train_seeds,
    default_cache_dir,
)
from ros_ground.train.loop import (
    LoopState,
    base_record,
    check_resumable,
    resume_schedule,
    resumed_init_from,
    resumes,
    run_record,
    stop_message,
    train_steps,
)

# --------------------------------------------------------------------------- data

def sample_prompts(labels: np.ndarray, rng: np.random.Generator, count: int,
                   object_share: float) -> tuple[np.ndarray, np.ndarray]:
    """`count` (x, y) points (pixel units, uniform inside a pixel) and the segment id of each.

    Objects get `object_share` of the points (every object once before any twice); the table
    and the empty background share the rest.
    """
    ids = [int(v) for v in np.unique(labels)]
    objects = [v for v in ids if v >= FIRST_OBJECT]
    others = [v for v in ids if v in (TABLE, BACKGROUND)]
    chosen: list[int] = []
    n_obj = int(round(count * object_share)) if objects else 0
    while len(chosen) < n_obj:
        chosen.extend(int(v) for v in rng.permutation(objects)[: n_obj - len(chosen)])
    while len(chosen) < count:
        pool = others or objects
        chosen.append(int(pool[int(rng.integers(len(pool)))]))
    points = np.zeros((count, 2), dtype=np.float32)
    for k, seg in enumerate(chosen):
        rows, cols = np.nonzero(labels == seg)
        j = int(rng.integers(len(rows)))
        # SAM adds 0.5 (pixel centre) to prompt coordinates: land uniformly inside the pixel
        points[k] = (cols[j] + rng.random() - 0.5, rows[j] + rng.random() - 0.5)
    return points, np.asarray(chosen, dtype=np.int64)


def preprocess(sam, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
    """As SamPredictor.set_image: resize longest side, normalise, pad. Returns (1x3xSxS, size)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    transform = ResizeLongestSide(sam.image_encoder.img_size)
    resized = transform.apply_image(rgb)
    x = torch.as_tensor(resized).permute(2, 0, 1).contiguous()[None].float()
    return sam.preprocess(x), tuple(resized.shape[:2])


# --------------------------------------------------------------------------- losses

def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask mean sigmoid focal loss (alpha 0.25, gamma 2); logits/target [..., H, W] -> [...]."""
    return sigmoid_focal_loss(logits, target, reduction="none").flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask soft dice loss, 1 - (2|P.T| + 1) / (|P| + |T| + 1); logits/target [..., H, W] ->
    [...], P the sigmoid of the logits and T the 0/1 target. The +1 smoothing makes an empty
    prediction of an empty target a loss of 0 and keeps the gradient finite. Milletari et al.,
    "V-Net: Fully Convolutional Neural Networks for Volumetric Medical Image Segmentation", 3DV 2016
    (there with squared sums in the denominator; here plain sums, the form of DETR's dice_loss)."""
    prob = logits.sigmoid().flatten(-2)
    target = target.flatten(-2)
    inter = (prob * target).sum(-1)
    return 1 - (2 * inter + 1) / (prob.sum(-1) + target.sum(-1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of each predicted mask (logits > 0) with its target, the IoU head's training target:
    an empty prediction of an empty target is exact, so 1 (masks.iou's 0 is the evaluation's)."""
    pred = (logits > 0).flatten(-2)
    target = target.flatten(-2) > 0.5
    inter = (pred & target).sum(-1).float()
    union = (pred | target).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def image_loss(sam, embedding: torch.Tensor, points: torch.Tensor, targets: torch.Tensor,
               input_size: tuple[int, int], focal_weight: float, full_res: bool = False
               ) -> tuple[torch.Tensor, dict]:
    """Loss of P single-point prompts on one image embedding ([1, C, h, w]).

    Default: all three candidate masks at half the input resolution (2x the 4x-upscaled
    low-res masks) against area-averaged targets; cheap, for the bulk of training.
    `full_res`: the best candidate (chosen at low resolution) at full resolution against the
    hard mask, and IoU targets at full resolution: sharper boundaries (SAM's stability score)
    and honest IoU predictions, for the refinement stage.
    """
    coords = points[:, None, :]  # [P, 1, 2] in input-image pixels (= original for 320x240)
    labels = torch.ones(points.shape[0], 1, dtype=torch.int64)
    sparse, dense = sam.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    low_res, iou_pred = sam.mask_decoder(
        image_embeddings=embedding, image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
    img = sam.image_encoder.img_size
    if not full_res:
        size = img // 2
        h, w = (input_size[0] + 1) // 2, (input_size[1] + 1) // 2
        logits = F.interpolate(low_res, (size, size), mode="bilinear", align_corners=False)
        logits = logits[..., :h, :w]  # [P, 3, h, w]
        target = F.adaptive_avg_pool2d(targets[:, None], (h, w)).expand_as(logits)
        per_mask = focal_weight * focal_loss(logits, target) + dice_loss(logits, target)
        best = per_mask.argmin(dim=1)
        mask_loss = per_mask.gather(1, best[:, None]).mean()
        with torch.no_grad():
            actual = mask_iou(logits, target)
    else:
        lh, lw = low_res.shape[-2] * input_size[0] // img, low_res.shape[-1] * input_size[1] // img
        with torch.no_grad():
            coarse = F.adaptive_avg_pool2d(targets[:, None], (lh, lw)).expand(-1, 3, -1, -1)
            cheap = low_res[..., :lh, :lw]
            best = (focal_weight * focal_loss(cheap, coarse) + dice_loss(cheap, coarse)).argmin(1)
            full = F.interpolate(low_res, (img, img), mode="bilinear", align_corners=False)
            full = full[..., : input_size[0], : input_size[1]]
            actual = mask_iou(full, targets[:, None].expand_as(full))
        chosen = low_res[torch.arange(low_res.shape[0]), best][:, None]  # [P, 1, h, w]
        logits = F.interpolate(chosen, (img, img), mode="bilinear", align_corners=False)
        logits = logits[..., : input_size[0], : input_size[1]]
        target = targets[:, None]
        mask_loss = (focal_weight * focal_loss(logits, target) + dice_loss(logits, target)).mean()
    iou_loss = F.mse_loss(iou_pred, actual)
    stats = {"iou_best": float(actual.gather(1, best[:, None]).mean())}
    return mask_loss + iou_loss, stats


# --------------------------------------------------------------------------- training

def make_example(store: SceneStore, i: int, step: int, cfg: SAMTrainConfig, sam):
    """(preprocessed image, input size, points [P,2], target masks [P,H,W]) for scene i."""
    rng = np.random.default_rng([cfg.seed, step, store.seed(i)])
    rgb, labels = store.rgb(i), store.labels(i)
    if rng.random() < 0.5:  # mirror: masks have no left/right words to contradict
        rgb, labels = rgb[:, ::-1].copy(), labels[:, ::-1].copy()
    points, segs = sample_prompts(labels, rng, cfg.prompts, cfg.object_share)
    x, input_size = preprocess(sam, rgb)
    scale = input_size[1] / rgb.shape[1]
    targets = torch.from_numpy(np.stack([labels == s for s in segs]).astype(np.float32))
    if input_size != labels.shape:
        targets = F.interpolate(targets[None], input_size, mode="nearest")[0]
    return x, input_size, torch.from_numpy(points * scale), targets


def train_sam(cfg: SAMTrainConfig, out_dir: Path, cache_dir: Path | None = None,
              state_path: Path | None = None, progress: bool | None = None,
              log_path: Path | None = None) -> dict:
    """Train the SAM model per `cfg` into `out_dir` (`save_sam`); returns a summary (steps,
    wall seconds, losses). Resumes from `state_path` (see loop.resumed_init_from); ValueError
    for training seeds below TRAIN_SEED_START."""
    from ros_ground.sam import build_sam_from_config, save_sam

    check_train_seeds(cfg.seed_start, cfg.scenes)
    torch.set_num_threads(cfg.threads)
    store = SceneStore(cfg.seed_start, cfg.scenes, cache_dir or default_cache_dir(),
                       scene_set=cfg.scene_set)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        sam = build_sam_from_config(cfg.sam_config)
    decay = [p for n, p in sam.named_parameters() if p.ndim >= 2 and "pos" not in n]
    no_decay = [p for n, p in sam.named_parameters() if not (p.ndim >= 2 and "pos" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    loop = LoopState()
    if state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)  # tensors and plain data
        cfg = replace(cfg, init_from=resumed_init_from(state, cfg.init_from, state_path))
        check_resumable(state, cfg.to_dict(), out_dir, state_path)
        resumed = resumes(state, cfg.to_dict())
        sam.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        loop = LoopState(step=state["step"], elapsed_s=state["elapsed"], history=state["history"])
        # read when the run started: its --out may be its --init-from, rewritten since
        base = state.get("base")
    else:
        base, resumed = base_record(cfg.init_from), []
        if cfg.init_from:
            from ros_ground.sam import load_sam

            # strict: the same architecture or an error
            sam.load_state_dict(load_sam(str(cfg.init_from)).sam.state_dict())
    sam.train()
    batch_iter = batches(cfg.scenes, cfg.batch_size, cfg.seed + 1)
    for _ in range(loop.step):
        next(batch_iter)
    total_steps = cfg.steps + cfg.refine_steps

    def step_fn(step: int) -> tuple[torch.Tensor, dict]:
        examples = [make_example(store, i, step, cfg, sam) for i in next(batch_iter)]
        embeddings = sam.image_encoder(torch.cat([x for x, _, _, _ in examples]))
        total, ious = 0.0, []
        for b, (_, size, points, targets) in enumerate(examples):
            loss, stats = image_loss(sam, embeddings[b: b + 1], points, targets, size,
                                     cfg.focal_weight, full_res=step >= cfg.steps)
            total = total + loss / len(examples)
            ious.append(stats["iou_best"])
        return total, {"train_iou": float(np.mean(ious))}

    def checkpoint(loop: LoopState, final: bool = False) -> None:
        save_sam(sam, cfg.sam_config, out_dir)
        summary = {"step": loop.step, "elapsed_s": round(loop.elapsed_s, 1),
                   "final": final and not loop.stopped_early,
                   "stopped_early": final and loop.stopped_early,
                   "config": cfg.to_dict(), "history": loop.history, "base": base,
                   "resumed": resumed}
        (Path(out_dir) / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
        if state_path is not None:
            Path(state_path).parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": sam.state_dict(), "optimizer": optimizer.state_dict(),
                        "step": loop.step, "elapsed": loop.elapsed_s, "history": loop.history,
                        "base": base, **run_record(cfg.to_dict(), out_dir, cfg.init_from, resumed)},
                       state_path)

    # warm-up + cosine over cfg.steps at half resolution, then a second short warm-up + cosine
    # from cfg.refine_lr for the full-resolution refinement (its loss has another scale, so its
    # smoothed values start afresh)
    phases = [(cfg.steps, cfg.lr, cfg.warmup, cfg.steps, "train sam"),
              (total_steps, cfg.refine_lr, 20, cfg.refine_steps, "refine sam")]
    start = 0
    for end, lr, warmup, length, desc in phases:
        if loop.step < end and not loop.stopped_early:
            scheduler = resume_schedule(
                get_cosine_with_min_lr_schedule_with_warmup, optimizer, lr, loop.step - start,
                num_warmup_steps=warmup, num_training_steps=length, min_lr_rate=cfg.min_lr_ratio)
            train_steps(step_fn, optimizer, scheduler, sam.parameters(), loop, end,
                        grad_clip=cfg.grad_clip, time_limit_s=cfg.time_limit_min * 60,
                        checkpoint=checkpoint, checkpoint_every=cfg.checkpoint_every,
                        log_path=log_path, desc=desc, progress=progress)
        start = end
    sam.eval()
    stop_message("train sam", loop, cfg.time_limit_min)
    checkpoint(loop, final=True)
    return {"steps": loop.step, "wall_s": round(loop.elapsed_s, 1),
            "stopped_early": loop.stopped_early, "final_loss": loop.running.get("loss"),
            "final_train_iou": loop.running.get("train_iou"),
            "parameters": sum(p.numel() for p in sam.parameters()),
            "images": loop.step * cfg.batch_size, "history": loop.history}
