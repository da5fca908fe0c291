"""Render results.json as bench/RESULTS.md.

Sections 6 (camera QoS) and 8 (several cameras) are hand-run, not part of `make bench`: their
text lives in bench/hand_run/<number>_*.md (written from the output of `python -m bench.qos` /
`python -m bench.cameras`) and is placed at its number on every render, so rebuilding
RESULTS.md from results.json keeps them.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import machine_line
from bench.report_attention import attention_section
from bench.report_breakdown import breakdown_section
from bench.report_format import GPU_COMMAND, fmt, pass_mark
from bench.report_latency import latency_section
from bench.report_messages import embedding_section, transport_section
from bench.report_notes import notes_section
from bench.report_stream import stream_section

HAND_RUN_DIR = Path(__file__).resolve().parent / "hand_run"


def _hand_run(lines: list[str], number: int, directory: Path | None) -> None:
    """The hand-run section `number`, as its file in `directory` holds it (none: left out)."""
    for path in sorted(directory.glob(f"{number}_*.md")) if directory else ():
        lines.extend(path.read_text().rstrip("\n").splitlines())
        lines.append("")


def render(r: dict, hand_run_dir: Path | None = HAND_RUN_DIR) -> str:
    d = r.get("details", {})
    m = r["machine"]
    lines: list[str] = []
    add = lines.append
    mode = "quick (`--quick`: smaller counts)" if r.get("quick") else "full"
    add("# ros_ground benchmark results")
    add("")
    add(f"- **Machine**: {machine_line(m)}; GPU: {m.get('gpu') or 'none'}; "
        f"ROS middleware {m.get('rmw')}.")
    add(f"- **Date**: {m.get('date_utc')}; run: {mode}, "
        f"{fmt((r.get('run_s') or {}).get('total'), 0)} s in all.")
    load = m.get("load_avg_1min_per_section") or {}
    if load:
        peak = max(max(v) for v in load.values())
        add("- **Load**: the cores are shared with other work; 1-minute load average during the "
            "sections: " + ", ".join(f"{k} {v[0]}->{v[1]}" for k, v in load.items())
            + f" (peak {peak} on {m.get('usable_cpus')} cores).")
    add(f"- **Method**: torch intra-op threads = {m.get('bench_torch_threads')} for every CPU "
        "model measurement (with 2 threads on this shared 2-core machine every op waits for a "
        "descheduled worker thread: generation became 3-6x slower and erratic). Comparisons are "
        "side by side in one run (A/B repetitions interleaved, order rotated), reported as "
        "medians and ratios of medians; model-overhead ratios and the RLE codec use CPU time "
        "(process / thread), which other processes disturb far less than wall time (wall-time "
        "figures are shown beside them). Absolute times move between runs.")
    add("")
    add("## Reproduce")
    add("")
    add("```bash")
    add("make bench                          # = .venv/bin/ros-ground bench: writes bench/RESULTS.md"
        " + bench/results.json")
    add(".venv/bin/ros-ground bench --quick  # ~1.5 min CPU, same keys; writes bench/RESULTS.quick.md"
        " + results.quick.json")
    add(".venv/bin/ros-ground bench --json   # also prints the results (without details) as JSON")
    add(f"{GPU_COMMAND}   # on a CUDA machine: LLaVA-1.5-7B-shaped fp16 row, merged in here")
    add(".venv/bin/python -m bench.run --soak 420  # streaming load only, 7 min (memory trend), "
        "merged in here")
    add(".venv/bin/python -m bench.run --threads 2 # CPU measurements with 2 torch threads "
        "(idle machine)")
    add(".venv/bin/python -m bench.gpu_engine reference DIR  # then on the GPU: python -m "
        "bench.gpu_engine compare DIR (docs/MEASUREMENTS.md, \"On a GPU\")")
    add("```")
    add("")
    add("## Targets")
    add("")
    add("| metric | value | target | result | what |")
    add("|---|---|---|---|---|")
    for name, row in r["targets"].items():
        add(f"| `{name}` | {fmt(row['value'], 3)} | {row['target']} | {pass_mark(row['pass'])} | "
            f"{row['what']} |")
    add("")
    attention_section(lines, r, d.get("attention") or {})
    breakdown_section(lines, r, d.get("breakdown") or {}, d.get("breakdown_mid_lmm"))
    embedding_section(lines, r, d.get("embedding") or {})
    transport_section(lines, r, d.get("transport") or {})
    stream_section(lines, r, d.get("stream") or {})
    _hand_run(lines, 6, hand_run_dir)
    latency_section(lines, r, d.get("latency") or {})
    _hand_run(lines, 8, hand_run_dir)
    notes_section(lines, r, d)
    return "\n".join(lines) + "\n"
