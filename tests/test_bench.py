"""The benchmark suite's cheap parts and its output schema (no timing thresholds here).

Timing targets live in `ros-ground bench` (bench/RESULTS.md), never in tests.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import run as bench_run  # noqa: E402
from bench import targets as bench_targets  # noqa: E402
from bench.common import blob_masks, machine_info, p50_p99, tabletop_image  # noqa: E402
from bench.transport import codec_timing, wire_sizes  # noqa: E402


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.fixture(scope="module")
def masks():
    return blob_masks(10, 480, 640, seed=0)


def test_blob_masks_are_realistic(masks):
    assert len(masks) == 10
    for m in masks:
        assert m.shape == (480, 640) and m.dtype == bool
        assert 0.005 <= m.mean() <= 0.12  # 1-10 % each, give or take the notches


def test_wire_sizes(masks):
    pytest.importorskip("rclpy")
    sizes = wire_sizes(masks)
    assert sizes["phrases"] == 10 and sizes["frame"] == [480, 640]
    for key in ("rle_message_bytes", "image_variant_bytes", "image_variant_images_bytes",
                "rle_mask_bytes"):
        assert isinstance(sizes[key], int) and sizes[key] > 0
    # ten mono8 images carry at least 10 * 640 * 480 bytes
    assert sizes["image_variant_images_bytes"] >= 10 * 640 * 480
    assert _is_num(sizes["rle_size_ratio"]) and sizes["rle_size_ratio"] > 1


def test_codec_timing_function(masks):
    pytest.importorskip("rclpy")
    codec = codec_timing(masks[:3], reps=2)
    assert codec["masks"] == 3 and codec["reps"] == 2
    for key in ("encode_ms", "decode_ms", "encode_decode_ms", "encode_decode_p99_ms",
                "via_messages_ms"):
        assert _is_num(codec[key]) and codec[key] >= 0


def test_helpers():
    stats = p50_p99([1.0, 2.0, 3.0])
    assert stats["p50"] == 2.0 and stats["n"] == 3 and stats["p99"] <= 3.0
    # a generator is read once: every statistic comes from the same values
    assert p50_p99(x for x in (1.0, 2.0, 3.0)) == stats
    image = tabletop_image(48, 64)
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8
    info = machine_info()
    assert {"cpu", "usable_cpus", "ram_gb", "date_utc"} <= set(info)


@pytest.fixture(scope="module")
def tiny_attention():
    pytest.importorskip("transformers")
    from bench.attention import summarise, time_variants
    from bench.models import VARIANTS, build_tiny

    tiny = build_tiny()
    timing = time_variants(tiny, VARIANTS + ("adapter",), new_tokens=3, reps=1,
                           warmup_tokens=1, warmup_variants=())
    return summarise("tiny", timing, 3, tiny.build_s, int(tiny.image_positions.numel()))


def test_generation_variants_make_exactly_the_tokens_asked(tiny_attention):
    assert tiny_attention["tokens_generated"] == {v: 3 for v in
                                                  ("plain", "capture", "eager", "adapter")}
    assert tiny_attention["image_tokens"] == 64
    for key in ("capture_over_plain", "eager_over_plain", "adapter_over_plain"):
        assert _is_num(tiny_attention[key]) and tiny_attention[key] > 0


def test_decode_rates_and_response_over_generation():
    """bench.latency's measurements on the tiny model and the default engine (one frame):
    every number there, the response's tokens the same as generating alone."""
    pytest.importorskip("std_msgs")
    from bench.breakdown import build_default_engine
    from bench.latency import decode_rates, response_over_generation
    from bench.models import build_tiny

    rates = decode_rates(build_tiny(), new_tokens=4, reps=1, backend="aot_eager")
    assert set(rates["ms_per_token"]) == {"plain", "capture", "compiled_plain",
                                          "compiled_capture"}
    # differences of timings: numbers, not necessarily positive on a busy machine
    assert all(_is_num(v) for v in rates["ms_per_token"].values())
    assert rates["prefill_ms"] > 0
    engine = build_default_engine({"model": "tiny", "sam_model": "tiny", "device": "cpu",
                                   "max_new_tokens": 8})
    ratio = response_over_generation(engine, frames=1)
    assert ratio["same_tokens"] and ratio["response_over_generation"] > 1.0
    assert not ratio["compiled"] and "response_over_compiled_generation" not in ratio
    # compiled decoding (sim.yaml's compile: on): its own rows, beside the eager response
    from ros_ground.lmm.compiled import CompiledDecoder

    lmm = engine.lmm
    lmm.decoder = CompiledDecoder(lmm.model, lmm.image_token_id, backend="aot_eager")
    lmm.warm_up("Describe the scene.", 8)
    ratio = response_over_generation(engine, frames=1)
    assert ratio["compiled"] and ratio["same_tokens"] and ratio["eager_requests"] == 0
    assert all(ratio[k] > 0 for k in ("response_over_compiled_generation", "generation_compiled_ms",
                                      "response_eager_decode_ms"))


def test_prefill_rates():
    """bench.prefill on the tiny LMM: the three variants give the same next token (the
    capture changes no output), every ratio a positive number, the prompt's rows captured,
    and the LMM left on the capture attention it generates with."""
    pytest.importorskip("transformers")
    from bench.models import build_tiny
    from bench.prefill import PREFILL_VARIANTS, prefill_rates
    from ros_ground.lmm.attention import CAPTURE_IMPLEMENTATION

    lmm = build_tiny().adapter
    rates = prefill_rates(lmm, tabletop_image(), reps=2, warmup=0)
    assert set(rates["ms"]) == set(rates["cpu_ms"]) == set(PREFILL_VARIANTS)
    assert rates["same_next_token"]
    assert rates["prompt_rows"] >= 5 and rates["image_tokens"] == 64
    for key in ("capture_over_plain", "capture_prompt_rows_over_plain",
                "capture_prompt_rows_over_plain_wall", "prefill_capture_over_plain"):
        assert _is_num(rates[key]) and rates[key] > 0
    assert rates["prefill_capture_over_plain"] == rates["capture_prompt_rows_over_plain"]
    assert _is_num(rates["prompt_rows_share"]) and rates["prompt_rows_share"] > 0
    assert lmm.model.config.text_config._attn_implementation == CAPTURE_IMPLEMENTATION


def test_reduced_run_schema(tiny_attention, masks, tmp_path):
    """A reduced run through `assemble` and `render`: real cheap parts, stand-ins for the
    model-heavy ones (mid-size model, streaming, container), then the `--json` schema."""
    pytest.importorskip("rclpy")
    sizes = wire_sizes(masks)
    codec = codec_timing(masks, reps=2)
    latency = {"rle": {"p50": 1.0, "p99": 2.0, "n": 5, "lost": 0, "mean": 1.1},
               "image": {"p50": 5.0, "p99": 9.0, "n": 5, "lost": 0, "mean": 5.5},
               "messages_per_variant": 5, "gap_s": 0.01, "ack_timeouts": 0,
               "build_ms": {"rle": 1, "image": 2}}
    stage_names = ("preprocess (processor)", "vision encode + prefill", "decode",
                   "phrase parsing", "SAM embedding", "SAM decodes (all phrases)",
                   "mask encoding (RLE)", "message building (excl. RLE)", "publish response",
                   "overlay (draw + publish)", "other (engine bookkeeping)")
    breakdown = {"frames": 1, "total_ms": 100.0, "model_total_ms": 80.0, "outside_ms": 20.0,
                 "overhead_fraction_outside_models": 0.2,
                 "stages_ms": {k: 100.0 / len(stage_names) for k in stage_names},
                 "model_ms": {"vision tower + projector": 1.0,
                              "LMM prefill forward (incl. vision)": 5.0,
                              "LMM decode forwards": 60.0, "SAM image encoder": 5.0,
                              "SAM prompt enc + mask dec + upsample": 10.0},
                 "tokens": 10, "phrases": 2,
                 "per_token_ms": {"decode": 6.0, "decode_forward": 5.0},
                 "params": {"model": "tiny"}, "image": [240, 320, 3]}
    stream = {"duration_s": 1.0, "camera_hz_target": 30.0, "camera_hz_sent": 30.0,
              "commands": 1, "responses": 1, "ok": 1, "rejected_busy": 0, "other_status": 0,
              "missing": 0, "latency_ms": {"p50": 300.0, "p99": 310.0, "n": 1, "min": 300.0,
                                           "max": 310.0},
              "p99_over_p50": 1.03, "latency_first_third_median_ms": 300.0,
              "latency_last_third_median_ms": 300.0, "max_requests_waiting": 0,
              "rss_mb_start": 500.0, "rss_mb_end": 500.0, "rss_growth_mb": 0.0,
              "rss_slope_mb_per_min": 0.0, "phrases_per_response": 2,
              "words_per_response": 10}
    details = {
        "attention": {"tiny": tiny_attention, "mid": tiny_attention, "peak_memory": None},
        "breakdown": breakdown,
        "transport": {"sizes": sizes, "codec": codec, "latency_ms": latency},
        "embedding": {"container": {"frames": 1, "passes_per_frame": [1],
                                    "embedding_passes_per_frame": 1, "grounding_modes": ["point"],
                                    "proposals_per_frame_median": 3}},
        "stream": stream,
        "latency": {"response_over_generation": 1.5, "response_ms": 150.0,
                    "generation_ms": 100.0, "frames": 1, "tokens": 10, "same_tokens": True,
                    "decode": {"ms_per_token": {"plain": 1.0, "capture": 1.1}, "prefill_ms": 5.0,
                               "new_tokens": 4, "reps": 1, "compile_s": {},
                               "capture_over_plain": 1.1},
                    "prefill": {"model": "tiny", "prompt": "Pick up the mug.", "prompt_tokens": 70,
                                "image_tokens": 64, "prompt_rows": 5, "reps": 2,
                                "ms": {"plain": 2.0, "capture": 2.05, "capture_prompt_rows": 2.1},
                                "cpu_ms": {"plain": 2.0, "capture": 2.04,
                                           "capture_prompt_rows": 2.08},
                                "same_next_token": True, "prompt_rows_share": 0.01,
                                "capture_over_plain": 1.02, "capture_over_plain_wall": 1.025,
                                "capture_over_plain_per_rep_median": 1.02,
                                "capture_prompt_rows_over_plain": 1.04,
                                "capture_prompt_rows_over_plain_wall": 1.05,
                                "capture_prompt_rows_over_plain_per_rep_median": 1.04,
                                "prefill_capture_over_plain": 1.04}},
    }
    results = bench_run.assemble(details, machine_info(), quick=True, timings={"total": 1.0})
    assert bench_targets.validate(results) == []
    for key in bench_targets.REQUIRED_KEYS:
        assert key in results
    assert set(results["transport_latency_ms"]) == {"rle", "image"}
    assert set(results["transport_latency_ms"]["rle"]) == {"p50", "p99"}
    assert set(results["stream_latency_ms"]) == {"p50", "p99"}
    assert results["targets"]["embedding_passes_per_frame"]["pass"] is True
    assert results["targets"]["response_over_generation"]["pass"] is False
    assert results["decode_ms_per_token"] == {"plain": 1.0, "capture": 1.1}
    assert results["prefill_capture_over_plain"] == 1.04
    assert results["targets"]["prefill_capture_over_plain"]["pass"] is True
    json_path, md_path = bench_run.write(results, tmp_path, quick=True)
    assert json.loads(json_path.read_text())["rle_size_ratio"] == results["rle_size_ratio"]
    text = md_path.read_text()
    for heading in ("## Targets", "## 1. Attention", "## 2. Per-frame", "## 4. Mask transport",
                    "## 5. Streaming", "## 7. Latency", "not measured",
                    "| `prefill_capture_over_plain` | 1.040 | <= 1.05 | **pass** |",
                    "| capture with the prompt's rows | 2.08 (2.10) | **1.040** (1.050) | 1.040 |"):
        assert heading in text
    # the hand-run sections (not measured by the bench) are kept, each at its number
    assert text.index("## 5. Streaming") < text.index("## 6. Camera frame delivery") \
        < text.index("## 7. Latency") < text.index("## 8. Several cameras") \
        < text.index("## Notes")
    assert "| llava-1.5-7b shape, fp16 | GPU |" in text  # the placeholder row without --gpu

    # a --gpu row measured elsewhere is carried into the results and rendered with its machine
    gpu = {**tiny_attention, "model": "llava7b-fp16", "device": "NVIDIA H200",
           "machine": {"date_utc": "2026-01-01 00:00 UTC", "torch": "9.9", "transformers": "8.8"}}
    with_gpu = bench_run.assemble(details, machine_info(), quick=True, timings={"total": 1.0},
                                  gpu=gpu)
    assert bench_targets.validate(with_gpu) == []
    text = bench_run.write(with_gpu, tmp_path, quick=True)[1].read_text()
    assert "| llava7b-fp16 | NVIDIA H200 |" in text
    assert "| llava-1.5-7b shape, fp16 | GPU |" not in text
    assert "NVIDIA H200 (2026-01-01 00:00 UTC; torch 9.9, transformers 8.8)" in text


def test_the_report_says_only_what_its_run_measured():
    """History (an earlier run's numbers, a fix "above") belongs in docs/MEASUREMENTS.md: a
    rendered RESULTS.md holds this run's measurements, whichever branch of the notes it takes."""
    from bench.report import render

    results = json.loads((ROOT / "bench" / "results.json").read_text())
    stream = results["details"]["stream"]
    stream.update(node_cpu_p99_over_p50=4.0, words_per_response_range=[7, 7])  # the node's tail
    text = render(results, hand_run_dir=None)
    assert "Notes" in text and "same 7-word" in text
    for history in ("2026-11-29", "previous full run", "see above", "before)"):
        assert history not in text, history


def test_render_places_hand_run_sections_and_says_what_was_not_measured(tmp_path):
    from bench.report import render

    (tmp_path / "6_a.md").write_text("## 6. Hand A\n\nsix\n")
    (tmp_path / "8_b.md").write_text("## 8. Hand B\n\neight\n\n")
    results = json.loads((ROOT / "bench" / "results.json").read_text())
    results["details"].pop("stream", None)
    text = render(results, hand_run_dir=tmp_path)
    assert "## 6. Hand A\n\nsix\n\n## 7. Latency" in text
    assert "eight\n\n## Notes" in text
    assert "## 5. Streaming load\n\nNot measured in this run.\n\n## 6. Hand A" in text
    assert "## 6. Camera frame delivery" not in text  # only the given directory's sections
    assert "## 6." not in render(results, hand_run_dir=None)


def test_previous_gpu_row_survives_or_is_absent(tmp_path):
    path = tmp_path / "results.json"
    assert bench_run.previous_gpu_row(path) is None  # no earlier results
    path.write_text(json.dumps({"gpu": {"model": "llava7b-fp16"}}))
    assert bench_run.previous_gpu_row(path) == {"model": "llava7b-fp16"}
    path.write_text("{not json")
    assert bench_run.previous_gpu_row(path) is None


def test_validate_flags_missing_and_malformed_keys():
    errors = bench_targets.validate({"attention_overhead_ratio": "fast",
                                 "transport_latency_ms": {"rle": {"p50": 1.0}}})
    assert any("missing key 'machine'" in e for e in errors)
    assert any("attention_overhead_ratio" in e for e in errors)
    assert any("transport_latency_ms" in e for e in errors)


@pytest.mark.parametrize("name", ["results.json", "results.quick.json"])
def test_written_results_match_the_schema(name):
    path = ROOT / "bench" / name
    if not path.exists():
        pytest.skip(f"bench/{name} not written yet")
    assert bench_targets.validate(json.loads(path.read_text())) == []


def test_gpu_engine_compare_counts_answers_and_masks_of_same_text_answers():
    from bench.gpu_engine import compare

    square = np.zeros((8, 8), bool)
    square[:4, :4] = True
    half = square.copy()
    half[:, 2:] = False  # IoU 0.5 with the square
    ref_rows = [{"key": "0_0_point", "prompt": "p", "mode": "point", "text": "a cube.",
                 "target": 0, "landmark": -1, "ms": 1.0},
                {"key": "0_1_point", "prompt": "q", "mode": "point", "text": "a mug.",
                 "target": -1, "landmark": -1, "ms": 1.0}]
    rows = [dict(ref_rows[0], ms=3.0), dict(ref_rows[1], text="a tray.", target=0, ms=5.0)]
    ref_masks = {"0_0_point_0": square, "0_0_point_1": square, "0_1_point_0": square}
    masks = {"0_0_point_0": square, "0_0_point_1": ~square, "0_1_point_0": square}
    result = compare(rows, masks, ref_rows, ref_masks)
    assert (result["answers"], result["same_text"], result["same_target_landmark"]) == (2, 1, 1)
    # the other answer's mask is not compared, though it happens to match
    assert result["masks_compared"] == 2 and result["masks_iou_at_least_0.5"] == 1
    assert result["mask_iou_mean"] == 0.5
    assert result["differs"] == [("q", "point", "a tray.", "a mug.")]
    masks["0_0_point_1"] = half
    assert compare(rows, masks, ref_rows, ref_masks)["masks_iou_at_least_0.5"] == 2
