"""SamSegmenter: SAM with one cached image embedding, shared between threads.

The image encoder is the expensive part (seconds per frame for ViT-H on a CPU), so point
prompts, mask proposals and entity tokens for one frame all read one embedding. The cache is
`CachingPredictor`, a segment-anything `SamPredictor` that knows whose embedding it holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from ros_ground.ahead import with_threads, worker
from ros_ground.results import Proposal
from ros_ground.sam.prefetch import EmbeddingJob
from ros_ground.sam.proposals import mask_proposals, proposal_settings
from ros_ground.sam.tokens import entity_tokens
from ros_ground.sam.windows import point_windows, reaches_inner_edge, window_size

# segment_points decodes prompts in batches whose three full-size candidate masks stay under this
BATCH_MASK_BYTES = 64 << 20


def check_image(image) -> np.ndarray:
    """`image` as an array; raises ValueError unless it is a non-empty HxWx3 uint8 (RGB)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image.shape} {image.dtype}")
    return image


class _ResizeLongestSide(ResizeLongestSide):
    """SAM's resize with no side rounded to zero pixels (a 1x4096 line would become 0x1024)."""

    @staticmethod
    def get_preprocess_shape(oldh: int, oldw: int, long_side_length: int) -> tuple[int, int]:
        newh, neww = ResizeLongestSide.get_preprocess_shape(oldh, oldw, long_side_length)
        return max(newh, 1), max(neww, 1)


def cache_key_of(image: np.ndarray, image_format: str = "RGB", key: Hashable | None = None):
    """What names `image`'s embedding: the caller's `key` (trusted: a camera frame's stamp) or,
    without one, a hash of its pixels."""
    if key is not None:
        return ("key", key, image_format)
    digest = hashlib.blake2b(np.ascontiguousarray(image), digest_size=16).hexdigest()
    return ("content", image.shape, image.dtype.str, digest, image_format)


class CachingPredictor(SamPredictor):
    """SamPredictor that remembers whose embedding it holds and counts image-encoder passes.

    `set_image` of the image it already holds is free. The image is named by the caller's `key`
    (trusted: a camera frame's stamp) or, without one, by a hash of its pixels.
    """

    def __init__(self, sam_model: Sam) -> None:
        self.image_key: Hashable | None = None
        self.encoder_passes = 0
        super().__init__(sam_model)
        self.transform = _ResizeLongestSide(sam_model.image_encoder.img_size)

    def set_image(
        self, image: np.ndarray, image_format: str = "RGB", key: Hashable | None = None
    ) -> None:
        image = check_image(image)
        cache_key = cache_key_of(image, image_format, key)
        if self.is_image_set and cache_key == self.image_key:
            return
        super().set_image(image, image_format)
        self.image_key = cache_key

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
        self.encoder_passes += 1
        super().set_torch_image(transformed_image, original_image_size)

    def reset_image(self) -> None:
        super().reset_image()
        self.image_key = None


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


def _decode_points(predictor: SamPredictor, points: np.ndarray,
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


class SamSegmenter:
    """SAM with one cached image embedding, shared safely between threads (one lock).

    Every method that takes an image first makes it current (free when it already is), so
    point prompts, mask proposals and entity tokens for one frame cost one encoder pass.
    """

    feature_source = "sam_image_embedding"

    def __init__(self, sam: Sam, device: str = "cpu") -> None:
        self.device = str(device)
        self.sam = sam.to(self.device).eval()
        self.predictor = CachingPredictor(self.sam)
        # crops of mask proposals (crop_n_layers > 0, proposal_zoom) are encoded here, never
        # over the frame's
        self._crop_predictor = CachingPredictor(self.sam)
        self._lock = threading.RLock()
        # `prefetched` encodes frames here, on a worker thread, without taking _lock
        self._prefetch_predictor = CachingPredictor(self.sam)
        self._prefetch_lock = threading.Lock()  # one worker at a time on that predictor
        self._jobs: dict[Hashable, EmbeddingJob] = {}  # by cache key, while their request runs
        self._jobs_lock = threading.Lock()
        # (frame cache key, {window box: embedding}) of segment_points(zoom=True)'s last frame
        self._windows: tuple[Hashable, dict] = (None, {})

    @property
    def embedding_passes(self) -> int:
        """Image-encoder runs so far, crops of mask proposals included (benchmarks, tests)."""
        return (self.predictor.encoder_passes + self._crop_predictor.encoder_passes
                + self._prefetch_predictor.encoder_passes)

    @property
    def img_size(self) -> int:
        """Side of the square the image encoder reads (1024 for released models)."""
        return int(self.sam.image_encoder.img_size)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the segmenter across several calls of this thread.

        Each call takes the lock on its own, so between two calls another thread (the mask-proposal
        node in the same process) may make its frame current, and the next call encodes ours
        again and waits for that thread's whole mask-proposal run each time.
        """
        with self._lock:
            yield

    def set_image(self, image: np.ndarray, key: Hashable | None = None) -> None:
        """Make `image` (HxWx3 uint8 RGB) current; free if its key (or content hash) is current.

        Raises ValueError for anything but an HxWx3 uint8 image.
        """
        with self._lock:
            self._make_current(image, key)

    @contextlib.contextmanager
    def prefetched(self, image: np.ndarray, key: Hashable | None = None,
                   enabled: bool = True, threads: int = 1) -> Iterator[None]:
        """Within the block, `image`'s embedding is computed on the ahead worker thread
        (prefetch.py; `ros_ground.ahead.worker`) with `threads` torch threads; the first call
        that makes `image` current waits for it (`wait_prefetch`) and installs it instead of
        encoding again. Nothing starts when disabled or `image` is already current.

        On leaving, the job is canceled if it has not started, else it has ended (its error, if
        no call waited for it, is dropped: the embedding was not needed) and the embedding is
        forgotten unless it was made current.
        """
        if not enabled:
            yield
            return
        image = check_image(image)
        cache_key = cache_key_of(image, "RGB", key)
        with self._jobs_lock:
            # a racy look at the current frame: at worst a frame is encoded twice
            skip = cache_key in self._jobs or (
                self.predictor.is_image_set and self.predictor.image_key == cache_key)
            if not skip:
                job = EmbeddingJob(cache_key, with_threads(lambda: self._encode_ahead(image, key), threads))
                self._jobs[cache_key] = job
        if skip:
            yield
            return
        try:
            job.start(worker())
            yield
        finally:
            job.join()
            with self._jobs_lock:
                self._jobs.pop(cache_key, None)

    def wait_prefetch(self, image: np.ndarray, key: Hashable | None = None) -> float:
        """Milliseconds spent waiting for the worker `prefetched` started on `image` (0.0 when
        none); raises what the worker raised."""
        job = self._jobs.get(cache_key_of(check_image(image), "RGB", key))
        if job is None or job.done.is_set():
            if job is not None:
                job.wait()
            return 0.0
        t0 = time.perf_counter()
        job.wait()
        return (time.perf_counter() - t0) * 1e3

    def _encode_ahead(self, image: np.ndarray, key: Hashable | None) -> tuple:
        with self._prefetch_lock:
            predictor = self._prefetch_predictor
            predictor.set_image(image, key=key)
            state = predictor.embedding()
            predictor.reset_image()
        return state

    def _make_current(self, image: np.ndarray, key: Hashable | None) -> None:
        """`predictor.set_image`, taking a prefetched embedding of `image` when there is one
        (after waiting for it). Call with _lock held."""
        cache_key = cache_key_of(image, "RGB", key)
        if self.predictor.is_image_set and self.predictor.image_key == cache_key:
            return
        job = self._jobs.get(cache_key)
        if job is not None:
            self.predictor.install(job.wait())
            return
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
        zoom: bool = False,
    ) -> list[tuple[np.ndarray, float]]:
        """`segment_point` for each point, one prompt each, decoded together in one mask-decoder
        pass (batches capped so the candidates' full-size masks stay under BATCH_MASK_BYTES).

        zoom: in a frame larger than SAM's input (`img_size`), prompt each point on a window of
        the frame at SAM's input scale around it (windows.point_windows: one encoder pass per
        window, kept for the frame's later calls, and one decoder pass per window) instead of
        on the whole frame, shrunk. A window's mask that reaches one of its edges inside the
        frame is cut there, so that point is prompted on the whole frame instead. Masks are
        frame-sized either way. Not with `image=None` (the frame is needed for its windows).
        Raises ValueError for a bad `choice` or, with zoom, a point off the frame; RuntimeError
        for `image=None` before any image.
        """
        if not (choice == "iou" or (isinstance(choice, int) and 0 <= choice < 3)):
            raise ValueError(f"choice must be 'iou' or 0, 1, 2; got {choice!r}")
        points = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
        if zoom and image is not None and self.zooms(image):
            return self._segment_windows(image, points, choice, key)
        with self._lock:
            if image is not None:
                self._make_current(image, key)
            elif not self.predictor.is_image_set:
                raise RuntimeError("segment_point(image=None) needs set_image first")
            return _decode_points(self.predictor, points, choice)

    def zooms(self, image: np.ndarray) -> bool:
        """Whether `segment_points(image, ..., zoom=True)` prompts on windows: `image` (HxWx3
        uint8) is larger than SAM's input. Then the whole frame's embedding is computed only
        for a point whose window cuts its mask. Raises ValueError for a bad image."""
        height, width = check_image(image).shape[:2]
        return window_size(height, width, self.img_size) is not None

    def _segment_windows(self, image: np.ndarray, points: np.ndarray, choice: str | int,
                         key: Hashable | None) -> list[tuple[np.ndarray, float]]:
        """segment_points(zoom=True) on a frame larger than SAM's input."""
        height, width = image.shape[:2]
        frame_key = cache_key_of(image, "RGB", key)
        results: list = [None] * len(points)
        cut: list[int] = []
        with self._lock:
            if self._windows[0] != frame_key:  # the embeddings of one frame's windows at a time
                self._windows = (frame_key, {})
            embedded = self._windows[1]
            for box, members in point_windows(points, height, width, self.img_size, list(embedded)):
                x0, y0, w, h = box
                # on the proposals' crop predictor: the frame's own embedding stays current
                predictor = self._crop_predictor
                if box in embedded:
                    predictor.install(embedded[box])
                else:
                    predictor.set_image(np.ascontiguousarray(image[y0:y0 + h, x0:x0 + w]),
                                        key=("window", frame_key, box))
                    embedded[box] = predictor.embedding()
                shifted = points[members] - np.array([x0, y0], dtype=np.float32)
                for i, (mask, score) in zip(members, _decode_points(predictor, shifted, choice)):
                    if reaches_inner_edge(mask, box, height, width):
                        cut.append(i)
                        continue
                    full = np.zeros((height, width), dtype=bool)
                    full[y0:y0 + h, x0:x0 + w] = mask
                    results[i] = (full, score)
            if cut:
                self._make_current(image, key)
                for i, result in zip(cut, _decode_points(self.predictor, points[cut], choice)):
                    results[i] = result
        return results

    def propose(
        self, image: np.ndarray, key: Hashable | None = None, **params: Any
    ) -> list[Proposal]:
        """Mask proposals for the whole image (see `proposals.mask_proposals`), on the cached
        embedding: no encoder pass once `image` is current, plus one per crop when
        crop_n_layers > 0 or with proposal_zoom.

        Ids are 0..N-1 in the proposals' order; score = predicted IoU; stability = SAM's
        stability score; feature = entity token. Parameters: see AMG_DEFAULTS (unknown names
        raise TypeError); a bad image raises ValueError.
        """
        proposal_settings(**params)  # unknown names fail before any encoder pass
        image = check_image(image)
        with self._lock:
            self._make_current(image, key)
            data = mask_proposals(self.predictor, image, self._crop_predictor, **params)
            masks = data["masks"]
            tokens = entity_tokens(self.predictor, masks)
        return [
            Proposal(
                id=i,
                mask=masks[i],
                score=float(data["iou_preds"][i]),
                stability=float(data["stability_score"][i]),
                feature=tokens[i],
            )
            for i in range(len(masks))
        ]
