"""The process-wide SAM cache: one SamSegmenter per (spec, checkpoint, device) while it is in use.

Nodes composed into one process (nodes/container.py) get the same model and therefore the same
cached image embedding: the grounding node reads the frame the mask-proposal node already encoded.
"""

from __future__ import annotations

import threading
import weakref

from ros_ground.sam.load import load_sam
from ros_ground.sam.segmenter import SamSegmenter

# held weakly: Python's reference count is the count of users per key, so a model is freed when
# the last node holding it drops it (cleanup, a failed configure, shutdown), with no release
# call that an error path could miss
_SHARED: weakref.WeakValueDictionary[tuple, SamSegmenter] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def get_shared_sam(spec: str, checkpoint: str | None = None, device: str = "cpu") -> SamSegmenter:
    """`load_sam(spec, checkpoint, device)`, loaded once per process and shared while any caller
    still holds it; once the last reference is dropped the model is freed, and the next call
    loads it again.

    A failed load is not cached: the SamLoadError reaches every caller that asks again.
    """
    key = (spec, checkpoint, str(device))
    with _SHARED_LOCK:
        sam = _SHARED.get(key)
        if sam is None:
            sam = _SHARED[key] = load_sam(spec, checkpoint, device)
        return sam
