"""SamSegmenter: SAM with one cached image embedding, shared between threads.

The image encoder is the expensive part (seconds per frame for ViT-H on a CPU), so point
prompts, mask proposals and entity tokens for one frame all read one embedding. The cache is
`CachingPredictor` (predictor.py), a segment-anything `SamPredictor` that knows whose
embedding it holds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent import futures
from typing import Any

import numpy as np
from segment_anything.modeling import Sam

from ros_ground.ahead import with_threads, worker
from ros_ground.errors import check_image
from ros_ground.results import Proposal
from ros_ground.sam.predictor import CachingPredictor, cache_key_of, decode_points
from ros_ground.sam.proposals import mask_proposals, proposal_settings
from ros_ground.sam.tokens import entity_tokens
from ros_ground.sam.windows import point_windows, reaches_inner_edge, window_size


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
        self._jobs: dict[Hashable, futures.Future] = {}  # by cache key, while their request runs
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

        Raises errors.InputError (a ValueError) for anything but an HxWx3 uint8 image.
        """
        with self._lock:
            self._make_current(image, key)

    @contextlib.contextmanager
    def prefetched(self, image: np.ndarray, key: Hashable | None = None,
                   enabled: bool = True, threads: int = 1) -> Iterator[None]:
        """Within the block, `image`'s embedding is computed on the ahead worker thread
        (`ros_ground.ahead.worker`) with `threads` torch threads; the first call that makes
        `image` current waits for it (`wait_prefetch`) and installs it instead of encoding again.
        Nothing starts when disabled or `image` is already current. Why: the encoder then runs
        on another core while the LMM prefills and decodes (torch releases the GIL in its ops).
        The worker encodes on its own predictor, never the shared one, so it holds no lock a
        request or the proposal node waits on and nothing they do changes what it computes.

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
                job = worker().submit(with_threads(lambda: self._encode_ahead(image, key), threads))
                self._jobs[cache_key] = job
        if skip:
            yield
            return
        try:
            yield
        finally:
            if not job.cancel():  # it has started: wait for it (a torch op cannot stop)
                futures.wait([job])
            with self._jobs_lock:
                self._jobs.pop(cache_key, None)

    def wait_prefetch(self, image: np.ndarray, key: Hashable | None = None) -> float:
        """Milliseconds spent waiting for the worker `prefetched` started on `image` (0.0 when
        none); raises what the worker raised."""
        job = self._jobs.get(cache_key_of(check_image(image), "RGB", key))
        if job is None:
            return 0.0
        t0 = time.perf_counter()
        waited = not job.done()
        try:
            job.result()
        except futures.CancelledError:  # the request that started it ended first: encode anew
            return 0.0
        return (time.perf_counter() - t0) * 1e3 if waited else 0.0

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
        image = check_image(image)  # before its key: a list or None has no pixels to hash
        cache_key = cache_key_of(image, "RGB", key)
        if self.predictor.is_image_set and self.predictor.image_key == cache_key:
            return
        job = self._jobs.get(cache_key)
        if job is not None:
            try:
                self.predictor.install(job.result())
                return
            except futures.CancelledError:  # its request ended before the worker took it
                pass
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
        pass (batches capped so the candidates' full-size masks stay under
        predictor.BATCH_MASK_BYTES).

        zoom: in a frame more than windows.MIN_ZOOM times SAM's input (`img_size`), prompt each
        point on a window of the frame at SAM's input scale around it (windows.point_windows:
        one encoder pass per window, kept for the frame's later calls, and one decoder pass per
        window) instead of on the whole frame, shrunk. A window's mask that reaches one of its
        edges inside the frame is cut there, so that point is prompted on the whole frame instead. Masks are
        frame-sized either way. Not with `image=None` (the frame is needed for its windows).
        Raises ValueError for a bad `choice` or, with zoom, a point off the frame;
        errors.InputError (a ValueError) for a bad image; RuntimeError for `image=None` before
        any image.
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
            return decode_points(self.predictor, points, choice)

    def zooms(self, image: np.ndarray) -> bool:
        """Whether `segment_points(image, ..., zoom=True)` prompts on windows: `image` (HxWx3
        uint8) is more than windows.MIN_ZOOM times SAM's input. Then the whole frame's embedding
        is computed only for a point whose window cuts its mask. Raises errors.InputError (a ValueError) for a
        bad image."""
        height, width = check_image(image).shape[:2]
        return window_size(height, width, self.img_size) is not None

    def _segment_windows(self, image: np.ndarray, points: np.ndarray, choice: str | int,
                         key: Hashable | None) -> list[tuple[np.ndarray, float]]:
        """segment_points(zoom=True) on a frame more than MIN_ZOOM times SAM's input."""
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
                for i, (mask, score) in zip(members, decode_points(predictor, shifted, choice)):
                    if reaches_inner_edge(mask, box, height, width):
                        cut.append(i)
                        continue
                    full = np.zeros((height, width), dtype=bool)
                    full[y0:y0 + h, x0:x0 + w] = mask
                    results[i] = (full, score)
            if cut:
                self._make_current(image, key)
                for i, result in zip(cut, decode_points(self.predictor, points[cut], choice)):
                    results[i] = result
        return results

    def propose(
        self, image: np.ndarray, key: Hashable | None = None,
        should_stop: Callable[[], bool] | None = None, **params: Any
    ) -> list[Proposal]:
        """Mask proposals for the whole image (see `proposals.mask_proposals`), on the cached
        embedding: no encoder pass once `image` is current, plus one per crop when
        crop_n_layers > 0 or with proposal_zoom.

        Ids are 0..N-1 in the proposals' order; score = predicted IoU; stability = SAM's
        stability score; feature = entity token. Parameters: see AMG_DEFAULTS (unknown names
        raise TypeError); a bad image raises errors.InputError (a ValueError). `should_stop`
        is asked between crops and batches; True raises proposals.ProposalsStopped.
        """
        proposal_settings(**params)  # unknown names fail before any encoder pass
        image = check_image(image)
        with self._lock:
            self._make_current(image, key)
            data = mask_proposals(self.predictor, image, self._crop_predictor, should_stop,
                                  **params)
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
