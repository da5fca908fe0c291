"""Segment Anything: loading without pickle execution, one image embedding per frame, point
refinement, automatic mask proposals and mask-pooled entity tokens.

The image encoder is the expensive part (seconds per frame for ViT-H on a CPU), so every
operation here goes through one cached embedding: several phrases, several nodes and the
automatic mask generator all reuse the embedding of the current frame.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
import threading
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from ros_ground.results import Proposal

LOG = logging.getLogger(__name__)

CONFIG_FORMAT = "ros_ground.sam/1"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "sam_config.json"
REGISTRY_SPECS = ("vit_h", "vit_l", "vit_b")
# segment_points decodes prompts in batches whose three full-size candidate masks stay under this
BATCH_MASK_BYTES = 64 << 20
# "sim": the embedded default, trained in simulation (ros_ground/train), loaded as a directory.
SIM_SAM_DIR = Path(__file__).resolve().parent / "models" / "sim_sam"

AMG_DEFAULTS: dict[str, Any] = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "min_mask_region_area": 0,
    "crop_n_layers": 0,
}

# The package's own proposal settings (mask_proposal_node, and the engine when it proposes for
# itself). Looser than SAM's stock filters, which were tuned for ViT-H on 1024 px images: for
# entity selection a missed object costs more than an extra proposal, and small models' honest
# IoU predictions (~0.87 on the sim's objects) fail a 0.88 / 0.95 filter for nearly every object.
PROPOSAL_DEFAULTS: dict[str, Any] = {
    "points_per_side": 16,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.7,
    "stability_score_thresh": 0.8,
    "box_nms_thresh": 0.7,
    "min_mask_region_area": 0,
}

_PIXEL_MEAN = [123.675, 116.28, 103.53]
_PIXEL_STD = [58.395, 57.12, 57.375]

# Architecture of segment-anything's released models, in this module's config vocabulary.
_VIT_ENCODERS = {
    "vit_h": {
        "encoder_embed_dim": 1280,
        "encoder_depth": 32,
        "encoder_num_heads": 16,
        "encoder_global_attn_indexes": [7, 15, 23, 31],
    },
    "vit_l": {
        "encoder_embed_dim": 1024,
        "encoder_depth": 24,
        "encoder_num_heads": 16,
        "encoder_global_attn_indexes": [5, 11, 17, 23],
    },
    "vit_b": {
        "encoder_embed_dim": 768,
        "encoder_depth": 12,
        "encoder_num_heads": 12,
        "encoder_global_attn_indexes": [2, 5, 8, 11],
    },
}

_CONFIG_KEYS = {
    "img_size",
    "patch_size",
    "encoder_embed_dim",
    "encoder_depth",
    "encoder_num_heads",
    "encoder_global_attn_indexes",
    "encoder_mlp_ratio",
    "window_size",
    "use_rel_pos",
    "prompt_embed_dim",
    "mask_in_chans",
    "decoder_depth",
    "decoder_mlp_dim",
    "decoder_num_heads",
    "iou_head_depth",
    "iou_head_hidden_dim",
    "pixel_mean",
    "pixel_std",
}

_SHARED: dict[tuple, SamSegmenter] = {}  # model cache keyed by (spec, checkpoint, device)
_SHARED_LOCK = threading.Lock()


class SamLoadError(ValueError):
    """A SAM spec, checkpoint or config that cannot be turned into a working model."""


# ----------------------------------------------------------------------------- architectures


def sam_config(spec: str = "tiny", img_size: int = 256) -> dict:
    """Full architecture config for "tiny" (at `img_size`) or a released "vit_h"/"vit_l"/"vit_b"."""
    if spec == "tiny":
        if img_size % 16 or not 32 <= img_size <= 256:
            raise SamLoadError(
                f"tiny SAM img_size must be a multiple of 16 in [32, 256], got {img_size}"
            )
        return {
            "format": CONFIG_FORMAT,
            "img_size": img_size,
            "patch_size": 16,
            "encoder_embed_dim": 64,
            "encoder_depth": 2,
            "encoder_num_heads": 2,
            "encoder_global_attn_indexes": [1],
            "encoder_mlp_ratio": 2.0,
            "window_size": 4,
            "use_rel_pos": True,
            "prompt_embed_dim": 32,
            "mask_in_chans": 4,
            "decoder_depth": 2,
            "decoder_mlp_dim": 64,
            "decoder_num_heads": 2,
            "iou_head_depth": 3,
            "iou_head_hidden_dim": 32,
            "pixel_mean": list(_PIXEL_MEAN),
            "pixel_std": list(_PIXEL_STD),
        }
    if spec in _VIT_ENCODERS:
        return {
            "format": CONFIG_FORMAT,
            "img_size": 1024,
            "patch_size": 16,
            **_VIT_ENCODERS[spec],
            "encoder_mlp_ratio": 4.0,
            "window_size": 14,
            "use_rel_pos": True,
            "prompt_embed_dim": 256,
            "mask_in_chans": 16,
            "decoder_depth": 2,
            "decoder_mlp_dim": 2048,
            "decoder_num_heads": 8,
            "iou_head_depth": 3,
            "iou_head_hidden_dim": 256,
            "pixel_mean": list(_PIXEL_MEAN),
            "pixel_std": list(_PIXEL_STD),
        }
    raise SamLoadError(
        f"no built-in SAM config {spec!r}: expected 'tiny', {', '.join(REGISTRY_SPECS)}"
    )


def build_sam_from_config(config: dict) -> Sam:
    """A SAM-architecture model with random weights, as described by `config` (see `sam_config`)."""
    unknown = set(config) - _CONFIG_KEYS - {"format"}
    missing = _CONFIG_KEYS - set(config)
    if unknown or missing or config.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
        raise SamLoadError(
            f"bad SAM config: missing {sorted(missing)}, unknown {sorted(unknown)}, "
            f"format {config.get('format')!r} (expected {CONFIG_FORMAT!r})"
        )
    c = config
    grid = c["img_size"] // c["patch_size"]
    if c["img_size"] % c["patch_size"]:
        raise SamLoadError("SAM config: img_size must be a multiple of patch_size")
    dim = c["prompt_embed_dim"]
    try:
        sam = Sam(
            image_encoder=ImageEncoderViT(
                img_size=c["img_size"],
                patch_size=c["patch_size"],
                embed_dim=c["encoder_embed_dim"],
                depth=c["encoder_depth"],
                num_heads=c["encoder_num_heads"],
                mlp_ratio=c["encoder_mlp_ratio"],
                out_chans=dim,
                qkv_bias=True,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                use_rel_pos=c["use_rel_pos"],
                window_size=c["window_size"],
                global_attn_indexes=tuple(c["encoder_global_attn_indexes"]),
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=dim,
                image_embedding_size=(grid, grid),
                input_image_size=(c["img_size"], c["img_size"]),
                mask_in_chans=c["mask_in_chans"],
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=c["decoder_depth"],
                    embedding_dim=dim,
                    mlp_dim=c["decoder_mlp_dim"],
                    num_heads=c["decoder_num_heads"],
                ),
                transformer_dim=dim,
                iou_head_depth=c["iou_head_depth"],
                iou_head_hidden_dim=c["iou_head_hidden_dim"],
            ),
            pixel_mean=list(c["pixel_mean"]),
            pixel_std=list(c["pixel_std"]),
        )
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise SamLoadError(f"SAM config does not describe a buildable model: {exc}") from exc
    return sam.eval()


def build_tiny_sam(seed: int = 0, img_size: int = 256) -> Sam:
    """A small SAM-architecture model (2-layer ViT, 32-d prompts) for tests and demos.

    Same seed, same weights.

    Seeded in a forked RNG so building it does not disturb the caller's random state.
    """
    config = sam_config("tiny", img_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_sam_from_config(config)


# ----------------------------------------------------------------------------- weights


def save_sam(sam: Sam, config: dict, directory) -> Path:
    """Write `sam`'s weights (safetensors) and its architecture config (JSON) into `directory`.

    The config is checked against the model (on the meta device, so even ViT-H costs nothing)
    so a saved model always loads back through `load_sam(directory)`. Returns the weights path.
    """
    config = {"format": CONFIG_FORMAT, **dict(config)}
    with torch.device("meta"):
        reference = build_sam_from_config(config)
    state = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    _check_state_dict(reference, state, "the model being saved")
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_NAME
    save_file(state, str(weights), metadata={"format": CONFIG_FORMAT})
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return weights


def load_saved_sam(path) -> Sam:
    """Model written by `save_sam`: its directory, or a .safetensors file with a JSON beside it."""
    path = Path(path).expanduser()
    if path.is_dir():
        weights, config_path = path / WEIGHTS_NAME, path / CONFIG_NAME
    else:
        weights = path
        config_path = path.with_suffix(".json")
        if not config_path.is_file():
            config_path = path.parent / CONFIG_NAME
    if not weights.is_file():
        raise SamLoadError(f"SAM weights not found: {weights}")
    if not config_path.is_file():
        raise SamLoadError(f"no SAM config beside {weights} (looked for {config_path.name})")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise SamLoadError(f"unreadable SAM config {config_path}: {exc}") from exc
    if not isinstance(config, dict):
        raise SamLoadError(f"SAM config {config_path} is not a JSON object")
    sam = build_sam_from_config(config)
    load_weights(sam, weights)
    return sam


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint, never executing pickled code.

    safetensors files are read as such (recognised by suffix or header); anything else goes
    through torch.load(weights_only=True), which refuses pickles that build arbitrary objects.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise SamLoadError(f"SAM checkpoint not found: {path}")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise SamLoadError(f"cannot read SAM checkpoint {path}: {exc}") from exc
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError as well as OSError
            raise SamLoadError(f"corrupt safetensors file {path}: {exc}") from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise SamLoadError(
                f"refused to load {path}: it holds more than plain tensors "
                "(torch.load weights_only=True). "
                f"Convert it to safetensors in a trusted environment. ({exc})"
            ) from exc
        except (RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
            raise SamLoadError(f"corrupt or unreadable SAM checkpoint {path}: {exc}") from exc
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and set(state) == {wrapper} and isinstance(state[wrapper], dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise SamLoadError(f"{path} is not a state dict of named tensors")
    return state


def load_weights(sam: Sam, path) -> None:
    """Load a checkpoint into `sam` after checking every key and shape against the architecture."""
    state = read_state_dict(path)
    _check_state_dict(sam, state, str(path))
    sam.load_state_dict(state, strict=True)


def _check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
    if not (missing or unexpected or wrong):
        return
    hint = ""
    patch = state.get("image_encoder.patch_embed.proj.weight")
    if patch is not None and patch.ndim == 4:
        found = [
            s for s, enc in _VIT_ENCODERS.items() if enc["encoder_embed_dim"] == patch.shape[0]
        ]
        if found:
            hint = f" (its encoder width {patch.shape[0]} matches {found[0]})"
    details = "; ".join(
        f"{label} {len(keys)}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong),
        )
        if keys
    )
    raise SamLoadError(f"checkpoint {source} does not fit this SAM architecture{hint}: {details}")


# ----------------------------------------------------------------------------- loading


def load_sam(spec: str, checkpoint: str | None = None, device: str = "cpu") -> SamSegmenter:
    """A SamSegmenter for "vit_h" | "vit_l" | "vit_b" (+ `checkpoint`), "tiny", "sim" (the
    packaged directory), or a saved model.

    Released architectures are built by segment-anything's registry and filled from `checkpoint`
    (safetensors or a plain-tensor .pth); without one they keep random weights, which is only
    useful for timing, so a warning is logged.
    """
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise SamLoadError(f"device {device!r} requested but CUDA is not available")
    if spec in REGISTRY_SPECS:
        sam = sam_model_registry[spec](checkpoint=None)
        if checkpoint is None:
            LOG.warning("SAM %s has random weights: pass a checkpoint for real masks", spec)
        else:
            load_weights(sam, checkpoint)
    elif spec == "tiny":
        sam = build_tiny_sam()
        if checkpoint is not None:
            load_weights(sam, checkpoint)
    else:
        path = SIM_SAM_DIR if spec == "sim" else Path(str(spec)).expanduser()
        if spec == "sim" and not (path / WEIGHTS_NAME).is_file():
            raise SamLoadError(f"the embedded 'sim' SAM is missing from {str(path)!r} "
                               "(train it with `ros-ground train sam`)")
        if not path.exists():
            raise SamLoadError(
                f"unknown SAM spec {spec!r}: expected {', '.join(REGISTRY_SPECS)}, 'tiny' or the "
                "path of a model saved by save_sam"
            )
        if checkpoint is not None:
            raise SamLoadError(
                "a saved-model path carries its own weights; do not pass checkpoint too"
            )
        sam = load_saved_sam(path)
    return SamSegmenter(sam, device=device)


def get_shared_sam(spec: str, checkpoint: str | None = None, device: str = "cpu") -> SamSegmenter:
    """One SamSegmenter per (spec, checkpoint, device), so nodes in one process share it."""
    key = (spec, checkpoint, str(device))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_sam(spec, checkpoint, device)
        return _SHARED[key]


# ----------------------------------------------------------------------------- embedding cache


@dataclass
class _EmbeddingState:
    features: Any
    original_size: Any
    input_size: Any
    is_image_set: bool
    image_key: Hashable | None


class CachingPredictor(SamPredictor):
    """SamPredictor that remembers whose embedding it holds and counts image-encoder passes.

    `set_image` with the key of the current image is free; the automatic mask generator calls
    `set_image` itself, which is how its full-image crop reuses the cached embedding.
    """

    def __init__(self, sam_model: Sam) -> None:
        self.image_key: Hashable | None = None
        self.encoder_passes = 0
        self._alias: tuple | None = None
        super().__init__(sam_model)

    def set_image(
        self, image: np.ndarray, image_format: str = "RGB", key: Hashable | None = None
    ) -> None:
        image = _check_image(image)
        cache_key = (
            ("key", key, image_format)
            if key is not None
            else self._content_key(image, image_format)
        )
        if self.is_image_set and cache_key == self.image_key:
            return
        super().set_image(image, image_format)
        self.image_key = cache_key

    @torch.no_grad()
    def set_torch_image(self, transformed_image: torch.Tensor, original_image_size) -> None:
        self.encoder_passes += 1
        super().set_torch_image(transformed_image, original_image_size)

    def reset_image(self) -> None:
        super().reset_image()
        self.image_key = None

    def snapshot(self) -> _EmbeddingState:
        return _EmbeddingState(
            getattr(self, "features", None),
            getattr(self, "original_size", None),
            getattr(self, "input_size", None),
            self.is_image_set,
            self.image_key,
        )

    def restore(self, state: _EmbeddingState) -> None:
        self.features, self.original_size, self.input_size = (
            state.features,
            state.original_size,
            state.input_size,
        )
        self.is_image_set, self.image_key = state.is_image_set, state.image_key

    @contextlib.contextmanager
    def aliased(self, image: np.ndarray) -> Iterator[None]:
        """While active, a view with `image`'s memory layout counts as the current image."""
        self._alias = (_layout(image), self.image_key)
        try:
            yield
        finally:
            self._alias = None

    def _content_key(self, image: np.ndarray, image_format: str) -> tuple:
        if self._alias is not None and self._alias[0] == _layout(image):
            return self._alias[1]
        digest = hashlib.blake2b(np.ascontiguousarray(image), digest_size=16).hexdigest()
        return ("content", image.shape, image.dtype.str, digest, image_format)


def _layout(image: np.ndarray) -> tuple:
    return (image.__array_interface__["data"][0], image.shape, image.strides, image.dtype.str)


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    return image


# ----------------------------------------------------------------------------- segmenter


class SamSegmenter:
    """SAM with one cached image embedding, shared safely between threads (one lock).

    Every method that takes an image first makes it current (free when it already is), so
    point refinement, proposals and entity tokens for one frame cost one encoder pass.
    """

    feature_source = "sam_image_embedding"

    def __init__(self, sam: Sam, device: str = "cpu") -> None:
        self.device = str(device)
        self.sam = sam.to(self.device).eval()
        self.predictor = CachingPredictor(self.sam)
        self._lock = threading.RLock()

    @property
    def embedding_passes(self) -> int:
        """Image-encoder runs so far (for benchmarks and tests)."""
        return self.predictor.encoder_passes

    @property
    def img_size(self) -> int:
        return int(self.sam.image_encoder.img_size)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the segmenter across several calls of this thread.

        Each call takes the lock on its own, so between two calls another thread (the proposal
        node in the same process) may make its frame current, and the next call encodes ours
        again and waits for that thread's whole automatic-mask run each time.
        """
        with self._lock:
            yield

    def set_image(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make `image` (HxWx3 uint8 RGB) current; free if its key (or content hash) is current."""
        with self._lock:
            self.predictor.set_image(image, key=key)

    def segment_point(
        self,
        image: np.ndarray | None,
        point_xy: tuple[float, float],
        choice: str | int = "iou",
        key: Hashable | None = None,
    ) -> tuple[np.ndarray, float]:
        """Mask for one foreground point (x, y) in image pixels: (bool HxW, SAM's predicted IoU).

        SAM returns three candidate masks, unsorted; `choice="iou"` keeps the one with the highest
        predicted IoU, an int keeps a fixed index (the reference code keeps index 2).
        `image=None` uses the current image.
        """
        return self.segment_points(image, [point_xy], choice, key)[0]

    def segment_points(
        self,
        image: np.ndarray | None,
        points_xy: Sequence[tuple[float, float]],
        choice: str | int = "iou",
        key: Hashable | None = None,
    ) -> list[tuple[np.ndarray, float]]:
        """`segment_point` for each point, one prompt each, decoded together: one mask-decoder
        pass for a response's phrases instead of one per phrase (bench: 63 -> 40 ms for six).
        Batches are capped so the candidates' full-size masks stay under BATCH_MASK_BYTES."""
        if not (choice == "iou" or (isinstance(choice, int) and 0 <= choice < 3)):
            raise ValueError(f"choice must be 'iou' or 0, 1, 2; got {choice!r}")
        points = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
        with self._lock:
            if image is not None:
                self.predictor.set_image(image, key=key)
            elif not self.predictor.is_image_set:
                raise RuntimeError("segment_point(image=None) needs set_image first")
            predictor = self.predictor
            height, width = predictor.original_size
            per_batch = max(1, BATCH_MASK_BYTES // (3 * height * width))
            results = []
            for start in range(0, len(points), per_batch):
                batch = points[start:start + per_batch]
                coords = predictor.transform.apply_coords(batch[:, None, :], predictor.original_size)
                with torch.no_grad():
                    masks, scores, _ = predictor.predict_torch(
                        torch.as_tensor(coords, dtype=torch.float, device=predictor.device),
                        torch.ones((len(batch), 1), dtype=torch.int, device=predictor.device),
                        multimask_output=True,
                    )
                rows = torch.arange(len(batch), device=scores.device)
                index = scores.argmax(dim=1) if choice == "iou" else torch.full_like(rows, choice)
                chosen = masks[rows, index].cpu().numpy().astype(bool)
                chosen_scores = scores[rows, index].float().cpu().numpy()
                results += [(chosen[i], float(chosen_scores[i])) for i in range(len(batch))]
        return results

    def propose(
        self, image: np.ndarray, key: Hashable | None = None, **amg_params: Any
    ) -> list[Proposal]:
        """Entity proposals for the whole image from SAM's automatic mask generator.

        The generator runs on this segmenter's cached embedding (with crop_n_layers=0 it costs no
        encoder pass after set_image; extra crop layers cost one pass per crop). Proposal ids are
        0..N-1 in the generator's order; score = predicted IoU; feature = entity token.
        Parameters: see AMG_DEFAULTS.
        """
        unknown = set(amg_params) - set(AMG_DEFAULTS)
        if unknown:
            raise TypeError(
                f"unknown mask-generator parameters {sorted(unknown)}; "
                f"allowed: {sorted(AMG_DEFAULTS)}"
            )
        params = {**AMG_DEFAULTS, **amg_params}
        image = _check_image(image)
        with self._lock:
            self.predictor.set_image(image, key=key)
            generator = SamAutomaticMaskGenerator(self.sam, output_mode="binary_mask", **params)
            generator.predictor = self.predictor
            state = self.predictor.snapshot()
            try:
                with self.predictor.aliased(image):
                    records = generator.generate(image)
            finally:
                self.predictor.restore(state)
            masks = [np.asarray(r["segmentation"], dtype=bool) for r in records]
            tokens = self._entity_tokens(masks)
        return [
            Proposal(
                id=i,
                mask=masks[i],
                score=float(r["predicted_iou"]),
                stability=float(r["stability_score"]),
                feature=tokens[i],
            )
            for i, r in enumerate(records)
        ]

    def entity_tokens(self, masks: list[np.ndarray]) -> np.ndarray:
        """[N, C] entity tokens: each mask's area-weighted mean of SAM's image embedding.

        The map is SAM's image embedding (image-encoder neck output, C=256 for released models, a
        (img_size/16)^2 grid) of the current image. Each mask (original HxW) is resized like the
        image was (longest side to img_size), padded bottom/right to img_size, and area-pooled to
        the grid, so a cell's weight is the fraction of it the mask covers. Empty masks get zeros.
        """
        with self._lock:
            return self._entity_tokens(masks)

    def _entity_tokens(self, masks: list[np.ndarray]) -> np.ndarray:
        if not self.predictor.is_image_set:
            raise RuntimeError("entity_tokens needs set_image first")
        features = self.predictor.get_image_embedding()[0]  # [C, gh, gw]
        channels, gh, gw = features.shape
        if not masks:
            return np.zeros((0, channels), dtype=np.float32)
        weights = np.stack(
            [
                mask_grid_weights(
                    m,
                    tuple(self.predictor.original_size),
                    tuple(self.predictor.input_size),
                    self.img_size,
                    (gh, gw),
                )
                for m in masks
            ]
        ).reshape(len(masks), gh * gw)
        flat = features.reshape(channels, gh * gw).float().cpu().numpy()
        totals = weights.sum(axis=1, keepdims=True)
        pooled = weights @ flat.T
        return np.divide(pooled, totals, out=np.zeros_like(pooled), where=totals > 0).astype(
            np.float32
        )


def mask_grid_weights(
    mask: np.ndarray,
    original_size: tuple[int, int],
    input_size: tuple[int, int],
    img_size: int,
    grid: tuple[int, int],
) -> np.ndarray:
    """Fraction of each embedding cell covered by `mask`, after SAM's resize-and-pad."""
    import cv2

    mask = np.asarray(mask)
    if mask.shape != tuple(original_size):
        raise ValueError(
            f"mask shape {mask.shape} differs from the current image's {tuple(original_size)}"
        )
    in_h, in_w = input_size
    canvas = np.zeros((img_size, img_size), dtype=np.float32)
    canvas[:in_h, :in_w] = cv2.resize(
        mask.astype(np.float32), (in_w, in_h), interpolation=cv2.INTER_AREA
    )
    gh, gw = grid
    return canvas.reshape(gh, img_size // gh, gw, img_size // gw).mean(axis=(1, 3))
