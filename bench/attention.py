"""Measurement 1: attention-capture overhead and eager output_attentions overhead.

Each repetition runs every variant once, in a rotated order, on the same model and inputs, so
the machine's drift and noise hit all variants alike; ratios are taken of the medians (of
process CPU time on the CPU, of wall time on a GPU; the other clock is reported beside) and,
as a check, the median of the per-repetition ratios. The time inside the capture's own work is
also attributed within each capture run. Peak memory is measured in a subprocess
(`python -m bench.attention --memprobe`) with glibc's mmap threshold fixed so freed tensors go
back to the OS, resetting VmHWM before each variant.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

from bench.common import ROOT, log, median, peak_rss_mb, reset_peak_rss, rss_mb, subprocess_env
from bench.models import VARIANTS, build_random_llava, build_tiny, generate


class CaptureTimer:
    """Time spent inside one of the capture's methods during a run: by default its per-layer
    work (AttentionCapture._add, which also closes the previous step's reduction: all but the
    last step's); `_add_prompt_rows` for the prefill's prompt rows. An in-run attribution of
    the capture's cost, immune to the machine's drift between runs."""

    def __init__(self, method: str = "_add"):
        from ros_ground.lmm.attention import AttentionCapture

        self.cls = AttentionCapture
        self.method = method
        self.seconds = 0.0
        self.calls = 0
        self._original = None

    def __enter__(self):
        original = self._original = getattr(self.cls, self.method)
        timer = self

        def timed(capture, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(capture, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - t0
                timer.calls += 1

        setattr(self.cls, self.method, timed)
        return self

    def __exit__(self, *exc):
        setattr(self.cls, self.method, self._original)


def time_variants(bm, variants, new_tokens: int, reps: int, warmup_tokens: int = 8,
                  warmup_variants=None) -> dict:
    """Interleaved timings: {variant: [wall seconds]}, {variant: [process CPU seconds]};
    repetition r starts with variant r mod len(variants), so no variant always runs first."""
    for v in (variants if warmup_variants is None else warmup_variants):
        generate(bm, v, warmup_tokens)
    times = {v: [] for v in variants}
    cpu = {v: [] for v in variants}
    capture_share, capture_call_ms = [], []
    tokens = {}
    for rep in range(reps):
        order = list(variants[rep % len(variants):]) + list(variants[:rep % len(variants)])
        for v in order:
            c0 = time.process_time()
            if v == "capture":
                with CaptureTimer() as ct:
                    seconds, n, _ = generate(bm, v, new_tokens)
                capture_share.append(ct.seconds / max(1e-9, seconds - ct.seconds))
                capture_call_ms.append(1e3 * ct.seconds / max(1, ct.calls))
            else:
                seconds, n, _ = generate(bm, v, new_tokens)
            cpu[v].append(time.process_time() - c0)
            times[v].append(seconds)
            tokens[v] = n
    return {"times_s": times, "cpu_s": cpu, "tokens": tokens,
            "capture_hook_over_rest": capture_share, "capture_ms_per_layer_call": capture_call_ms}


def summarise(name: str, timing: dict, new_tokens: int, build_s: float, image_tokens: int,
              headline: str = "cpu") -> dict:
    """Medians and ratios; `headline` "cpu" (process CPU time, CPU runs) or "wall" (GPU runs,
    where the host's CPU time says nothing about the device)."""
    times, cpu = timing["times_s"], timing.get("cpu_s") or timing["times_s"]
    med = {v: median(t) for v, t in times.items()}
    med_cpu = {v: median(t) for v, t in cpu.items()}
    out = {
        "model": name,
        "new_tokens": new_tokens,
        "image_tokens": image_tokens,
        "reps": len(times["plain"]),
        "build_s": build_s,
        "median_s": med,
        "median_cpu_s": med_cpu,
        "ms_per_token": {v: 1e3 * m / new_tokens for v, m in med.items()},
        "tokens_generated": timing["tokens"],
        "capture_hook_over_rest": median(timing.get("capture_hook_over_rest") or []),
        "capture_ms_per_layer_call": median(timing.get("capture_ms_per_layer_call") or []),
    }
    for v in times:
        if v == "plain":
            continue
        out[f"{v}_over_plain_cpu"] = med_cpu[v] / med_cpu["plain"]
        out[f"{v}_over_plain_cpu_per_rep_median"] = median(
            [a / b for a, b in zip(cpu[v], cpu["plain"])])
        out[f"{v}_over_plain_wall"] = med[v] / med["plain"]
        # headline: process CPU time on the CPU (robust to other processes on a shared
        # machine), wall time on a GPU
        out[f"{v}_over_plain"] = out[f"{v}_over_plain_{headline}"]
    out["headline_clock"] = headline
    return out


def run_attention(quick: bool, memory: bool = True) -> dict:
    results = {}
    # tiny: the in-repo model, through the adapter path too
    tiny_tokens, tiny_reps = 64, (2 if quick else 10)
    log(f"attention: tiny model, {tiny_tokens} tokens x {tiny_reps} reps")
    tiny = build_tiny()
    timing = time_variants(tiny, VARIANTS + ("adapter",), tiny_tokens, tiny_reps)
    results["tiny"] = summarise("tiny", timing, tiny_tokens, tiny.build_s,
                                int(tiny.image_positions.numel()))
    del tiny
    gc.collect()

    mid_tokens, mid_reps = (8, 1) if quick else (64, 7)
    log(f"attention: mid-size LLaVA, {mid_tokens} tokens x {mid_reps} reps")
    mid = build_random_llava("mid")
    timing = time_variants(mid, VARIANTS, mid_tokens, mid_reps, warmup_tokens=2,
                           warmup_variants=("plain",))
    results["mid"] = summarise("mid", timing, mid_tokens, mid.build_s,
                               int(mid.image_positions.numel()))
    del mid
    gc.collect()

    results["peak_memory"] = None
    if memory:
        model, tokens = ("tiny", 64) if quick else ("mid", 64)
        log(f"attention: peak memory of {model} in a subprocess")
        results["peak_memory"] = memory_subprocess(model, tokens)
    return results


# -- peak memory ---------------------------------------------------------------------------------


def memory_subprocess(model: str, new_tokens: int, device: str = "cpu") -> dict | None:
    env = subprocess_env()
    env["MALLOC_MMAP_THRESHOLD_"] = "65536"  # fixed threshold: big frees return to the OS
    env["MALLOC_TRIM_THRESHOLD_"] = "131072"
    cmd = [sys.executable, "-m", "bench.attention", "--memprobe", "--model", model,
           "--tokens", str(new_tokens), "--device", device]
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        log("memory probe timed out")
        return None
    if out.returncode != 0:
        log(f"memory probe failed: {out.stderr[-2000:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def memprobe(model: str, new_tokens: int, device: str = "cpu") -> dict:
    """Peak memory of one generation per variant, this process only (run in a subprocess)."""
    import torch

    if model == "tiny":
        bm = build_tiny()
    else:
        dtype = torch.float16 if device.startswith("cuda") else torch.float32
        bm = build_random_llava(model, device=device, dtype=dtype)
    return memprobe_model(bm, new_tokens)


def memprobe_model(bm, new_tokens: int) -> dict:
    """Peak memory increase of one generation per variant over the loaded model."""
    import torch

    generate(bm, "plain", 2)  # first-call allocations (thread pools, kernels) out of the way
    result = {"model": bm.name, "new_tokens": new_tokens, "device": str(bm.device),
              "model_rss_mb": rss_mb(), "method": None, "variants": {}}
    for variant in VARIANTS:
        gc.collect()
        if bm.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(bm.device)
            base = torch.cuda.memory_allocated(bm.device) / 2**20
            _, n, extra = generate(bm, variant, new_tokens)
            peak = torch.cuda.max_memory_allocated(bm.device) / 2**20
            result["method"] = "torch.cuda.max_memory_allocated"
        else:
            reset_peak_rss()
            base = rss_mb()
            _, n, extra = generate(bm, variant, new_tokens)
            peak = peak_rss_mb()
            result["method"] = "VmHWM after clear_refs, MALLOC_MMAP_THRESHOLD_=64k"
        result["variants"][variant] = {"baseline_mb": base, "peak_mb": peak,
                                       "peak_increase_mb": peak - base, "tokens": n}
        del extra
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--memprobe", action="store_true")
    parser.add_argument("--model", default="mid")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.memprobe:
        t0 = time.perf_counter()
        result = memprobe(args.model, args.tokens, args.device)
        result["probe_s"] = time.perf_counter() - t0
        print(json.dumps(result))
        return 0
    print(json.dumps(run_attention(quick=True), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
