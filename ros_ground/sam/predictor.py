"""CachingPredictor: segment-anything's SamPredictor that knows whose embedding it holds, and
the point decoding SamSegmenter runs on it.

The cache key names a frame (the caller's key, or a hash of its pixels), so `set_image` of the
frame already held is free; the counters (encoder passes and their time) let the engine report
the encoder's share of a response and tests count passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Hashable, Iterator

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from ros_ground.errors import check_image

# decode_points decodes prompts in batches whose three full-size candidate masks stay under this
BATCH_MASK_BYTES = 64 << 20

# .encoder_seconds: the calling thread's time in set_image encoding (a thread's own, so the
# prefetch worker's and another node's passes on a shared model are theirs)
_THREAD = threading.local()


class _ResizeLongestSide(ResizeLongestSide):
    """SAM's resize with no side rounded to zero pixels (a 1x4096 line would become 0x1024)."""

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        """segment-anything's resized (height, width), at least 1 pixel each: a 1-pixel-tall
        panorama would otherwise resize to height 0."""
        newh, neww = ResizeLongestSide.get_preprocess_shape(oldh, oldw, long_side_length)
        return max(newh, 1), max(neww, 1)


def cache_key_of(image: np.ndarray, image_format: str = "RGB", key: Hashable | None = None):
    """What names `image`'s embedding: the caller's `key` (trusted, so it must tell pictures
    apart: a camera frame's topic, stamp and frames.pixel_fingerprint) or, without one, a hash
    of all its pixels."""
    if key is not None:
        return ("key", key, image_format)
    digest = hashlib.blake2b(np.ascontiguousarray(image), digest_size=16).hexdigest()
    return ("content", image.shape, image.dtype.str, digest, image_format)


class CachingPredictor(SamPredictor):
    """SamPredictor that remembers whose embedding it holds, counts image-encoder passes
    (`encoder_passes`) and adds the time of each `set_image` that encodes (resize, normalise,
    encoder) to the calling thread's `thread_encoder_seconds`.

    `set_image` of the image it already holds is free. The image is named by the caller's `key`
    (trusted: it must tell pictures apart, see `cache_key_of`) or, without one, by a hash of its
    pixels.
    """

    def __init__(self, sam_model: Sam) -> None:
        self.image_key: Hashable | None = None
        self.encoder_passes = 0
        super().__init__(sam_model)
        self.transform = _ResizeLongestSide(sam_model.image_encoder.img_size)

    def set_image(
        self, image: np.ndarray, image_format: str = "RGB", key: Hashable | None = None
    ) -> None:
        """SamPredictor.set_image of an HxWx3 uint8 image (InputError otherwise), skipped when
        the image named by `key` (else its pixels' hash) is the one already held."""
        image = check_image(image)
        cache_key = cache_key_of(image, image_format, key)
        if self.is_image_set and cache_key == self.image_key:
            return
        t0 = time.perf_counter()
        super().set_image(image, image_format)
        self.image_key = cache_key
        if self.features.is_cuda:  # kernels run asynchronously: wait here, not in the next decode
            torch.cuda.current_stream(self.features.device).synchronize()
        _THREAD.encoder_seconds = thread_encoder_seconds() + time.perf_counter() - t0

    def embedding(self) -> tuple:
        """The current image's embedding and sizes, for `install` on another predictor."""
        return self.image_key, self.features, self.original_size, self.input_size

    def install(self, state: tuple) -> None:
        """Make current an embedding that `embedding` of another predictor of this model gave."""
        self.reset_image()
        self.image_key, self.features, self.original_size, self.input_size = state
        self.is_image_set = True

    @torch.no_grad()
    def set_torch_image(self, transformed_image: torch.Tensor, original_image_size) -> None:
        """SamPredictor.set_torch_image (one image-encoder pass), counted in `encoder_passes`."""
        self.encoder_passes += 1
        super().set_torch_image(transformed_image, original_image_size)

    def reset_image(self) -> None:
        """Forget the held embedding and whose it was."""
        super().reset_image()
        self.image_key = None


def thread_encoder_seconds() -> float:
    """Seconds the calling thread has spent so far in CachingPredictor.set_image calls that
    encoded an image (wall time, CUDA work awaited): another thread's passes (a proposal node
    sharing the model, the prefetch worker) are not counted."""
    return getattr(_THREAD, "encoder_seconds", 0.0)


@contextlib.contextmanager
def timed_stage(timing: dict[str, float], stage: str) -> Iterator[None]:
    """Time the block as `timing[stage]` (ms) less this thread's image-encoder passes within
    it, which are added to `timing["sam_embedding"]` (ms, created at 0): a frame's, a point
    window's or a proposal crop's encoding is reported as embedding whichever stage needs it.
    Blocks nested on one `timing` would add the inner passes twice: nest on separate dicts."""
    t0, encoded = time.perf_counter(), thread_encoder_seconds()
    try:
        yield
    finally:
        encoder = thread_encoder_seconds() - encoded
        timing[stage] = (time.perf_counter() - t0 - encoder) * 1e3
        timing["sam_embedding"] = timing.get("sam_embedding", 0.0) + encoder * 1e3


def _decode_chosen(predictor: SamPredictor, coords: torch.Tensor, labels: torch.Tensor,
                   choice: str | int) -> tuple[torch.Tensor, torch.Tensor]:
    """`predictor.predict_torch(coords, labels, multimask_output=True)` keeping one candidate
    per prompt (`choice`: "iou" or an index): (bool [B, H, W] masks, [B] predicted IoUs).

    Only the kept candidate is upsampled to the image (a third of predict_torch's upsampling,
    most of a point decode's time on small models); upsampling works per mask, so the masks
    are those predict_torch gives.
    """
    model = predictor.model
    sparse, dense = model.prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    low_res, scores = model.mask_decoder(
        image_embeddings=predictor.features,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
    )
    rows = torch.arange(len(coords), device=scores.device)
    index = scores.argmax(dim=1) if choice == "iou" else torch.full_like(rows, choice)
    masks = model.postprocess_masks(low_res[rows, index][:, None], predictor.input_size,
                                    predictor.original_size)
    return masks[:, 0] > model.mask_threshold, scores[rows, index]


def decode_points(predictor: SamPredictor, points: np.ndarray,
                  choice: str | int) -> list[tuple[np.ndarray, float]]:
    """(bool HxW mask, predicted IoU) for each point prompt (float32 [N, 2], x, y) on the
    predictor's current image, in batches whose candidates stay under BATCH_MASK_BYTES."""
    height, width = predictor.original_size
    per_batch = max(1, BATCH_MASK_BYTES // (3 * height * width))
    results = []
    for start in range(0, len(points), per_batch):
        batch = points[start:start + per_batch]
        coords = predictor.transform.apply_coords(batch[:, None, :], predictor.original_size)
        with torch.no_grad():
            masks, scores = _decode_chosen(
                predictor,
                torch.as_tensor(coords, dtype=torch.float, device=predictor.device),
                torch.ones((len(batch), 1), dtype=torch.int, device=predictor.device),
                choice,
            )
        chosen = masks.cpu().numpy().astype(bool)
        chosen_scores = scores.float().cpu().numpy()
        results += [(chosen[i], float(chosen_scores[i])) for i in range(len(batch))]
    return results
