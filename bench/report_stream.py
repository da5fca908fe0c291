"""RESULTS.md section 5: the grounding node under a streaming camera and a command a second,
and the sentences the notes say about that run."""

from __future__ import annotations

from bench.report_format import fmt, open_section


def waiting_sentence(st: dict) -> str:
    waiting, rejected = st.get("max_requests_waiting"), st.get("rejected_busy", 0)
    if not waiting and not rejected:
        return "No request ever waited behind another and none was rejected"
    return (f"Up to {waiting} request(s) waited behind a slow one and {rejected} was (were) "
            "rejected busy")


def spread_sentence(st: dict, words: int | None, la: dict) -> str:
    """Why the tail is long: the machine when the node's CPU time stays flat, else the node."""
    if words is None:
        return "The text varied between requests, which also spreads the latency."
    same = (f"Every request did the same work (same frame content, so the same {words}-word "
            "text and phrases), ")
    cpu_ratio = st.get("node_cpu_p99_over_p50") or 0.0
    if cpu_ratio > 3.0:
        return (same + f"yet the node's own CPU time per request has a p99 {fmt(cpu_ratio, 1)}x "
                "its median: the slow requests did more work in the node process, not waiting "
                "for a core. Sampling each thread's CPU time (`/proc/PID/task/*/stat`) shows "
                "which thread it is (docs/MEASUREMENTS.md, \"Executor\", found one cause that way).")
    return (same + "so the spread of both wall and CPU time comes from the machine: 2 vCPUs "
            f"shared with other work (load average {fmt(la.get('min'))}-{fmt(la.get('max'))}), "
            "where even CPU time stretches when a co-runner thrashes the caches. A tail target "
            "of 1.5x needs a core of its own (taskset / cgroup cpuset for the node) or a quiet "
            "machine; nothing in the node queues.")


def soak_sentence(d) -> str:
    soak = d.get("stream_soak")
    if not soak:
        return ("; whether that is allocator warm-up or a leak needs a longer run: "
                "`.venv/bin/python -m bench.run --soak 600`")
    return (f"; a {soak['duration_s'] / 60:.0f}-minute soak (`python -m bench.run --soak`) grew "
            f"{fmt(soak.get('rss_growth_mb'), 1)} MB, {fmt(soak.get('rss_growth_second_half_mb'), 1)}"
            f" MB in its second half (trend {fmt(soak.get('rss_slope_mb_per_min'), 2)} MB/min), "
            f"latency p50/p99 {fmt(soak['latency_ms']['p50'], 0)}/"
            f"{fmt(soak['latency_ms']['p99'], 0)} ms, {soak.get('rejected_busy')} rejected")


def stream_section(lines, r, st):
    add = lines.append
    if not open_section(lines, "5. Streaming load", st):
        return
    lat = st["latency_ms"]
    add(f"A grounding node in its own process (`python -m ros_ground.nodes.grounding_node "
        f"--ros-args --params-file config/sim.yaml`), a {st['camera_hz_target']:.0f} Hz camera "
        f"(sent {fmt(st['camera_hz_sent'], 1)} Hz, 320x240 rgb8, new stamps) and one command per "
        f"second for {st['duration_s']:.0f} s (after {st.get('warmup_commands', 2)} warm-up "
        f"commands). Torch threads in the node: {r['machine'].get('bench_torch_threads')} "
        f"(OMP_NUM_THREADS).")
    add("")
    add("| | value |")
    add("|---|---|")
    add(f"| commands / responses / OK / rejected busy / missing | {st['commands']} / "
        f"{st['responses']} / {st['ok']} / {st['rejected_busy']} / {st['missing']} |")
    add(f"| latency p50 / p99 / max (ms) | {fmt(lat['p50'])} / {fmt(lat['p99'])} / "
        f"{fmt(lat['max'])} |")
    add(f"| p99 / p50 | **{fmt(st['p99_over_p50'], 3)}** |")
    add(f"| median latency, first third -> last third (ms) | "
        f"{fmt(st['latency_first_third_median_ms'])} -> {fmt(st['latency_last_third_median_ms'])} |")
    add(f"| most requests waiting when a command was sent | {st['max_requests_waiting']} |")
    cpu = st.get("node_cpu_ms_per_request") or {}
    if cpu.get("p50") is not None:
        add(f"| node CPU time per request p50 / p99 (ms) | {fmt(cpu['p50'])} / {fmt(cpu['p99'])} "
            f"(p99 / p50 {fmt(st.get('node_cpu_p99_over_p50'), 3)}) |")
    la = st.get("load_avg_1min") or {}
    if la.get("max") is not None:
        add(f"| machine load average (1 min) during the run | {fmt(la['min'])} - {fmt(la['max'])} "
            f"on {r['machine'].get('usable_cpus')} cores |")
    add(f"| node RSS start -> end (MB) | {fmt(st['rss_mb_start'], 1)} -> {fmt(st['rss_mb_end'], 1)} "
        f"(growth {fmt(st['rss_growth_mb'], 1)}, of which second half "
        f"{fmt(st.get('rss_growth_second_half_mb'), 1)}; trend {fmt(st['rss_slope_mb_per_min'], 2)}"
        f" MB/min) |")
    add(f"| words / phrases per response (min-max) | {st.get('words_per_response_range')} / "
        f"{st.get('phrases_per_response_range')} |")
    add("")
