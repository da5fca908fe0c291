"""`ros-ground bench [--quick] [--json]`: run the benchmark suite, write RESULTS.md + results.json.

Also runnable as `python -m bench.run [--quick] [--json] [--out DIR] [--threads N] [--gpu]
[--soak SECONDS] [--latency]`. `--gpu` measures the attention-capture overhead of a
LLaVA-1.5-7B-shaped model (random weights, fp16, 64 tokens) on CUDA, and its latency rows;
`--soak` runs only the streaming load for longer (memory trend); `--latency` runs only
section 7, latency (compiled decoding included); all three merge into the existing results.json /
RESULTS.md.

The full run writes bench/RESULTS.md and bench/results.json; `--quick` (~1.5 min of CPU, smaller
counts, the same keys) writes bench/RESULTS.quick.md and bench/results.quick.json so it never
overwrites the full numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, log, machine_info, private_ros_domain, rnd  # noqa: E402
from bench.targets import targets_table  # noqa: E402

BENCH_DIR = ROOT / "bench"
# One intra-op thread: on a shared 2-core machine a second torch thread stalls every op
# whenever another process holds a core (measured: 3-6x slower, chaotic). Override with
# --threads N or ROS_GROUND_BENCH_THREADS on an idle machine.
DEFAULT_THREADS = 1
def run_all(quick: bool, memory: bool | None = None, threads: int | None = None) -> dict:
    """Every measurement; returns the results dict (not yet written)."""
    import rclpy
    import torch

    from bench import attention, breakdown, embedding, latency, stream, transport

    t_start = time.perf_counter()
    memory = (not quick) if memory is None else memory
    threads = threads or int(os.environ.get("ROS_GROUND_BENCH_THREADS", DEFAULT_THREADS))
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the node and probe subprocesses too
    domain = private_ros_domain()
    machine = machine_info()
    machine["bench_torch_threads"] = threads
    log(f"{'quick' if quick else 'full'} run on {machine['cpu']}, ROS_DOMAIN_ID={domain}, "
        f"torch threads {threads}")
    details: dict = {}
    timings: dict = {}
    load: dict = {}

    def timed(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        before = os.getloadavg()[0]
        try:
            return fn(*args, **kwargs)
        finally:
            timings[name] = round(time.perf_counter() - t0, 1)
            load[name] = [round(before, 2), round(os.getloadavg()[0], 2)]

    details["attention"] = timed("attention", attention.run_attention, quick, memory=False)

    rclpy.init()
    node = rclpy.create_node("bench_runner")
    peer = None
    stream_proc = None
    try:
        peer = timed("peer_start", transport.Peer)
        publisher = breakdown.Publisher(node, transport.BREAKDOWN_RESPONSE_TOPIC,
                                        transport.BREAKDOWN_OVERLAY_TOPIC)
        if not publisher.wait_matched(10):
            log("breakdown: the subscriber process was not discovered; publishing anyway")
        bd = timed("breakdown", breakdown.run_breakdown, quick, publisher=publisher)
        masks = bd.pop("masks", [])
        engine = bd.pop("_engine", None)
        details["breakdown"] = bd
        if not quick:
            details["breakdown_mid_lmm"] = timed("breakdown_mid", breakdown.run_breakdown_mid,
                                                 quick, publisher=publisher)
        with tempfile.TemporaryDirectory() as tmp:
            details["transport"] = timed("transport", transport.run_transport, node, peer, quick,
                                         Path(tmp))
        if masks:  # the masks the default models produced, for the size ratio on them too
            details["transport"]["sizes_default_model_masks"] = transport.wire_sizes(masks)
        peer.close()
        peer = None

        stream_proc = stream.start_node()  # loads its models while the container test runs
        details["embedding"] = {"container": timed(
            "embedding_container", embedding.container_passes, node.context, 1 if quick else 5,
            8 if quick else None)}
        details["stream"] = timed("stream", stream.run_stream, node, quick, proc=stream_proc)
        stream_proc = None
        if engine is None:
            engine = breakdown.build_default_engine()
        details["embedding"]["saved"] = timed("embedding_saved", embedding.saved_latency, engine,
                                              5 if quick else 20)
        details["latency"] = timed("latency", latency.run_latency, quick)  # sim.yaml's compile
        if not quick:
            details["embedding"]["vit_b"] = timed("embedding_vit_b",
                                                  embedding.released_sam_embedding_ms, "vit_b")
    finally:
        if peer is not None:
            peer.close()
        if stream_proc is not None:
            stream.stop_node(stream_proc)
        node.destroy_node()
        rclpy.try_shutdown()

    if memory:
        log("attention: peak memory of the mid-size model in a subprocess")
        details["attention"]["peak_memory"] = timed(
            "peak_memory", attention.memory_subprocess, "mid", 64)

    timings["total"] = round(time.perf_counter() - t_start, 1)
    machine["load_avg_1min_per_section"] = load
    machine["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return assemble(details, machine, quick, timings, gpu=None if quick else previous_gpu_row())


def assemble(details: dict, machine: dict, quick: bool, timings: dict,
             gpu: dict | None = None) -> dict:
    att = details["attention"]
    mid = att["mid"]
    bd = details["breakdown"]
    tr = details["transport"]
    st = details.get("stream") or {}
    emb = details.get("embedding") or {}
    lat = st.get("latency_ms") or {}
    memory = att.get("peak_memory")
    la = details.get("latency") or {}
    results = {
        "attention_overhead_ratio": mid["capture_over_plain"],
        "eager_overhead_ratio": mid["eager_over_plain"],
        "overhead_fraction_outside_models": bd["overhead_fraction_outside_models"],
        "embedding_passes_per_frame": (emb.get("container") or {}).get(
            "embedding_passes_per_frame"),
        "rle_size_ratio": tr["sizes"]["rle_size_ratio"],
        "mask_codec_ms": tr["codec"]["encode_decode_ms"],
        "transport_latency_ms": {v: {"p50": tr["latency_ms"][v]["p50"],
                                     "p99": tr["latency_ms"][v]["p99"]} for v in ("rle", "image")},
        "stream_latency_ms": {"p50": lat.get("p50"), "p99": lat.get("p99")},
        "response_over_generation": la.get("response_over_generation"),
        "response_ms": la.get("response_ms"),
        "response_over_compiled_generation": la.get("response_over_compiled_generation"),
        "decode_ms_per_token": (la.get("decode") or {}).get("ms_per_token"),
        "prefill_capture_over_plain": (la.get("prefill") or {}).get("prefill_capture_over_plain"),
        "machine": machine,
        # extras
        "quick": quick,
        "attention_overhead_ratio_tiny": att["tiny"]["capture_over_plain"],
        "adapter_overhead_ratio_tiny": att["tiny"].get("adapter_over_plain"),
        "eager_overhead_ratio_tiny": att["tiny"]["eager_over_plain"],
        "peak_memory_mb": None if not memory else {
            "model": memory["model"], "method": memory["method"],
            **{v: {"peak_increase": m["peak_increase_mb"]} for v, m in memory["variants"].items()}},
        "overhead_fraction_outside_models_mid_lmm": (details.get("breakdown_mid_lmm") or {}).get(
            "overhead_fraction_outside_models"),
        "embedding_saved_ms_per_frame": (emb.get("saved") or {}).get("saved_ms_per_frame"),
        "gpu": gpu,
        "run_s": timings,
        "details": details,
    }
    results["targets"] = targets_table(results)
    return rnd(results, 4)


def previous_gpu_row(path: Path = BENCH_DIR / "results.json") -> dict | None:
    """The `--gpu` row of the last full results: measured on another machine, so a CPU re-run
    keeps it (with its own machine and date) rather than dropping it."""
    try:
        return json.loads(path.read_text()).get("gpu")
    except (OSError, ValueError):
        return None


def write(results: dict, out_dir: Path, quick: bool) -> tuple[Path, Path]:
    from bench.report import render

    out_dir.mkdir(parents=True, exist_ok=True)
    results["targets"] = targets_table(results)
    suffix = ".quick" if quick else ""
    json_path = out_dir / f"results{suffix}.json"
    md_path = out_dir / f"RESULTS{suffix}.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(render(results))
    return json_path, md_path


def run_gpu(out_dir: Path, reps: int = 10) -> dict:
    """Measurement 1 on CUDA: LLaVA-1.5-7B shapes in fp16, 64 tokens; merged into results."""
    import torch

    from bench.attention import summarise, time_variants
    from bench.models import VARIANTS, build_random_llava

    if not torch.cuda.is_available():
        raise RuntimeError("--gpu needs a CUDA device")
    log("gpu: building a LLaVA-1.5-7B-shaped model (random weights, fp16)")
    bm = build_random_llava("llava7b", device="cuda", dtype=torch.float16)
    timing = time_variants(bm, VARIANTS, 64, reps)
    gpu = summarise("llava7b-fp16", timing, 64, bm.build_s, int(bm.image_positions.numel()),
                    headline="wall")
    gpu["device"] = torch.cuda.get_device_name(0)
    gpu["machine"] = machine_info()  # the GPU host, not the CPU machine of the other rows
    from bench.attention import memprobe_model

    gpu["peak_memory"] = memprobe_model(bm, 64)
    del bm
    torch.cuda.empty_cache()
    from bench.latency import gpu_rows

    gpu["latency"] = gpu_rows("cuda", reps=5)
    path = out_dir / "results.json"
    results = json.loads(path.read_text()) if path.exists() else None
    if results is not None:
        results["gpu"] = rnd(gpu, 4)
        write(results, out_dir, quick=False)
    else:
        (out_dir / "results_gpu.json").write_text(json.dumps(rnd(gpu, 4), indent=1) + "\n")
    return gpu


def run_soak(out_dir: Path, seconds: float) -> dict:
    """Measurement 5 for longer (memory trend); merged into results.json as details.stream_soak."""
    import rclpy

    from bench import stream

    threads = int(os.environ.get("ROS_GROUND_BENCH_THREADS", DEFAULT_THREADS))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    private_ros_domain()
    rclpy.init()
    node = rclpy.create_node("bench_soak")
    try:
        soak = stream.run_stream(node, quick=False, duration_s=seconds)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    soak.pop("latencies_ms", None)
    path = out_dir / "results.json"
    if path.exists():
        results = json.loads(path.read_text())
        results["details"]["stream_soak"] = rnd(soak, 4)
        write(results, out_dir, quick=False)
    return soak


def run_latency_only(out_dir: Path) -> dict:
    """Section 7, latency, alone (compiled rows included), merged into results.json as
    details.latency and its keys, with the machine and date of this run."""
    import torch

    from bench.latency import run_latency

    threads = int(os.environ.get("ROS_GROUND_BENCH_THREADS", DEFAULT_THREADS))
    torch.set_num_threads(threads)
    latency = run_latency(quick=False)
    latency["machine"] = machine_info()
    latency["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = out_dir / "results.json"
    if path.exists():
        results = json.loads(path.read_text())
        results["details"]["latency"] = rnd(latency, 4)
        results["response_over_generation"] = latency["response_over_generation"]
        results["response_ms"] = latency["response_ms"]
        results["response_over_compiled_generation"] = latency.get(
            "response_over_compiled_generation")
        results["decode_ms_per_token"] = latency["decode"]["ms_per_token"]
        results["prefill_capture_over_plain"] = latency["prefill"]["prefill_capture_over_plain"]
        write(results, out_dir, quick=False)
    return latency


def run_bench(args) -> int:
    """Entry point of `ros-ground bench`: args has .quick and .json (and optionally .out, .gpu)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    out_dir = Path(getattr(args, "out", None) or BENCH_DIR)
    if getattr(args, "render", False):
        for quick in (False, True):
            path = out_dir / f"results{'.quick' if quick else ''}.json"
            if path.exists():
                write(json.loads(path.read_text()), out_dir, quick)
        return 0
    if getattr(args, "soak", None):
        soak = run_soak(out_dir, float(args.soak))
        if args.json:
            print(json.dumps(rnd(soak, 4)))
        return 0
    if getattr(args, "latency", False):
        latency = run_latency_only(out_dir)
        if args.json:
            print(json.dumps(rnd(latency, 4), default=str))
        return 0
    if getattr(args, "gpu", False):
        gpu = run_gpu(out_dir)
        if args.json:
            print(json.dumps(rnd(gpu, 4)))
        return 0
    results = run_all(bool(args.quick), threads=getattr(args, "threads", None))
    json_path, md_path = write(results, out_dir, bool(args.quick))
    log(f"wrote {md_path} and {json_path} ({results['run_s']['total']} s)")
    if args.json:
        summary = {k: v for k, v in results.items() if k != "details"}
        print(json.dumps(summary))
    else:
        for name, row in results["targets"].items():
            status = {True: "PASS", False: "FAIL", None: "n/a"}[row["pass"]]
            print(f"{status:4}  {name}: {row['value']} (target {row['target']})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, ~1.5 min of CPU")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line")
    parser.add_argument("--out", default=None, help="output directory (default bench/)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch intra-op threads on the CPU (default {DEFAULT_THREADS})")
    parser.add_argument("--render", action="store_true",
                        help="only re-render RESULTS.md from results.json")
    parser.add_argument("--soak", type=float, default=None, metavar="SECONDS",
                        help="only the streaming load, for SECONDS (memory trend); merged into "
                             "results.json")
    parser.add_argument("--gpu", action="store_true",
                        help="LLaVA-1.5-7B-shaped fp16 model on CUDA; merged into results.json")
    parser.add_argument("--latency", action="store_true",
                        help="only the latency measurement (compiled decoding included); merged "
                             "into results.json")
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
