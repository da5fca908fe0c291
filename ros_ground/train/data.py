"""Training data from the simulator: deterministic seed ranges, an optional on-disk cache, and the
two views of a scene the two models may see.

* `text_record(scene)` is everything the LMM is trained on besides the image: the description,
  question/answer pairs, referring expressions and object *names*. It never reads a mask, box,
  point, depth or position: the LMM gets no grounding supervision.
* `label_map(scene)` is what the SAM model is trained on: one segment id per pixel (objects, the
  table, the empty background), from the simulator's masks.

Scenes are rendered from their seeds (`generate_scene(seed, ranges=...)`); the cache only memoises
renders so two training runs do not pay for them twice. Training uses seeds >= TRAIN_SEED_START;
evaluation uses seeds below EVAL_SEED_LIMIT, so the two never overlap.

Scene sets (`TRAIN_SCENE_SETS`): "randomised" (the default) draws every scene's camera, image size,
light, table and object looks from `sim.ranges.TRAINING_RANGES`; "classic" is the fixed 320x240
setting the first models were trained on; "mixed" takes even seeds from "classic" and odd ones from
"randomised" (fine-tuning a classic model off its setting without forgetting it). Every frame is
stored resized to WIDTH x HEIGHT (area interpolation for the image, nearest for the labels): the
LMM's processor squash-resizes any frame to its square input anyway, and SAM's resizes the longest
side to 320, so only frames of another aspect than 4:3 reach SAM slightly stretched (at most
1.5 / 1.33, about 12 %).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

TRAIN_SEED_START = 100_000
EVAL_SEED_LIMIT = 10_000  # held-out evaluation seeds are 0 .. EVAL_SEED_LIMIT-1
WIDTH, HEIGHT = 320, 240  # stored frame size
TRAIN_SCENE_SETS = ("randomised", "classic", "mixed")
DEFAULT_SCENE_SET = "randomised"
SHARD = 250  # scenes per cache shard
BACKGROUND, TABLE, FIRST_OBJECT = 0, 1, 2  # label-map ids; object k has id FIRST_OBJECT + k
FAR_DEPTH = 4.99  # depth at or beyond this is empty background (the renderer's far plane is 5 m)


def default_cache_dir() -> Path:
    """`<repo>/.cache/sim_data` (or $ROS_GROUND_CACHE/sim_data); never committed."""
    env = os.environ.get("ROS_GROUND_CACHE")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / ".cache"
    return root / "sim_data"


def scene_ranges(scene_set: str):
    """The ranges (sim.ranges) a training scene set draws from."""
    from ros_ground.sim.ranges import CLASSIC_RANGES, TRAINING_RANGES

    if scene_set not in TRAIN_SCENE_SETS:
        raise ValueError(f"training scene set must be one of {TRAIN_SCENE_SETS}, got {scene_set!r}")
    return CLASSIC_RANGES if scene_set == "classic" else TRAINING_RANGES  # mixed: their union


def check_eval_seeds(seed: int, scenes: int) -> None:
    """ValueError unless seeds seed .. seed+scenes-1 are held-out evaluation seeds
    (0 .. EVAL_SEED_LIMIT-1), so no evaluation scores a scene a model was trained on. Of those,
    5000..5999 are for tuning settings and 0..4999 for reporting (docs/MEASUREMENTS.md)."""
    if scenes < 1:
        raise ValueError(f"evaluation needs at least one scene, got scenes={scenes}")
    if seed < 0 or seed + scenes > EVAL_SEED_LIMIT:
        raise ValueError(f"evaluation seeds must lie in 0..{EVAL_SEED_LIMIT - 1} (training uses "
                         f">= {TRAIN_SEED_START}); got seeds {seed}..{seed + scenes - 1}")


def check_train_seeds(start: int, count: int) -> None:
    """ValueError unless seeds start .. start+count-1 are training seeds (>= TRAIN_SEED_START)."""
    if count < 1:
        raise ValueError(f"training needs at least one scene, got scenes={count}")
    if start < TRAIN_SEED_START:
        raise ValueError(f"training seeds must start at >= {TRAIN_SEED_START} (evaluation uses "
                         f"0..{EVAL_SEED_LIMIT - 1}); got start={start} count={count}")


# --------------------------------------------------------------------------- the two views

def text_record(scene) -> dict:
    """The text-only view of a scene for LMM training.

    Reads the simulator's texts and the objects' names only; no mask, bbox, position or depth is
    touched (tests/test_train.py checks this with objects whose geometry raises on access).
    """
    return {
        "seed": int(scene.seed),
        "description": str(scene.description),
        "questions": [[str(q), str(a)] for q, a in scene.questions],
        "referring": [[str(expr), int(i)] for expr, i in scene.referring],
        "names": [str(obj.name) for obj in scene.objects],
    }


def label_map(scene) -> np.ndarray:
    """uint8 HxW segment ids for SAM training: 0 background, 1 table, 2+k object k.

    Table = everything the camera hits that is not a listed object (objects too hidden to be
    listed count as table: at most a few dozen pixels).
    """
    labels = np.where(scene.depth < FAR_DEPTH, TABLE, BACKGROUND).astype(np.uint8)
    for k, obj in enumerate(scene.objects):
        labels[np.asarray(obj.mask, dtype=bool)] = FIRST_OBJECT + k
    return labels


# --------------------------------------------------------------------------- cache

def training_scene(seed: int, scene_set: str = DEFAULT_SCENE_SET):
    """The scene of `seed` in training set `scene_set` (TRAIN_SCENE_SETS): "classic" is the
    evaluation's "in" set at WIDTH x HEIGHT, "randomised" draws its size from TRAINING_RANGES,
    "mixed" is "classic" for even seeds and "randomised" for odd ones. ValueError for another
    set."""
    from ros_ground.sim.scene import scene_in_set

    scene_ranges(scene_set)  # the error names the training sets
    if scene_set == "mixed":
        scene_set = "classic" if seed % 2 == 0 else "randomised"
    return scene_in_set(seed, "in" if scene_set == "classic" else scene_set, WIDTH, HEIGHT)


def _render(seed: int, scene_set: str = DEFAULT_SCENE_SET) -> tuple[np.ndarray, np.ndarray, dict]:
    """(rgb HxWx3, labels HxW, text record) of one training scene, at the stored WIDTH x HEIGHT."""
    import cv2

    scene = training_scene(seed, scene_set)
    rgb, labels = scene.rgb, label_map(scene)
    if rgb.shape[:2] != (HEIGHT, WIDTH):
        shrink = scene.width > WIDTH
        rgb = cv2.resize(rgb, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        labels = cv2.resize(labels, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    return rgb, labels, text_record(scene)


def _shard_paths(directory: Path, start: int, scene_set: str = DEFAULT_SCENE_SET) -> dict[str, Path]:
    prefix = "" if scene_set == "classic" else f"{scene_set}_"  # classic shards keep their names
    return {"rgb": directory / f"{prefix}rgb_{start}.npy",
            "labels": directory / f"{prefix}labels_{start}.npy",
            "texts": directory / f"{prefix}texts_{start}.json"}


def _write_shard(args: tuple[str, int, int, str]) -> int:
    directory, start, count, scene_set = args
    directory = Path(directory)
    paths = _shard_paths(directory, start, scene_set)
    if paths["texts"].is_file():
        return count
    import torch

    torch.set_num_threads(1)
    rgb = np.zeros((count, HEIGHT, WIDTH, 3), dtype=np.uint8)
    labels = np.zeros((count, HEIGHT, WIDTH), dtype=np.uint8)
    texts = []
    for i in range(count):
        rgb[i], labels[i], record = _render(start + i, scene_set)
        texts.append(record)
    np.save(paths["rgb"], rgb)
    np.save(paths["labels"], labels)
    tmp = paths["texts"].with_suffix(".tmp")
    tmp.write_text(json.dumps(texts))
    tmp.replace(paths["texts"])  # written last: a shard with texts is complete
    return count


def build_cache(start: int, count: int, directory: Path | None = None, workers: int = 1,
                progress: bool | None = None, scene_set: str = DEFAULT_SCENE_SET) -> Path:
    """Render seeds start .. start+count-1 of `scene_set` into `directory` (resumable shard by
    shard)."""
    check_train_seeds(start, count)
    scene_ranges(scene_set)  # a clear error before any work
    directory = Path(directory or default_cache_dir())
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory.parent / ".gitignore"
    if not marker.exists():
        marker.write_text("*\n")  # the cache is never committed
    jobs = [(str(directory), s, min(SHARD, start + count - s), scene_set)
            for s in range(start, start + count, SHARD)]
    bar = tqdm(total=count, desc="render scenes", unit="scene",
               disable=None if progress is None else not progress)
    t0 = time.perf_counter()
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for n in pool.imap_unordered(_write_shard, jobs):
                bar.update(n)
    else:
        for job in jobs:
            bar.update(_write_shard(job))
    bar.close()
    meta = {"seed_start": start, "count": count, "width": WIDTH, "height": HEIGHT, "scene_set": scene_set,
            "shard": SHARD, "render_seconds_last_run": round(time.perf_counter() - t0, 1)}
    (directory / f"meta_{scene_set}_{start}_{count}.json").write_text(json.dumps(meta, indent=1))
    return directory


@dataclass
class SceneStore:
    """Scenes seed_start .. seed_start+count-1 of `scene_set`: from the cache where present, else
    rendered.

    `rgb(i)`, `texts(i)` and `labels(i)` index scenes 0..count-1 (seed = seed_start + i); every
    frame is WIDTH x HEIGHT.
    """

    seed_start: int
    count: int
    directory: Path | None = None

    memo_size: int = 64  # on-the-fly renders kept in memory (most recent)
    scene_set: str = DEFAULT_SCENE_SET

    def __post_init__(self) -> None:
        scene_ranges(self.scene_set)
        self._shards: dict[int, dict] = {}
        self._memo: dict[int, tuple] = {}
        if self.directory is not None:
            self.directory = Path(self.directory)

    def _rendered(self, i: int) -> tuple:
        seed = self.seed(i)
        if seed not in self._memo:
            if len(self._memo) >= self.memo_size:
                self._memo.pop(next(iter(self._memo)))
            self._memo[seed] = _render(seed, self.scene_set)
        return self._memo[seed]

    def __len__(self) -> int:
        return self.count

    def seed(self, i: int) -> int:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.seed_start + i

    def _shard(self, i: int) -> tuple[dict | None, int]:
        seed = self.seed(i)
        start = self.seed_start + ((seed - self.seed_start) // SHARD) * SHARD
        if self.directory is None:
            return None, 0
        if start not in self._shards:
            paths = _shard_paths(self.directory, start, self.scene_set)
            if paths["texts"].is_file():
                self._shards[start] = {
                    "rgb": np.load(paths["rgb"], mmap_mode="r"),
                    "labels": np.load(paths["labels"], mmap_mode="r"),
                    "texts": json.loads(paths["texts"].read_text()),
                }
            else:
                self._shards[start] = None
        shard = self._shards[start]
        return shard, seed - start

    def rgb(self, i: int) -> np.ndarray:
        shard, j = self._shard(i)
        if shard is None:
            return self._rendered(i)[0].copy()
        return np.array(shard["rgb"][j])

    def texts(self, i: int) -> dict:
        shard, j = self._shard(i)
        if shard is None:
            return self._rendered(i)[2]
        record = shard["texts"][j]
        assert record["seed"] == self.seed(i), "cache shard out of order"
        return record

    def labels(self, i: int) -> np.ndarray:
        shard, j = self._shard(i)
        if shard is None:
            return self._rendered(i)[1].copy()
        return np.array(shard["labels"][j])

    def cached(self) -> int:
        """How many of the scenes come from the cache."""
        return sum(self._shard(i)[0] is not None for i in range(0, self.count, SHARD))


# --------------------------------------------------------------------------- utilities

def epoch_orders(count: int, seed: int) -> Iterator[np.ndarray]:
    """An endless stream of permutations of range(count), deterministic in `seed`."""
    rng = np.random.default_rng([seed, 7])
    while True:
        yield rng.permutation(count)


def batches(count: int, batch_size: int, seed: int) -> Iterator[list[int]]:
    """Endless deterministic batches of scene indices (every scene once per epoch)."""
    pending: list[int] = []
    for order in epoch_orders(count, seed):
        pending.extend(int(i) for i in order)
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
