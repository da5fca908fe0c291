"""RESULTS.md section 2: where one grounded response's time goes, stage by stage."""

from __future__ import annotations

from bench.report_format import fmt, open_section


def breakdown_section(lines, r, bd, mid):
    add = lines.append
    if not open_section(lines, "2. Per-frame latency breakdown", bd):
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
        add(f"| {name} | {fmt(ms)} | {fmt(100 * ms / total, 1)} |")
    add(f"| **total** | **{fmt(bd['total_ms'])}** | 100 |")
    add("")
    add("| inside model forward passes | ms |")
    add("|---|---|")
    for name, ms in bd["model_ms"].items():
        add(f"| {name} | {fmt(ms)} |")
    add(f"| **all model forwards** | **{fmt(bd['model_total_ms'])}** |")
    add("")
    add(f"Tokens {fmt(bd.get('tokens'), 0)}, phrases {fmt(bd.get('phrases'), 0)}; decode "
        f"{fmt(bd['per_token_ms']['decode'])} ms/token of which "
        f"{fmt(bd['per_token_ms']['decode_forward'])} ms in the forward pass. **Outside model "
        f"forwards: {fmt(100 * bd['overhead_fraction_outside_models'], 1)} %** "
        f"({fmt(bd['outside_ms'])} ms of {fmt(bd['total_ms'])} ms).")
    add("")
    if mid:
        add(f"Same pipeline with the mid-size random LLaVA (576 image tokens) in place of the "
            f"tiny LMM (tiny SAM kept; {mid['frames']} frames): total {fmt(mid['total_ms'], 0)} ms, "
            f"outside model forwards **{fmt(100 * mid['overhead_fraction_outside_models'], 1)} %** "
            f"({fmt(mid['outside_ms'])} ms; phrase parsing {fmt(mid['stages_ms']['phrase parsing'])} "
            f"ms, {fmt(mid.get('phrases'), 0)} phrases, decode {fmt(mid['per_token_ms']['decode'])} "
            f"ms/token of which {fmt(mid['per_token_ms']['decode_forward'])} in the forward). "
            f"Of the total, the attention views (the flipped images in one batched "
            f"teacher-forced pass, "
            f"`attention_views`) take "
            f"{fmt(mid['stages_ms'].get('attention views (teacher-forced passes)'), 0)} ms against "
            f"{fmt(mid['stages_ms']['decode'], 0)} ms for decoding the answer: on a CPU each "
            f"view's 576 image tokens cost a full prefill; `attention_views: [identity]` "
            f"drops them.")
        add("")
    w = bd.get("what_if") or {}
    if w.get("sam_decode_per_phrase_ms") is not None:
        add(f"Side by side on the same frame: SAM decodes for its {w['phrases']} phrase points "
            f"take {fmt(w['sam_decode_per_phrase_ms'])} ms as one `predict` per phrase vs "
            f"{fmt(w['sam_decode_batched_ms'])} ms as one batched `predict_torch` (the engine's "
            f"way, `SamSegmenter.segment_points`; pixel agreement "
            f"{fmt(100 * w['batched_pixel_agreement'], 2)} %). "
            f"Phrase parsing splits into spaCy noun chunks {fmt(w['spacy_noun_chunks_ms'])} ms "
            f"and token character spans {fmt(w['token_char_spans_ms'])} ms ({w['tokens']} "
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
            add(f"| {k} | {fmt(v, 1)} |")
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
