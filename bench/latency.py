"""Section 7 of RESULTS.md: the latency a robot waits on (issue 24).

- `response_over_generation`: median end-to-end response of the default config (config/sim.yaml's
  engine: generation with capture, attention views, phrases, SAM, the command's phrases, the
  response message with its RLE masks; the overlay is drawn only when subscribed, so not here)
  over the median time the same model takes to generate the same tokens alone (stock SDPA,
  no capture, `model.generate` on the processor's inputs), same frames, interleaved; beside
  it the response with SAM's embedding and the views' prompt after generation, not ahead, and
  with compiled decoding (sim.yaml's `compile: on`) the response decoding eagerly and
  `response_over_compiled_generation`, over the same compiled decoder without the capture.
- decode ms per token (prefill excluded: (t(N tokens) - t(1 token)) / (N - 1)), plain vs
  capture, eager (`model.generate`, dynamic cache) vs compiled (`CompiledDecoder`, static
  cache, torch.compile; CUDA graphs on CUDA), interleaved repetitions, medians.
- the prefill with the capture of the prompt's own rows (command grounding) over a plain
  prefill, interleaved (bench.prefill).
- `gpu_rows` (`python -m bench.run --gpu`): the same decode rows for a LLaVA-1.5-7B-shaped fp16
  model, its prefill, the attention-views pass, SAM ViT-H's image embedding and point decodes,
  and the total of a grounded 64-token answer.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.common import log, median
from bench.models import BenchModel, fixed_generation_config, set_variant
from ros_ground.lmm.attention import CAPTURE_IMPLEMENTATION
from ros_ground.lmm.compiled import CompiledDecoder

DECODE_VARIANTS = ("plain", "capture", "compiled_plain", "compiled_capture")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainCompiledDecoder(CompiledDecoder):
    """A `CompiledDecoder` whose step skips the capture: the compiled-plain reference (its
    rows are zeros). Its steps run plain SDPA, the prefill the capture (as the other's)."""

    def compiled_step(self):
        step = super().compiled_step()
        text_config = getattr(self.model.config, "text_config", self.model.config)

        def plain_step(*args):
            # the capture attention outside its kwarg reads a ContextVar, which torch 2.11's
            # dynamo cannot trace (fullgraph); plain SDPA is the reference anyway
            text_config._attn_implementation = "sdpa"
            try:
                return step(*args)
            finally:
                text_config._attn_implementation = CAPTURE_IMPLEMENTATION

        return plain_step

    def step(self, input_ids, cache_position, image_positions):
        out = self.model(input_ids=input_ids, past_key_values=self.cache,
                         cache_position=cache_position, position_ids=cache_position[None],
                         use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        logits[:, self.image_token_id] = float("-inf")  # as the capture's step
        return logits.argmax(dim=-1), logits.new_zeros(image_positions.shape)


def decode_rates(bm: BenchModel, new_tokens: int, reps: int, compiled: bool = True,
                 backend: str = "inductor") -> dict:
    """Median ms per decoded token of each variant (see the module docstring), plus the
    median prefill (1-token generation) ms of the eager plain variant and the compile time
    (`backend`: torch.compile's, for the compiled variants)."""
    from transformers import DynamicCache

    from ros_ground.lmm.attention import AttentionCapture

    image_token_id = int(bm.model.config.image_token_id)
    decoders = {}
    compile_s = {}
    variants = ["plain", "capture"]
    if compiled:
        decoders = {"compiled_plain": PlainCompiledDecoder(bm.model, image_token_id, backend),
                    "compiled_capture": CompiledDecoder(bm.model, image_token_id, backend)}
        variants += list(decoders)

    def run(variant: str, tokens: int) -> float:
        _sync(bm.device)
        t0 = time.perf_counter()
        with torch.no_grad():
            if variant in decoders:
                set_variant(bm.model, "capture")  # capture attention; the kwarg turns it on
                decoders[variant].generate(bm.inputs, bm.image_positions, tokens, set())
            else:
                set_variant(bm.model, variant)
                config = fixed_generation_config(bm.model, tokens)
                if variant == "capture":
                    with AttentionCapture(bm.image_positions):
                        bm.model.generate(**bm.inputs, generation_config=config,
                                          past_key_values=DynamicCache())
                else:
                    bm.model.generate(**bm.inputs, generation_config=config,
                                      past_key_values=DynamicCache())
        _sync(bm.device)
        return time.perf_counter() - t0

    for variant in variants:  # warm-up; compiles the compiled steps
        t0 = time.perf_counter()
        run(variant, min(new_tokens, 4))
        if variant in decoders:
            compile_s[variant] = time.perf_counter() - t0
            log(f"latency: {variant} compiled in {compile_s[variant]:.1f} s")
    full = {v: [] for v in variants}
    one = {v: [] for v in variants}
    for rep in range(reps):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for v in order:
            one[v].append(run(v, 1))
            full[v].append(run(v, new_tokens))
    bm.model.set_attn_implementation({"text_config": CAPTURE_IMPLEMENTATION})
    ms = {v: 1e3 * (median(full[v]) - median(one[v])) / (new_tokens - 1) for v in variants}
    out = {"ms_per_token": ms, "prefill_ms": 1e3 * median(one["plain"]),
           "new_tokens": new_tokens, "reps": reps, "compile_s": compile_s,
           "capture_over_plain": ms["capture"] / ms["plain"]}
    if compiled:
        out["compiled_capture_over_compiled_plain"] = \
            ms["compiled_capture"] / ms["compiled_plain"]
        out["compiled_over_eager_capture"] = ms["compiled_capture"] / ms["capture"]
    return out


def response_over_generation(engine, frames: int, prompt: str = "Describe the scene.") -> dict:
    """Median end-to-end response (engine.ground + the response message) over the median plain
    generation of the same tokens (`model.generate`, stock SDPA), on the same frames,
    interleaved. Beside it, taking turns with the default on each frame: the response with the
    frame-only work after generation (`prefetch` off: `ahead.py`'s worker unused) and, when the
    engine decodes compiled (`compile`), the response decoding eagerly and the same decoder's
    compiled plain generation (no capture), the reference for the capture's own cost."""
    from std_msgs.msg import Header
    from transformers import GenerationConfig

    from bench.common import tabletop_image
    from ros_ground.ahead import ahead_work
    from ros_ground.lmm.attention import CAPTURE_IMPLEMENTATION
    from ros_ground.nodes.conversions import result_to_msg

    lmm = engine.lmm
    decoder = lmm.decoder
    plain_compiled = None
    if decoder is not None:
        plain_compiled = PlainCompiledDecoder(lmm.model, lmm.image_token_id, decoder.backend,
                                              decoder.mode)
    images = [tabletop_image(240, 320, seed=i % 4) for i in range(frames + 1)]
    variants = ["default", "after"] + (["eager_decode"] if decoder is not None else [])
    times = {v: [] for v in variants + ["generation", "generation_compiled"]}
    same = []
    default_prefetch = engine.prefetch

    def respond(image, key, variant):
        engine.prefetch = False if variant == "after" else default_prefetch
        lmm.decoder = None if variant == "eager_decode" else decoder
        try:
            t0 = time.perf_counter()
            result = engine.ground(image, prompt, image_key=key)
            result_to_msg(result, Header(frame_id="bench"), "bench", prompt)
            return time.perf_counter() - t0, result
        finally:
            engine.prefetch = default_prefetch
            lmm.decoder = decoder

    for i, image in enumerate(images):
        order = variants[i % len(variants):] + variants[:i % len(variants)]
        timed = {v: respond(image, ("latency", i, v), v) for v in order}
        inputs, layout, _ = lmm.prepare(image, prompt)
        config = lmm._generation_config(GenerationConfig, engine.config.max_new_tokens)
        lmm.model.set_attn_implementation({"text_config": "sdpa"})
        try:
            t0 = time.perf_counter()
            with torch.no_grad():
                out = lmm.model.generate(**inputs, generation_config=config)
            generation_s = time.perf_counter() - t0
        finally:
            lmm.model.set_attn_implementation({"text_config": CAPTURE_IMPLEMENTATION})
        tokens = [out[0, inputs["input_ids"].shape[1]:].tolist()]
        if plain_compiled is not None:
            eos = config.eos_token_id
            t0 = time.perf_counter()
            with torch.no_grad():
                ids, _, _ = plain_compiled.generate(
                    inputs, layout.positions, engine.config.max_new_tokens,
                    set(eos if isinstance(eos, list) else [eos]))
            compiled_s = time.perf_counter() - t0
            tokens.append(ids)
        if i == 0:  # first-call costs (and the plain decoder's compilation)
            continue
        for v in variants:
            times[v].append(timed[v][0])
        times["generation"].append(generation_s)
        if plain_compiled is not None:
            times["generation_compiled"].append(compiled_s)
        result = timed["default"][1]
        same.append(all(t == list(timed[v][1].token_ids) for t in tokens for v in variants))
    generation = median(times["generation"])
    # this shared VM drifts over minutes: the ratio of each consecutive 12 frames shows how much
    by_twelve = [median(times["default"][i:i + 12]) / median(times["generation"][i:i + 12])
                 for i in range(0, len(times["generation"]) - 11, 12)]
    out = {
        "response_over_generation": median(times["default"]) / generation,
        "response_ms": 1e3 * median(times["default"]),
        "ratio_by_12_frames": by_twelve,
        "generation_ms": 1e3 * generation,
        "compiled": decoder is not None,
        "ahead": dict(zip(("sam_embedding", "views_prefill"),
                          ahead_work(default_prefetch, engine.sam.device, lmm.device,
                                     engine.torch_threads))),
        "torch_threads": torch.get_num_threads(),
        "response_after_generation_ms": 1e3 * median(times["after"]),
        "response_after_generation_over_generation": median(times["after"]) / generation,
        "frames": frames,
        "same_tokens": all(same),
        "tokens": len(result.token_ids),
        "stages_ms_last": {k: round(v, 1) for k, v in result.timing_ms.items()},
    }
    if decoder is not None:
        compiled_generation = median(times["generation_compiled"])
        out.update(
            response_eager_decode_ms=1e3 * median(times["eager_decode"]),
            response_eager_decode_over_generation=median(times["eager_decode"]) / generation,
            generation_compiled_ms=1e3 * compiled_generation,
            response_over_compiled_generation=median(times["default"]) / compiled_generation,
            eager_requests=decoder.eager_requests)
    return out


def run_latency(quick: bool, engine=None) -> dict:
    """CPU rows: response_over_generation of the default engine, decode rates of the
    default LMM (compiled variants only in the full run: inductor compiles for minutes) and
    its prefill with the prompt rows' capture against a plain one (bench.prefill)."""
    from bench.breakdown import build_default_engine, sim_params
    from bench.prefill import prefill_rates

    t0 = time.perf_counter()
    engine = engine or build_default_engine(sim_params())  # sim.yaml's compile, warmed up
    load_s = time.perf_counter() - t0
    out = response_over_generation(engine, 3 if quick else 36)
    out["load_and_warm_up_s"] = load_s
    lmm = engine.lmm
    inputs, layout, _ = lmm.prepare(tabletop_image_default(), "Describe the scene.")
    bm = BenchModel(lmm.name, lmm.model, dict(inputs), layout.positions.clone(), lmm.device,
                    lmm.dtype)
    out["decode"] = decode_rates(bm, 16 if quick else 64, 3 if quick else 7,
                                 compiled=not quick)
    out["prefill"] = prefill_rates(lmm, tabletop_image_default(), reps=12 if quick else 60)
    return out


def tabletop_image_default() -> np.ndarray:
    from bench.common import tabletop_image

    return tabletop_image(240, 320)


def gpu_rows(device: str = "cuda", model: str = "llava7b", sam_spec: str = "vit_h",
             new_tokens: int = 64, reps: int = 5, views: int = 3, points: int = 5,
             compiled: bool = True) -> dict:
    """The GPU rows: decode rates, prefill, views pass, SAM embedding and decodes, and the
    total of a grounded `new_tokens` answer (prefill + compiled capture decoding + views +
    SAM embedding + decodes of `points` phrases). Smaller `model` / `sam_spec` ("mid",
    "tiny") and `compiled=False` make a CPU smoke test of the same code."""
    from bench.models import build_random_llava
    from ros_ground.lmm.attention import CaptureComplete, RowsCapture
    from ros_ground.sam.build import build_sam_from_config, sam_config
    from ros_ground.sam.segmenter import SamSegmenter

    dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    log(f"latency: building a {model}-shaped model (random weights, {dtype})")
    bm = build_random_llava(model, device=device, dtype=dtype)
    rows = {"model": model, "dtype": str(dtype).replace("torch.", "")}
    rows["decode"] = decode_rates(bm, new_tokens, reps, compiled=compiled)

    # the views pass: prompt + answer, `views` images in one batch, ends after the last layer
    answer = torch.randint(3, 100, (1, new_tokens - 1), device=bm.device)
    ids = torch.cat([bm.inputs["input_ids"], answer], dim=1).repeat(views, 1)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "pixel_values": bm.inputs["pixel_values"].repeat(views, 1, 1, 1)}
    layers = bm.model.config.text_config.num_hidden_layers
    view_s = []
    for _ in range(reps + 1):
        _sync(bm.device)
        t0 = time.perf_counter()
        with torch.no_grad(), RowsCapture(bm.image_positions, new_tokens, layers) as capture:
            try:
                bm.model(**batch, use_cache=False, logits_to_keep=1)
            except CaptureComplete:
                pass
            capture.maps()
        _sync(bm.device)
        view_s.append(time.perf_counter() - t0)
    rows["views_ms"] = 1e3 * median(view_s[1:])
    del bm
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()

    sam = SamSegmenter(build_sam_from_config(sam_config(sam_spec)), device=device)
    rng = np.random.default_rng(0)
    embed_s, decode_s = [], []
    for i in range(reps + 1):
        image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        _sync(torch.device(device))
        t0 = time.perf_counter()
        sam.set_image(image, key=("gpu", i))
        _sync(torch.device(device))
        t1 = time.perf_counter()
        sam.segment_points(None, [(100.0 + 80 * k, 240.0) for k in range(points)])
        _sync(torch.device(device))
        embed_s.append(t1 - t0)
        decode_s.append(time.perf_counter() - t1)
    rows["sam"] = sam_spec
    rows["sam_embedding_ms"] = 1e3 * median(embed_s[1:])
    rows["sam_decodes_ms"] = 1e3 * median(decode_s[1:])
    rows["sam_points"] = points
    decode = rows["decode"]
    per_token = decode["ms_per_token"].get("compiled_capture", decode["ms_per_token"]["capture"])
    rows["total_64_token_answer_ms"] = (decode["prefill_ms"] + (new_tokens - 1) * per_token
                                        + rows["views_ms"] + rows["sam_embedding_ms"]
                                        + rows["sam_decodes_ms"])
    if torch.device(device).type == "cuda":
        rows["device"] = torch.cuda.get_device_name(0)
    import transformers

    rows["measured"] = {"utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "torch": torch.__version__, "transformers": transformers.__version__,
                        "reps": reps}
    return rows
