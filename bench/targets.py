"""The benchmark's targets and the results' schema: what each headline number must reach, and
the keys and types `--json` promises."""

from __future__ import annotations

REQUIRED_KEYS = ("attention_overhead_ratio", "eager_overhead_ratio",
                 "overhead_fraction_outside_models", "embedding_passes_per_frame",
                 "rle_size_ratio", "mask_codec_ms", "transport_latency_ms", "stream_latency_ms",
                 "machine")

TARGETS = {
    "attention_overhead_ratio": ("<=", 1.10, "capture / plain SDPA, mid-size model, CPU"),
    "overhead_fraction_outside_models": ("<=", 0.05, "time outside model forwards, default models"),
    "embedding_passes_per_frame": ("==", 1, "SAM encoder passes per frame, composed container"),
    "rle_size_ratio": (">=", 10.0, "mono8 Images / RLE bytes, 10 phrases, 640x480"),
    "mask_codec_ms": ("<", 5.0, "RLE encode + decode of 10 masks, 640x480"),
    "stream_p99_over_p50": ("<=", 1.5, "streaming response latency p99 / p50"),
    "stream_max_requests_waiting": ("<=", 1, "no queue growth: requests waiting at a command"),
    "response_over_generation": ("<=", 1.35, "end-to-end response of the default / "
                                 "generating the same tokens alone, CPU"),
    "prefill_capture_over_plain": ("<=", 1.05, "prefill with the capture of the prompt's rows "
                                   "(command grounding) / plain SDPA prefill, default LMM, CPU"),
    "stream_rss_growth_mb": ("<=", 20.0, "no memory growth: node RSS growth over the run "
                             "(bound chosen here; trend in section 5)"),
}


def validate(results: dict) -> list[str]:
    """Schema problems of a results dict (empty when it matches what `--json` promises)."""
    errors = []
    number = (int, float)

    def is_num(v):
        return isinstance(v, number) and not isinstance(v, bool)

    for key in REQUIRED_KEYS:
        if key not in results:
            errors.append(f"missing key {key!r}")
    for key in ("attention_overhead_ratio", "eager_overhead_ratio",
                "overhead_fraction_outside_models", "rle_size_ratio", "mask_codec_ms"):
        if key in results and not is_num(results[key]):
            errors.append(f"{key} is not a number: {results[key]!r}")
    # measured since issue 22: older results.json files lack it, a run without the latency
    # section has it null
    prefill = results.get("prefill_capture_over_plain")
    if prefill is not None and not is_num(prefill):
        errors.append(f"prefill_capture_over_plain is not a number: {prefill!r}")
    passes = results.get("embedding_passes_per_frame")
    if not (isinstance(passes, int) and not isinstance(passes, bool)):
        errors.append(f"embedding_passes_per_frame is not an int: {passes!r}")
    transport = results.get("transport_latency_ms")
    if not isinstance(transport, dict) or set(transport) != {"rle", "image"}:
        errors.append(f"transport_latency_ms must have keys rle, image: {transport!r}")
    else:
        for variant, stats in transport.items():
            if not isinstance(stats, dict) or set(stats) != {"p50", "p99"} \
                    or not all(is_num(v) for v in stats.values()):
                errors.append(f"transport_latency_ms[{variant!r}] must be {{p50, p99}} numbers")
    stream = results.get("stream_latency_ms")
    if not isinstance(stream, dict) or set(stream) != {"p50", "p99"} \
            or not all(is_num(v) for v in stream.values()):
        errors.append(f"stream_latency_ms must be {{p50, p99}} numbers: {stream!r}")
    machine = results.get("machine")
    if not isinstance(machine, dict) or not {"cpu", "usable_cpus", "ram_gb", "date_utc"} <= set(
            machine or {}):
        errors.append("machine must name cpu, usable_cpus, ram_gb and date_utc")
    return errors


def _check(op: str, value, target) -> bool | None:
    if value is None:
        return None
    return {"<=": value <= target, "<": value < target, ">=": value >= target,
            "==": value == target}[op]


def targets_table(results: dict) -> dict:
    stream = results.get("details", {}).get("stream") or {}
    values = {k: results.get(k) for k in TARGETS}
    values["stream_p99_over_p50"] = stream.get("p99_over_p50")
    values["stream_max_requests_waiting"] = stream.get("max_requests_waiting")
    values["stream_rss_growth_mb"] = stream.get("rss_growth_mb")
    return {name: {"target": f"{op} {target}", "value": values[name], "what": what,
                   "pass": _check(op, values[name], target)}
            for name, (op, target, what) in TARGETS.items()}
