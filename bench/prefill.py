"""Prefill with the prompt rows' capture vs a plain prefill (issue 22's cost target).

To ground the command itself, `LMMAdapter.generate` reads during the prefill the image
attention of the prompt's own text tokens (`AttentionCapture(image_positions,
prompt_positions)`, ros_ground/lmm/attention.py). Here one prefill of an LMM (the default one:
config/sim.yaml's model) on a command prompt, as generation's first step runs it (vision tower,
projector, the text model over the whole prompt into a fresh dynamic cache, logits of the last
position only), in three variants:

- `plain`: the text model's stock SDPA attention, no capture;
- `capture`: the capture attention with the last row only (what every generation pays);
- `capture_prompt_rows`: the capture with the prompt's own text rows as well, the maps read
  out (what `LMMAdapter.generate` runs).

Repetitions run every variant once, the order rotated, so drift hits all alike; the headline
`prefill_capture_over_plain` is the ratio of the medians of process CPU time (less disturbed by
other processes than wall time, shown beside), with the median of per-repetition ratios as a
check, and an in-run attribution: the time inside `AttentionCapture._add_prompt_rows` over the
rest of the same run.
"""

from __future__ import annotations

import time

import torch

from bench.attention import CaptureTimer
from bench.common import log, median
from bench.models import set_variant

PREFILL_VARIANTS = ("plain", "capture", "capture_prompt_rows")
PREFILL_PROMPT = "Pick up the red mug left of the tray."


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prefill_once(lmm, inputs: dict, image_positions: torch.Tensor, rows: torch.Tensor,
                 variant: str) -> tuple[float, float, float, int]:
    """One prefill in `variant`: (wall s, process CPU s, s inside _add_prompt_rows, the next
    token)."""
    from transformers import DynamicCache

    from ros_ground.lmm.attention import AttentionCapture

    set_variant(lmm.model, "plain" if variant == "plain" else "capture")
    timer = CaptureTimer("_add_prompt_rows")
    _sync(lmm.device)
    c0, t0 = time.process_time(), time.perf_counter()
    with torch.no_grad(), timer:
        if variant == "plain":
            out = lmm.model(**inputs, past_key_values=DynamicCache(), use_cache=True,
                            logits_to_keep=1)
        else:
            prompt_rows = rows if variant == "capture_prompt_rows" else None
            with AttentionCapture(image_positions, prompt_rows) as capture:
                out = lmm.model(**inputs, past_key_values=DynamicCache(), use_cache=True,
                                logits_to_keep=1)
                capture.maps()
                if prompt_rows is not None:
                    capture.prompt_maps()
        token = int(out.logits[0, -1].argmax())
    _sync(lmm.device)
    return time.perf_counter() - t0, time.process_time() - c0, timer.seconds, token


def prefill_rates(lmm, image, prompt: str = PREFILL_PROMPT, reps: int = 30,
                  warmup: int = 2) -> dict:
    """The three prefill variants of `lmm` (an LMMAdapter) on `image` + `prompt`, interleaved;
    ratios over plain (see the module docstring)."""
    from ros_ground.lmm.attention import CAPTURE_IMPLEMENTATION

    inputs, layout, _ = lmm.prepare(image, prompt)
    own = lmm.prompt_tokens(prompt, inputs["input_ids"])
    if not own.positions:
        raise RuntimeError(f"{lmm.name}: no prompt-token positions for {prompt!r}")
    rows = torch.tensor(own.positions, dtype=torch.long)
    positions = layout.positions
    wall = {v: [] for v in PREFILL_VARIANTS}
    cpu = {v: [] for v in PREFILL_VARIANTS}
    rows_share, tokens = [], {}
    log(f"prefill: {lmm.name}, {int(inputs['input_ids'].shape[1])} tokens "
        f"({positions.numel()} image, {rows.numel()} prompt rows), {reps} reps")
    try:
        for _ in range(warmup):
            for v in PREFILL_VARIANTS:
                prefill_once(lmm, inputs, positions, rows, v)
        for rep in range(reps):
            k = rep % len(PREFILL_VARIANTS)
            for v in PREFILL_VARIANTS[k:] + PREFILL_VARIANTS[:k]:
                seconds, cpu_s, in_rows, tokens[v] = prefill_once(lmm, inputs, positions, rows, v)
                wall[v].append(seconds)
                cpu[v].append(cpu_s)
                if v == "capture_prompt_rows":
                    rows_share.append(in_rows / max(1e-9, seconds - in_rows))
    finally:
        lmm.model.set_attn_implementation({"text_config": CAPTURE_IMPLEMENTATION})
    out = {
        "model": lmm.name,
        "prompt": prompt,
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "image_tokens": int(positions.numel()),
        "prompt_rows": int(rows.numel()),
        "reps": reps,
        "ms": {v: 1e3 * median(t) for v, t in wall.items()},
        "cpu_ms": {v: 1e3 * median(t) for v, t in cpu.items()},
        "same_next_token": len(set(tokens.values())) == 1,
        "prompt_rows_share": median(rows_share),
    }
    for v in PREFILL_VARIANTS[1:]:
        out[f"{v}_over_plain"] = median(cpu[v]) / median(cpu["plain"])
        out[f"{v}_over_plain_wall"] = median(wall[v]) / median(wall["plain"])
        out[f"{v}_over_plain_per_rep_median"] = median(
            [a / b for a, b in zip(cpu[v], cpu["plain"])])
    out["prefill_capture_over_plain"] = out["capture_prompt_rows_over_plain"]
    return out
