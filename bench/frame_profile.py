"""cProfile of one grounded response (section 2's tables): the functions with the most own time,
and own time grouped by where the code lives."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections import defaultdict


def profile_frame(engine, image, key, prompt: str, top: int = 25) -> str:
    """cProfile of one grounded response: the functions with the most time of their own."""
    profiler = cProfile.Profile()
    profiler.enable()
    engine.ground(image, prompt, image_key=key)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    text = stream.getvalue()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(lines[max(0, start - 2):])


def profile_buckets(engine, image, key, prompt: str) -> dict:
    """Own time of one response grouped by where the code lives (torch, transformers, ...)."""
    profiler = cProfile.Profile()
    profiler.enable()
    engine.ground(image, prompt, image_key=key)
    profiler.disable()
    stats = pstats.Stats(profiler)
    buckets: dict[str, float] = defaultdict(float)
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        buckets[_bucket(filename, func)] += tottime * 1e3
    return dict(sorted(buckets.items(), key=lambda kv: -kv[1]))


def _bucket(filename: str, func: str) -> str:
    f = filename.replace("\\", "/")
    if filename == "~":  # C functions: name them by what they are
        name = func
        if "torch" in name or name.startswith("<method") and "Tensor" in name:
            return "torch C kernels / ops"
        return "builtins (C)"
    for key, label in (("/transformers/generation/", "transformers generate loop"),
                       ("/transformers/", "transformers (modules, masks, cache)"),
                       ("/torch/", "torch python"), ("/spacy/", "spaCy"), ("/thinc/", "spaCy"),
                       ("/segment_anything/", "segment_anything python"),
                       ("/tokenizers/", "tokenizer"), ("/ros_ground/", "ros_ground python"),
                       ("/PIL/", "image processing (PIL/numpy)"),
                       ("/numpy/", "image processing (PIL/numpy)")):
        if key in f:
            return label
    return "other python"
