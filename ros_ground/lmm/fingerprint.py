"""Which LMM a trained add-on was trained for: the sim retrieval head and region encoder.

Both are trained on the frozen sim LMM's tokens (`ros_ground.train.retrieval_head`,
`ros_ground.train.region_encoder`) and mean nothing for other weights, yet `ros-ground train
lmm` rewrites ros_ground/models/sim_lmm in place. Each add-on therefore records the sha256 of
the LMM's model.safetensors when it is saved, and is used only while that file is unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

LOG = logging.getLogger(__name__)
KEY = "lmm_sha256"  # the record's field, in head.json and in the encoder's torch file
WEIGHTS = "model.safetensors"  # what `train lmm` (save_pretrained) writes the weights to


def lmm_sha256(model_dir: str | Path | None = None) -> str | None:
    """Hex sha256 of `model_dir`/model.safetensors (default: the sim LMM's), None when it has no
    such file. Hashed once per file version (path, size, mtime): ~9 MB for the sim LMM."""
    if model_dir is None:
        from ros_ground.lmm.loading import SIM_LMM_DIR

        model_dir = SIM_LMM_DIR
    return file_sha256(Path(model_dir) / WEIGHTS)


def file_sha256(path: str | Path) -> str | None:
    """Hex sha256 of the file at `path`, None when it is no file. Hashed once per file version
    (path, size, mtime), in blocks: a vit_h checkpoint is 2.5 GB."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return _file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trained_for(recorded: str | None, expected: str | None, part: str | Path, retrain: str) -> bool:
    """Whether an add-on (`part`: its file, for the message) whose record says it was trained for
    the LMM of fingerprint `recorded` may be used with the LMM of fingerprint `expected`. A
    mismatch, or no record, logs a warning naming both and the `retrain` command, and gives
    False: weights fitted to another LMM's tokens would score or describe at random."""
    if recorded is not None and recorded == expected:
        return True
    said = f"LMM sha256 {recorded[:12]}..." if recorded else "no LMM fingerprint"
    LOG.warning("%s records %s but the sim LMM's %s has sha256 %s: it was trained for other "
                "weights, so it is not used (retrain it with %s)", part, said, WEIGHTS,
                f"{expected[:12]}..." if expected else "(none: no weights file)", retrain)
    return False
