"""The process-wide SAM cache: one SamSegmenter per (spec, checkpoint, device).

Nodes composed into one process (nodes/container.py) get the same model and therefore the same
cached image embedding: the grounding node reads the frame the mask-proposal node already encoded.
"""

from __future__ import annotations

import threading

from ros_ground.sam.load import load_sam
from ros_ground.sam.segmenter import SamSegmenter

_SHARED: dict[tuple, SamSegmenter] = {}
_SHARED_LOCK = threading.Lock()


def get_shared_sam(spec: str, checkpoint: str | None = None, device: str = "cpu") -> SamSegmenter:
    """`load_sam(spec, checkpoint, device)`, loaded once per process and then shared.

    A failed load is not cached: the SamLoadError reaches every caller that asks again.
    """
    key = (spec, checkpoint, str(device))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_sam(spec, checkpoint, device)
        return _SHARED[key]
