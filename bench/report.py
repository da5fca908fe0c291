"""Render results.json as bench/RESULTS.md.

Sections 6 (camera QoS) and 8 (several cameras) are hand-run, not part of `make bench`: their
text lives in bench/hand_run/<number>_*.md (written from the output of `python -m bench.qos` /
`python -m bench.cameras`) and is placed at its number on every render, so rebuilding
RESULTS.md from results.json keeps them.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import machine_line

GPU_COMMAND = ".venv/bin/python -m bench.run --gpu"
HAND_RUN_DIR = Path(__file__).resolve().parent / "hand_run"
NOT_MEASURED = "Not measured in this run."


def _f(value, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value}{unit}"
    try:
        return f"{float(value):.{digits}f}{unit}"
    except (TypeError, ValueError):
        return str(value)


def _pass(flag) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "n/a"}[flag]


def _section(lines: list[str], title: str, data=True, missing: str = NOT_MEASURED) -> bool:
    """Open section `title` (`## title` and a blank line); when `data` is empty say `missing`
    and return False, so the caller returns."""
    lines += [f"## {title}", ""]
    if not data:
        lines += [missing, ""]
        return False
    return True


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
        f"{_f((r.get('run_s') or {}).get('total'), 0)} s in all.")
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
    add(".venv/bin/ros-ground bench --quick  # < 1 min, same keys; writes bench/RESULTS.quick.md"
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
        add(f"| `{name}` | {_f(row['value'], 3)} | {row['target']} | {_pass(row['pass'])} | "
            f"{row['what']} |")
    add("")
    _attention(lines, r, d.get("attention") or {})
    _breakdown(lines, r, d.get("breakdown") or {}, d.get("breakdown_mid_lmm"))
    _embedding(lines, r, d.get("embedding") or {})
    _transport(lines, r, d.get("transport") or {})
    _stream(lines, r, d.get("stream") or {})
    _hand_run(lines, 6, hand_run_dir)
    _latency(lines, r, d.get("latency") or {})
    _hand_run(lines, 8, hand_run_dir)
    _notes(lines, r, d)
    return "\n".join(lines) + "\n"


def _attention(lines, r, att):
    add = lines.append
    _section(lines, "1. Attention-capture overhead")
    add("Greedy generation of a fixed token count (`min_new_tokens = max_new_tokens`) on one "
        "image + prompt. *plain*: the model's stock SDPA attention. *capture*: ros_ground's "
        "capture attention (`install_capture`) inside an `AttentionCapture`, which is what "
        "`LMMAdapter.generate` runs. *eager*: eager attention with `output_attentions=True, "
        "return_dict_in_generate=True`. *adapter* (tiny only): the whole "
        "`LMMAdapter.generate` call, processor and token hook included. Models: `tiny` (the "
        "in-repo 3-layer LLaVA, 64 image tokens) and `mid` (random LLaVA: 8 Llama layers, "
        "hidden 1024, 16 heads, vocabulary 32064, 2-layer CLIP tower at 336 px / patch 14 = "
        "576 image tokens, 40 text tokens).")
    add("")
    add("Ratios: CPU time (process, median over reps) of the variant over plain; in brackets "
        "the wall-time ratio. *hook share*: time inside the capture's per-layer work "
        "(`AttentionCapture._add`, which also runs each finished step's reduction) over the "
        "rest of the same capture run, an in-run "
        "attribution that the machine's drift cannot bias.")
    add("")
    add("| model | device | image tokens | new tokens | reps | plain ms/token (wall) | "
        "capture / plain | hook share | eager / plain | adapter / plain |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    rows = [att.get("tiny"), att.get("mid")]
    gpu = r.get("gpu")
    for row in rows + [gpu]:
        if not row:
            continue
        device = row.get("device") or "CPU"
        add(f"| {row['model']} | {device} | {row['image_tokens']} | {row['new_tokens']} | "
            f"{row['reps']} | {_f(row['ms_per_token']['plain'])} | "
            f"**{_f(row.get('capture_over_plain'), 3)}** "
            f"({_f(row.get('capture_over_plain_wall'), 3)}) | "
            f"{_f(row.get('capture_hook_over_rest'), 3)} | "
            f"{_f(row.get('eager_over_plain'), 3)} ({_f(row.get('eager_over_plain_wall'), 3)}) | "
            f"{_f(row.get('adapter_over_plain'), 3)} |")
    if not gpu:
        add("| llava-1.5-7b shape, fp16 | GPU | 576 | 64 | - | **not measured** | - | - | - | - |")
    add("")
    if not gpu:
        add(f"The 7B GPU row is **not measured**: no GPU was available for this run. On a CUDA "
            f"machine run `{GPU_COMMAND}`; it builds a LLaVA-1.5-7B-shaped model (Llama-2-7B + "
            f"CLIP ViT-L/14-336) from config with random fp16 weights, times plain / capture / "
            f"eager generation of exactly 64 tokens (10 interleaved reps) with "
            f"`torch.cuda.synchronize`, reads peak memory from `torch.cuda.max_memory_allocated`, "
            f"and merges a `gpu` entry into results.json and this file.")
        add("")
    mem = att.get("peak_memory")
    if mem:
        add(f"Peak memory of one {mem['new_tokens']}-token generation of `{mem['model']}` above "
            f"the loaded model ({_f(mem.get('model_rss_mb'), 0)} MB RSS), in a subprocess "
            f"({mem['method']}):")
        add("")
        add("| variant | peak increase (MB) |")
        add("|---|---|")
        for v, row in mem["variants"].items():
            add(f"| {v} | {_f(row['peak_increase_mb'], 1)} |")
        add("")
    else:
        add("Peak memory: not measured in this run (measured by the full run only).")
        add("")
    if gpu:
        gm = gpu.get("machine") or {}
        add(f"The GPU row was measured with `{GPU_COMMAND}` on {gpu.get('device')} "
            f"({gm.get('date_utc', 'date not recorded')}; torch {gm.get('torch', '?')}, "
            f"transformers {gm.get('transformers', '?')}): a LLaVA-1.5-7B-shaped model from "
            f"config with random fp16 weights, exactly {gpu['new_tokens']} tokens, "
            f"{gpu['reps']} interleaved reps, wall clock with `torch.cuda.synchronize`; ratios "
            f"of medians (median of per-rep ratios: capture "
            f"{_f(gpu.get('capture_over_plain_cpu_per_rep_median'), 3)}, eager "
            f"{_f(gpu.get('eager_over_plain_cpu_per_rep_median'), 3)}). Decoding a 7B model "
            f"with batch 1 is bound by kernel launches on this GPU "
            f"({_f(gpu['ms_per_token']['plain'])} ms per token for 14 GB of weights that "
            f"memory streams in ~3 ms at the 4.3 TB/s measured for this GPU), so the capture "
            f"costs its launches, not its arithmetic: "
            f"{_f(gpu.get('capture_ms_per_layer_call'), 3)} ms per layer call. Launch-bound "
            f"timings drift between runs on a shared host (plain's ms per token with them), so "
            f"ratios of medians move by more than the capture costs; the hook share, an in-run "
            f"attribution, is the number to compare. A full CPU re-run keeps this row.")
        add("")
    if gpu and gpu.get("peak_memory"):
        add("GPU peak memory increase (MB): " + ", ".join(
            f"{v} {_f(x['peak_increase_mb'], 1)}" for v, x in gpu["peak_memory"]["variants"].items()))
        add("")


def _breakdown(lines, r, bd, mid):
    add = lines.append
    if not _section(lines, "2. Per-frame latency breakdown", bd):
        return
    p = bd.get("params", {})
    add(f"One grounded response as the grounding node produces it, with config/sim.yaml's "
        f"models (`model={p.get('model')}`, `sam_model={p.get('sam_model')}`, "
        f"`max_new_tokens={p.get('max_new_tokens')}`, `mode={p.get('mode')}` -> point prompts, "
        f"publish_overlay={p.get('publish_overlay')}) on a {bd['image'][1]}x{bd['image'][0]} "
        f"frame; medians of {bd['frames']} frames, each a new frame key (so SAM embeds it). The "
        f"response and overlay are published to a subscriber in another process. Model forward "
        f"time is measured with forward hooks on the LMM (every generate step), SAM's image "
        f"encoder, prompt encoder, mask decoder and mask upsampling. Decoding is eager here "
        f"(`compile: off`): a compiled step runs no forward hooks; section 7 times the "
        f"default's compiled response.")
    add("")
    total = bd["total_ms"] or 1.0
    add("| stage | ms | % of total |")
    add("|---|---|---|")
    for name, ms in bd["stages_ms"].items():
        add(f"| {name} | {_f(ms)} | {_f(100 * ms / total, 1)} |")
    add(f"| **total** | **{_f(bd['total_ms'])}** | 100 |")
    add("")
    add("| inside model forward passes | ms |")
    add("|---|---|")
    for name, ms in bd["model_ms"].items():
        add(f"| {name} | {_f(ms)} |")
    add(f"| **all model forwards** | **{_f(bd['model_total_ms'])}** |")
    add("")
    add(f"Tokens {_f(bd.get('tokens'), 0)}, phrases {_f(bd.get('phrases'), 0)}; decode "
        f"{_f(bd['per_token_ms']['decode'])} ms/token of which "
        f"{_f(bd['per_token_ms']['decode_forward'])} ms in the forward pass. **Outside model "
        f"forwards: {_f(100 * bd['overhead_fraction_outside_models'], 1)} %** "
        f"({_f(bd['outside_ms'])} ms of {_f(bd['total_ms'])} ms).")
    add("")
    if mid:
        add(f"Same pipeline with the mid-size random LLaVA (576 image tokens) in place of the "
            f"tiny LMM (tiny SAM kept; {mid['frames']} frames): total {_f(mid['total_ms'], 0)} ms, "
            f"outside model forwards **{_f(100 * mid['overhead_fraction_outside_models'], 1)} %** "
            f"({_f(mid['outside_ms'])} ms; phrase parsing {_f(mid['stages_ms']['phrase parsing'])} "
            f"ms, {_f(mid.get('phrases'), 0)} phrases, decode {_f(mid['per_token_ms']['decode'])} "
            f"ms/token of which {_f(mid['per_token_ms']['decode_forward'])} in the forward). "
            f"Of the total, the attention views (the flipped images in one batched "
            f"teacher-forced pass, "
            f"`attention_views`) take "
            f"{_f(mid['stages_ms'].get('attention views (teacher-forced passes)'), 0)} ms against "
            f"{_f(mid['stages_ms']['decode'], 0)} ms for decoding the answer: on a CPU each "
            f"view's 576 image tokens cost a full prefill; `attention_views: [identity]` "
            f"drops them.")
        add("")
    w = bd.get("what_if") or {}
    if w.get("sam_decode_per_phrase_ms") is not None:
        add(f"Side by side on the same frame: SAM decodes for its {w['phrases']} phrase points "
            f"take {_f(w['sam_decode_per_phrase_ms'])} ms as one `predict` per phrase vs "
            f"{_f(w['sam_decode_batched_ms'])} ms as one batched `predict_torch` (the engine's "
            f"way, `SamSegmenter.segment_points`; pixel agreement "
            f"{_f(100 * w['batched_pixel_agreement'], 2)} %). "
            f"Phrase parsing splits into spaCy noun chunks {_f(w['spacy_noun_chunks_ms'])} ms "
            f"and token character spans {_f(w['token_char_spans_ms'])} ms ({w['tokens']} "
            f"tokens, one prefix decode each).")
        add("")
    buckets = bd.get("profile_buckets_ms")
    if buckets:
        add("cProfile of one response (tiny models), own time grouped by code location "
            "(profiling inflates Python-heavy code):")
        add("")
        add("| where | ms |")
        add("|---|---|")
        for k, v in buckets.items():
            add(f"| {k} | {_f(v, 1)} |")
        add("")
    top = bd.get("profile_top")
    if top:
        add("<details><summary>cProfile, top functions by own time (one response)</summary>")
        add("")
        add("```")
        lines.extend(top.splitlines())
        add("```")
        add("</details>")
        add("")


def _embedding(lines, r, emb):
    add = lines.append
    if not _section(lines, "3. Embedding reuse (composed container)", emb):
        return
    c = emb.get("container") or {}
    s = emb.get("saved") or {}
    add(f"A GroundingNode and a MaskProposalNode built in one process as `ground_container` "
        f"builds them (`sam_provider=shared_sam_provider`, sim.yaml parameters except: "
        f"proposals for every frame, score thresholds 0 so the random tiny SAM yields "
        f"proposals, {c.get('points_per_side')} points per side). Per frame: publish it, wait "
        f"for its EntityProposals, send a command, wait for the response. SAM encoder passes "
        f"per frame (both nodes together): "
        f"**{c.get('passes_per_frame')}** over {c.get('frames')} frames (grounding used "
        f"{c.get('grounding_modes')}; median {_f(c.get('proposals_per_frame_median'), 0)} "
        f"proposals per frame).")
    add("")
    if s:
        add(f"Latency saved, side by side ({s['reps']} reps each): the engine's `sam_embedding` "
            f"stage is {_f(s['sam_embedding_stage_ms']['shared'])} ms with the shared SAM "
            f"(proposer already embedded the frame; passes per frame "
            f"{_f(s['passes_per_frame']['shared'], 0)}) vs "
            f"{_f(s['sam_embedding_stage_ms']['separate'])} ms with a separate SAM instance "
            f"(passes per frame {_f(s['passes_per_frame']['separate'], 0)}): "
            f"**{_f(s['saved_ms_per_frame'])} ms saved per frame** with the tiny SAM.")
    vit = emb.get("vit_b")
    if vit:
        add(f"For scale, one embedding with SAM ViT-B's architecture (random weights) takes "
            f"{_f(vit['embedding_ms'] / 1000, 1)} s on this CPU: the saving per frame with a "
            f"released model (ViT-H costs several times more).")
    add("")


def _transport(lines, r, tr):
    add = lines.append
    if not _section(lines, "4. Mask transport", tr):
        return
    s, c, lat = tr["sizes"], tr["codec"], tr["latency_ms"]
    add(f"A GroundedResponse with {s['phrases']} phrases on a {s['frame'][1]}x{s['frame'][0]} "
        f"frame, masks = ellipses and notched rectangles covering {min(s['coverage_pct'])}-"
        f"{max(s['coverage_pct'])} % each. RLE: the masks as MaskRLE in the response. Image: the "
        f"response with empty counts plus one mono8 `sensor_msgs/Image` per phrase. Bytes are "
        f"`rclpy.serialization.serialize_message` lengths.")
    add("")
    add("| | RLE | mono8 Images | ratio |")
    add("|---|---|---|---|")
    add(f"| bytes on the wire (whole response) | {s['rle_message_bytes']} | "
        f"{s['image_variant_bytes']} | **{_f(s['rle_size_ratio'], 1)}x** |")
    add(f"| bytes of the masks only | {s['rle_mask_bytes']} | {s['image_variant_images_bytes']} "
        f"| {_f(s['rle_size_ratio_masks_only'], 1)}x |")
    add(f"| publish -> receive p50 (ms) | {_f(lat['rle']['p50'])} | {_f(lat['image']['p50'])} | |")
    add(f"| publish -> receive p99 (ms) | {_f(lat['rle']['p99'])} | {_f(lat['image']['p99'])} | |")
    add(f"| messages (lost) | {lat['rle']['n']} ({lat['rle']['lost']}) | {lat['image']['n']} "
        f"({lat['image']['lost']}) | |")
    add("")
    add(f"Latency: two processes, reliable QoS, the variants alternating with one response in "
        f"flight at a time (the subscriber acks each complete response; "
        f"{lat.get('ack_timeouts', 0)} acks timed out); an image-variant response counts as "
        f"received when its last Image arrived. Messages are built before the clock starts "
        f"(building, incl. RLE encoding: RLE {_f(lat['build_ms']['rle'])} ms, images "
        f"{_f(lat['build_ms']['image'])} ms).")
    dm = tr.get("sizes_default_model_masks")
    if dm:
        add(f"With the masks the default models produced in section 2 ({dm['phrases']} phrases, "
            f"{dm['frame'][1]}x{dm['frame'][0]}, random-weight tiny SAM): RLE "
            f"{dm['rle_message_bytes']} B vs images {dm['image_variant_bytes']} B, "
            f"{_f(dm['rle_size_ratio'], 1)}x.")
    add("")
    add(f"Codec (`ros_ground.rle`, {c['reps']} reps, 10 masks, medians of the thread's CPU "
        f"time): encode {_f(c['encode_ms'])} ms + decode {_f(c['decode_ms'])} ms = "
        f"**{_f(c['encode_decode_ms'])} ms** (p99 {_f(c['encode_decode_p99_ms'])}; wall clock "
        f"{_f(c.get('encode_decode_wall_ms'))} ms, p99 {_f(c.get('encode_decode_wall_p99_ms'))}); "
        f"through MaskRLE messages (`mask_to_msg` + `msg_to_mask`, wall) "
        f"{_f(c['via_messages_ms'])} ms.")
    add("")


def _waiting_sentence(st: dict) -> str:
    waiting, rejected = st.get("max_requests_waiting"), st.get("rejected_busy", 0)
    if not waiting and not rejected:
        return "No request ever waited behind another and none was rejected"
    return (f"Up to {waiting} request(s) waited behind a slow one and {rejected} was (were) "
            "rejected busy")


def _spread_sentence(st: dict, words: int | None, la: dict) -> str:
    """Why the tail is long: the machine when the node's CPU time stays flat, else the node."""
    if words is None:
        return "The text varied between requests, which also spreads the latency."
    same = (f"Every request did the same work (same frame content, so the same {words}-word "
            "text and phrases), ")
    cpu_ratio = st.get("node_cpu_p99_over_p50") or 0.0
    if cpu_ratio > 3.0:
        return (same + f"yet the node's own CPU time per request has a p99 {_f(cpu_ratio, 1)}x "
                "its median: the slow requests did more work in the node process, not waiting "
                "for a core. The cause found so far, rclpy's executor busy-looping, is fixed "
                "(see above); sample per-thread CPU (`/proc/PID/task/*/stat`) to find another.")
    return (same + "so the spread of both wall and CPU time comes from the machine: 2 vCPUs "
            f"shared with other work (load average {_f(la.get('min'))}-{_f(la.get('max'))}), "
            "where even CPU time stretches when a co-runner thrashes the caches. A tail target "
            "of 1.5x needs a core of its own (taskset / cgroup cpuset for the node) or a quiet "
            "machine; nothing in the node queues.")


def _soak_sentence(d) -> str:
    soak = d.get("stream_soak")
    if not soak:
        return ("; whether that is allocator warm-up or a leak needs a longer run: "
                "`.venv/bin/python -m bench.run --soak 600`")
    return (f"; a {soak['duration_s'] / 60:.0f}-minute soak (`python -m bench.run --soak`) grew "
            f"{_f(soak.get('rss_growth_mb'), 1)} MB, {_f(soak.get('rss_growth_second_half_mb'), 1)}"
            f" MB in its second half (trend {_f(soak.get('rss_slope_mb_per_min'), 2)} MB/min), "
            f"latency p50/p99 {_f(soak['latency_ms']['p50'], 0)}/"
            f"{_f(soak['latency_ms']['p99'], 0)} ms, {soak.get('rejected_busy')} rejected")


def _stream(lines, r, st):
    add = lines.append
    if not _section(lines, "5. Streaming load", st):
        return
    lat = st["latency_ms"]
    add(f"A grounding node in its own process (`python -m ros_ground.nodes.grounding_node "
        f"--ros-args --params-file config/sim.yaml`), a {st['camera_hz_target']:.0f} Hz camera "
        f"(sent {_f(st['camera_hz_sent'], 1)} Hz, 320x240 rgb8, new stamps) and one command per "
        f"second for {st['duration_s']:.0f} s (after {st.get('warmup_commands', 2)} warm-up "
        f"commands). Torch threads in the node: {r['machine'].get('bench_torch_threads')} "
        f"(OMP_NUM_THREADS).")
    add("")
    add("| | value |")
    add("|---|---|")
    add(f"| commands / responses / OK / rejected busy / missing | {st['commands']} / "
        f"{st['responses']} / {st['ok']} / {st['rejected_busy']} / {st['missing']} |")
    add(f"| latency p50 / p99 / max (ms) | {_f(lat['p50'])} / {_f(lat['p99'])} / "
        f"{_f(lat['max'])} |")
    add(f"| p99 / p50 | **{_f(st['p99_over_p50'], 3)}** |")
    add(f"| median latency, first third -> last third (ms) | "
        f"{_f(st['latency_first_third_median_ms'])} -> {_f(st['latency_last_third_median_ms'])} |")
    add(f"| most requests waiting when a command was sent | {st['max_requests_waiting']} |")
    cpu = st.get("node_cpu_ms_per_request") or {}
    if cpu.get("p50") is not None:
        add(f"| node CPU time per request p50 / p99 (ms) | {_f(cpu['p50'])} / {_f(cpu['p99'])} "
            f"(p99 / p50 {_f(st.get('node_cpu_p99_over_p50'), 3)}) |")
    la = st.get("load_avg_1min") or {}
    if la.get("max") is not None:
        add(f"| machine load average (1 min) during the run | {_f(la['min'])} - {_f(la['max'])} "
            f"on {r['machine'].get('usable_cpus')} cores |")
    add(f"| node RSS start -> end (MB) | {_f(st['rss_mb_start'], 1)} -> {_f(st['rss_mb_end'], 1)} "
        f"(growth {_f(st['rss_growth_mb'], 1)}, of which second half "
        f"{_f(st.get('rss_growth_second_half_mb'), 1)}; trend {_f(st['rss_slope_mb_per_min'], 2)}"
        f" MB/min) |")
    add(f"| words / phrases per response (min-max) | {st.get('words_per_response_range')} / "
        f"{st.get('phrases_per_response_range')} |")
    add("")


def _latency(lines, r, la):
    add = lines.append
    if not _section(lines, "7. Latency: response over generation, prefill, compiled decoding", la):
        return
    when = la.get("machine")
    if when:
        add(f"Measured {when.get('date_utc')} with `.venv/bin/python -m bench.run --latency` "
            f"on {machine_line(when)} (1-minute load average at the end: "
            f"{la.get('load_avg_end')}: the cores were shared with other jobs).")
        add("")
    add(f"`response_over_generation`: median end-to-end response of the default config "
        f"(config/sim.yaml's engine: generation with capture, attention views, phrases, SAM, the "
        f"command's phrases, the response message; the overlay is drawn only when subscribed) "
        f"over the median time of generating the same tokens alone (`model.generate`, stock "
        f"SDPA, no capture), "
        f"same frames, interleaved, {la['frames']} frames, {la['tokens']} tokens, wall clock "
        f"(same tokens: {la['same_tokens']}).")
    add("")
    add("| | value |")
    add("|---|---|")
    add(f"| response (ms) | {_f(la['response_ms'], 1)} |")
    add(f"| generation alone (ms) | {_f(la['generation_ms'], 1)} |")
    add(f"| response / generation | **{_f(la['response_over_generation'], 3)}** |")
    if la.get("ratio_by_12_frames"):
        add(f"| the same ratio over each consecutive 12 frames (the machine's drift) | "
            f"{', '.join(_f(x, 3) for x in la['ratio_by_12_frames'])} |")
    if la.get("compiled"):
        add(f"| decoding | compiled (`compile: on`; {la.get('eager_requests')} requests that did "
            f"not fit the compiled step decoded eagerly; engine load + warm-up compile "
            f"{_f(la.get('load_and_warm_up_s'), 1)} s, inductor's disk cache "
            f"as this machine had it) |")
        add(f"| response decoding eagerly instead (`compile: off`), same frames, taking turns "
            f"(ms) | {_f(la['response_eager_decode_ms'], 1)} |")
        add(f"| that response / generation | "
            f"{_f(la['response_eager_decode_over_generation'], 3)} |")
        add(f"| the same tokens generated by the compiled decoder without the capture (ms) | "
            f"{_f(la['generation_compiled_ms'], 1)} |")
        add(f"| response / that compiled generation | "
            f"{_f(la['response_over_compiled_generation'], 3)} |")
    if "response_after_generation_ms" in la:
        add(f"| frame-only work ahead, on a worker thread (ahead.py; torch threads "
            f"{la.get('torch_threads')}) | {la.get('ahead')} |")
        add(f"| response with that work after generation instead (ms), same frames, taking "
            f"turns | {_f(la['response_after_generation_ms'], 1)} |")
        add(f"| that response / generation | "
            f"{_f(la['response_after_generation_over_generation'], 3)} |")
    add(f"| stages of the last response (ms) | {la.get('stages_ms_last')} |")
    add("")
    _prefill_table(lines, la.get("prefill") or {})
    _decode_table(lines, "CPU (default LMM, float32)", la.get("decode") or {})
    gpu = (r.get("gpu") or {}).get("latency")
    if gpu:
        _decode_table(lines, f"{gpu.get('device', 'GPU')} ({gpu['model']}-shaped, "
                      f"{gpu['dtype']})", gpu["decode"])
        m = gpu.get("measured") or {}
        add(f"GPU rows measured on {gpu.get('device', 'a GPU')} ({m.get('utc', 'date not recorded')}; "
            f"torch {m.get('torch', '?')}, transformers {m.get('transformers', '?')}) by "
            f"`bench.latency.gpu_rows`, the latency part of `{GPU_COMMAND}`: random weights, "
            f"{m.get('reps', '?')} interleaved reps, medians, wall clock with "
            f"`torch.cuda.synchronize`; absolute times. The total adds the parts one after another; "
            f"the node computes SAM's embedding during generation (ahead.py).")
        add("")
        add("| GPU stage | ms |")
        add("|---|---|")
        add(f"| prefill (vision + prompt) | {_f(gpu['decode']['prefill_ms'], 1)} |")
        add(f"| attention views (3, one batched pass) | {_f(gpu['views_ms'], 1)} |")
        add(f"| SAM {gpu['sam']} image embedding | {_f(gpu['sam_embedding_ms'], 1)} |")
        add(f"| SAM decodes ({gpu['sam_points']} points, batched) | "
            f"{_f(gpu['sam_decodes_ms'], 1)} |")
        add(f"| **total, grounded 64-token answer** | **{_f(gpu['total_64_token_answer_ms'], 1)}**"
            f" |")
        add("")
    else:
        add(f"GPU rows: not measured on this machine (`{GPU_COMMAND}` on a CUDA machine adds "
            f"them).")
        add("")


def _prefill_table(lines, pf):
    add = lines.append
    if not pf:
        return
    add(f"`prefill_capture_over_plain`: one prefill of the default LMM (`{pf['model']}`: vision "
        f"tower, projector and the text model over the {pf['prompt_tokens']}-token prompt, "
        f"{pf['image_tokens']} image tokens, \"{pf['prompt']}\") with the capture of the "
        f"prompt's {pf['prompt_rows']} own text rows, as `LMMAdapter.generate` runs it to "
        f"ground the command, over a plain SDPA prefill; {pf['reps']} interleaved reps, order "
        f"rotated, medians of process CPU time (wall time in brackets); same next token: "
        f"{pf['same_next_token']}.")
    add("")
    add("| prefill | ms CPU (wall) | over plain, CPU (wall) | median of per-rep ratios |")
    add("|---|---|---|---|")
    names = {"plain": "plain SDPA", "capture": "capture, last row only",
             "capture_prompt_rows": "capture with the prompt's rows"}
    for v, name in names.items():
        ratio, per_rep = "1", ""
        if v != "plain":
            bold = "**" if v == "capture_prompt_rows" else ""
            ratio = (f"{bold}{_f(pf.get(f'{v}_over_plain'), 3)}{bold} "
                     f"({_f(pf.get(f'{v}_over_plain_wall'), 3)})")
            per_rep = _f(pf.get(f"{v}_over_plain_per_rep_median"), 3)
        add(f"| {name} | {_f(pf['cpu_ms'][v])} ({_f(pf['ms'][v])}) | {ratio} | {per_rep} |")
    add("")
    add(f"In-run attribution: the time inside `AttentionCapture._add_prompt_rows` is "
        f"{_f(100 * (pf.get('prompt_rows_share') or 0), 1)} % of the rest of the same prefill "
        f"(median over reps), immune to the machine's drift between variants.")
    add("")


def _decode_table(lines, title, dec):
    add = lines.append
    ms = dec.get("ms_per_token") or {}
    if not ms:
        return
    compile_s = {k: round(v, 1) for k, v in (dec.get("compile_s") or {}).items()}
    reused = " (under 1 s: the same step was compiled earlier in the run, and dynamo reuses it)" \
        if compile_s and max(compile_s.values()) < 1 else ""
    add(f"Decode ms per token, {title}: (t(N) - t(1)) / (N - 1), N = {dec['new_tokens']}, "
        f"{dec['reps']} interleaved reps, medians, wall clock; compile time {compile_s} s"
        f"{reused}.")
    add("")
    add("| | plain | capture | capture / plain |")
    add("|---|---|---|---|")
    add(f"| eager (`generate`, dynamic cache) | {_f(ms.get('plain'))} | {_f(ms.get('capture'))} "
        f"| {_f(dec.get('capture_over_plain'), 3)} |")
    if "compiled_capture" in ms:
        add(f"| compiled (static cache, torch.compile) | {_f(ms.get('compiled_plain'))} | "
            f"{_f(ms.get('compiled_capture'))} | "
            f"{_f(dec.get('compiled_capture_over_compiled_plain'), 3)} |")
    else:
        add("| compiled | not measured (quick run: compiling takes minutes on a CPU) | | |")
    add("")


def _notes(lines, r, d):
    add = lines.append
    _section(lines, "Notes: what is not met, why, and what would change it")
    t = r["targets"]
    failing = [k for k, v in t.items() if v["pass"] is False]
    if not failing:
        add("- Every target with a value passes in this run.")
    else:
        add(f"- Not met in this run: {', '.join(f'`{k}`' for k in failing)}.")
    att = (d.get("attention") or {})
    mid = att.get("mid") or {}
    if mid:
        add(f"- **Capture overhead (mid-size, CPU)**: {_f(mid.get('capture_over_plain'), 3)} by "
            f"CPU time ({_f(mid.get('capture_over_plain_cpu_per_rep_median'), 3)} as the median "
            f"of per-repetition ratios, {_f(mid.get('capture_over_plain_wall'), 3)} by wall "
            f"time). In-run attribution: the capture's own work is "
            f"{_f(100 * (mid.get('capture_hook_over_rest') or 0), 1)} % of the rest of the run, "
            f"{_f(mid.get('capture_ms_per_layer_call'), 2)} ms per layer per step. That work is "
            f"one batched [heads x 1 x 64] x [64 x keys] product per layer (the mask fused in), "
            f"with the softmax, the image-column gather and the head and layer sum done once per "
            f"step over all layers' scores: little arithmetic but a second read of the layer's "
            f"whole key cache (2.5 MB per layer at 620 keys) right after SDPA read it, so on a CPU "
            f"it is memory-bound and grows with memory contention from other processes (full "
            f"runs on the 2-core development VM gave capture/plain 1.12-1.21 while quieter short "
            f"runs gave 0.97-1.07). On a GPU it is launch-bound instead; the per-step reduction "
            f"replaced ~12 small ops per layer there (hook share at 7B on an H200: 0.20 before, "
            f"0.12 after). What would make it cheaper still: one fused kernel for score + "
            f"softmax + gather (`torch.compile` or a custom op), so the keys are read once per "
            f"layer; or an option to capture a subset of layers (changes the maps, so an explicit "
            f"trade-off). Computing decode-step "
            f"attention from the capture's own scores instead of calling SDPA afterwards was "
            f"prototyped during development (1.055 vs 1.065 for the current capture, same run): "
            f"no measurable gain. Eager `output_attentions` is "
            f"{_f(mid.get('eager_over_plain'), 2)}x plain here and keeps every attention matrix.")
    pf = (d.get("latency") or {}).get("prefill")
    if pf:
        add(f"- **Prefill capture (default LMM, CPU)**: "
            f"{_f(pf.get('capture_prompt_rows_over_plain'), 3)} by CPU time "
            f"({_f(pf.get('capture_prompt_rows_over_plain_per_rep_median'), 3)} as the median of "
            f"per-repetition ratios, {_f(pf.get('capture_prompt_rows_over_plain_wall'), 3)} by "
            f"wall time), of which the last-row capture every generation already pays is "
            f"{_f(pf.get('capture_over_plain'), 3)}; the prompt rows' own work, attributed in the "
            f"run, is {_f(100 * (pf.get('prompt_rows_share') or 0), 1)} % of the prefill. A plain "
            f"prefill takes {_f(pf['cpu_ms']['plain'], 1)} ms of CPU here, so the 5 % target is "
            f"{_f(0.05 * pf['cpu_ms']['plain'], 1)} ms.")
    bd = d.get("breakdown") or {}
    if bd:
        st = bd["stages_ms"]
        lmm_gap = st["decode"] + st["vision encode + prefill"] - bd["model_ms"][
            "LMM prefill forward (incl. vision)"] - bd["model_ms"]["LMM decode forwards"]
        sam_gap = st["SAM decodes (all phrases)"] - bd["model_ms"][
            "SAM prompt enc + mask dec + upsample"]
        w = bd.get("what_if") or {}
        mid_bd = d.get("breakdown_mid_lmm")
        scale = ""
        if mid_bd:
            scale = (f" With the mid-size LMM in place of the tiny one (decode "
                     f"{_f(mid_bd['per_token_ms']['decode_forward'])} ms/token in the forward) "
                     f"the same pipeline spends {_f(100 * mid_bd['overhead_fraction_outside_models'], 1)}"
                     f" % outside model forwards: the target holds once the LMM does real work.")
        add(f"- **Time outside model forwards, default models**: "
            f"{_f(100 * bd['overhead_fraction_outside_models'], 1)} % ({_f(bd['outside_ms'])} of "
            f"{_f(bd['total_ms'])} ms). The embedded tiny models compute almost nothing (a decode "
            f"step is {_f(bd['per_token_ms']['decode_forward'])} ms), so fixed per-token, "
            f"per-phrase and per-response costs dominate: the overlay the node publishes "
            f"({_f(st['overlay (draw + publish)'])} ms; random-weight SAM masks are speckled, so "
            f"contour drawing is slow), the generate loop around the forward passes "
            f"({_f(lmm_gap)} ms, {_f(lmm_gap / max(1, bd.get('tokens') or 1))} ms/token), SAM "
            f"decodes outside the network ({_f(sam_gap)} ms for {_f(bd.get('phrases'), 0)} "
            f"phrases: map upsampling, point transforms, one batched decode), phrase "
            f"parsing ({_f(st['phrase parsing'])} ms; spaCy {_f(w.get('spacy_noun_chunks_ms'))} "
            f"ms, token spans {_f(w.get('token_char_spans_ms'))} ms), RLE + message "
            f"({_f(st['mask encoding (RLE)'] + st['message building (excl. RLE)'])} ms), the "
            f"processor ({_f(st['preprocess (processor)'])} ms) and publishing "
            f"({_f(st['publish response'])} ms).{scale}")
        add(f"- Done already: the phrases' SAM point prompts are decoded in one batch "
            f"({_f(w.get('sam_decode_per_phrase_ms'))} ms one by one -> "
            f"{_f(w.get('sam_decode_batched_ms'))} ms, identical masks), and the overlay is drawn "
            f"only while someone subscribes (this run has a subscriber). What would bring the "
            f"default-model share down further (measured where possible): no contours for "
            f"speckled masks in the hot path ({_f(st['overlay (draw + publish)'])} ms for the "
            f"overlay); and for tiny models a lean decode loop instead of "
            f"`generate()` (its per-token bookkeeping is a fixed "
            f"{_f(lmm_gap / max(1, bd.get('tokens') or 1))} ms). Even all of these together leave "
            f"the tiny default above 5 %: with models this small the pipeline's Python glue is "
            f"the workload.")
    st = d.get("stream") or {}
    if st.get("latency_ms"):
        words = st.get("words_per_response_range") or [None, None]
        same = words[0] is not None and words[0] == words[1]
        la = st.get("load_avg_1min") or {}
        add(f"- **Streaming**: wall-clock p99/p50 {_f(st.get('p99_over_p50'), 2)}; the node's own "
            f"CPU time per request p99/p50 {_f(st.get('node_cpu_p99_over_p50'), 2)} (10 ms "
            f"ticks). " + _waiting_sentence(st) + "; median latency in the "
            f"first vs last third of the run: {_f(st.get('latency_first_third_median_ms'), 0)} vs "
            f"{_f(st.get('latency_last_third_median_ms'), 0)} ms. RSS grew "
            f"{_f(st.get('rss_growth_mb'), 1)} MB "
            f"({_f(st.get('rss_growth_second_half_mb'), 1)} MB in the second half, trend "
            f"{_f(st.get('rss_slope_mb_per_min'), 1)} MB/min)" + _soak_sentence(d) + ". "
            + _spread_sentence(st, words[0] if same else None, la))
        add("- **The executor**: the nodes spin on `ros_ground.nodes.executor.CallbackExecutor`. "
            "On rclpy's MultiThreadedExecutor (rclpy 9) the previous full run (2026-11-29 00:46, "
            "120 s) had a tail 3.9x its median with up to 2 requests waiting; sampling each "
            "thread's CPU time in a 90 s soak showed seconds in which the spin thread used "
            "0.8-0.9 s and the request 0.1-0.2 s, as that executor resubmits a callback still "
            "waiting for a pool thread instead of waiting, holding the GIL. Two 90 s soaks with "
            "CallbackExecutor: p99/p50 1.36 and 1.25, none waiting, spin thread 30-40 ms of CPU "
            "per second (80 before).")
    tr = d.get("transport") or {}
    if tr:
        dm = tr.get("sizes_default_model_masks") or {}
        add(f"- **RLE**: size depends on mask shape: {_f(tr['sizes']['rle_size_ratio'], 0)}x smaller for "
            f"object-like blobs, but only {_f(dm.get('rle_size_ratio'), 1)}x for the speckled "
            f"masks of the random-weight tiny SAM (uint32 runs of a few pixels each).")
    add("- Peak memory: the capture keeps one float32 vector per step (steps x image tokens), "
        "so its peak is within a few MB of plain generation; eager `output_attentions` keeps "
        "every layer's full attention matrices (prefill: layers x heads x tokens^2).")
    add("- Random weights: the tiny and mid-size models are random, so their text is word "
        "salad and the tiny SAM's masks are not object shaped; timings are what matter. The "
        "mid-size model uses initializer_range 0.2 so its output depends on the image instead "
        "of repeating one token (the compute is the same), and its word-level tokenizer is the "
        "tiny one widened to 32064 entries with multi-word tokens.")
