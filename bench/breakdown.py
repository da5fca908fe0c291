"""Measurement 2: per-frame latency breakdown of one grounded response, and the share of it
spent outside model forward passes.

The engine is built from config/sim.yaml's grounding_node parameters (the embedded defaults).
Forward hooks time every model forward pass: the LMM (each generate step; the first one holds
the vision tower and the prefill), SAM's image encoder, and SAM's prompt encoder + mask decoder
+ mask upsampling (`Sam.postprocess_masks`, part of `Sam.forward`). Everything else is
overhead: the processor, the generate loop around the forward passes, phrase parsing, map
upsampling, RLE, message building, publishing and the overlay the node publishes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.common import ROOT, log, median, tabletop_image
from bench.frame_profile import profile_buckets, profile_frame

PROMPT = "Describe the scene."


def sim_params(path: Path | None = None) -> dict:
    """grounding_node's ros__parameters from config/sim.yaml."""
    import yaml

    path = path or ROOT / "config" / "sim.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in data.items():
        if key.rstrip("/").endswith("grounding_node"):
            return dict(value.get("ros__parameters", {}))
    raise ValueError(f"no grounding_node section in {path}")


class ForwardTimer:
    """Wall time spent inside modules' forward calls, by category (hooks, outermost call only)."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: dict[str, list[float]] = defaultdict(list)
        self._handles = []
        self._restore = []
        self._start: dict[str, float] = {}

    def add_module(self, category: str, module) -> None:
        def pre(_module, _args):
            self._start[category] = time.perf_counter()

        def post(_module, _args, _out):
            dt = time.perf_counter() - self._start.pop(category)
            self.totals[category] += dt
            self.calls[category].append(dt)

        self._handles.append(module.register_forward_pre_hook(pre))
        # always_call: the attention-view pass ends by raising CaptureComplete after the last
        # layer's scores; its time is still model compute
        self._handles.append(module.register_forward_hook(post, always_call=True))

    def add_method(self, category: str, owner, name: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self.totals[category] += dt
                self.calls[category].append(dt)

        setattr(owner, name, timed)
        self._restore.append((owner, name))

    def reset(self) -> None:
        self.totals.clear()
        self.calls.clear()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        for owner, name in self._restore:
            delattr(owner, name)  # instance attribute shadowed the class method
        self._handles, self._restore = [], []


def instrument(engine) -> ForwardTimer:
    """Forward hooks on the engine's models. They time one thread, so until `timer.remove()`
    the engine runs one stage at a time: the frame-only work it runs ahead by default
    (ahead.py) is timed after generation; section 7 times the response as the default runs it."""
    timer = ForwardTimer()
    engine.prefetch = False
    timer._restore.append((engine, "prefetch"))  # removing the timer restores the default
    model = engine.lmm.model
    timer.add_module("lmm", model)
    inner = getattr(model, "model", model)
    for name in ("vision_tower", "multi_modal_projector"):
        if getattr(inner, name, None) is not None:
            timer.add_module("vision", getattr(inner, name))
    sam = engine.sam.sam
    timer.add_module("sam_encoder", sam.image_encoder)
    timer.add_module("sam_prompt_encoder", sam.prompt_encoder)
    timer.add_module("sam_mask_decoder", sam.mask_decoder)
    timer.add_method("sam_postprocess", sam, "postprocess_masks")
    return timer


class Publisher:
    """A GroundedResponse + overlay publisher, as the node has (subscribers live elsewhere)."""

    def __init__(self, node, response_topic: str, overlay_topic: str):
        from ros_ground_msgs.msg import GroundedResponse
        from sensor_msgs.msg import Image

        from ros_ground.nodes.common import RELIABLE

        self.node = node
        self.response = node.create_publisher(GroundedResponse, response_topic, RELIABLE)
        self.overlay = node.create_publisher(Image, overlay_topic, RELIABLE)

    def wait_matched(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.response.get_subscription_count() and self.overlay.get_subscription_count():
                return True
            time.sleep(0.05)
        return False


def one_frame(engine, timer: ForwardTimer, image, key, publisher: Publisher | None,
              publish_overlay: bool = True) -> dict:
    """Stage timings (ms) of one grounded response, as the node produces it."""
    from std_msgs.msg import Header

    from ros_ground.nodes.conversions import result_to_msg, rgb_to_image_msg
    from ros_ground.overlay import draw_overlay
    from ros_ground.rle import mask_to_counts

    timer.reset()
    t_start = time.perf_counter()
    result = engine.ground(image, PROMPT, image_key=key)
    t_ground = time.perf_counter()
    t0 = time.perf_counter()
    for p in result.phrases:
        mask_to_counts(p.mask)
    rle_ms = (time.perf_counter() - t0) * 1e3
    header = Header(frame_id="bench")
    t0 = time.perf_counter()
    msg = result_to_msg(result, header, "bench-1", PROMPT)
    msg_ms = (time.perf_counter() - t0) * 1e3
    publish_ms = overlay_ms = 0.0
    if publisher is not None:
        t0 = time.perf_counter()
        publisher.response.publish(msg)
        publish_ms = (time.perf_counter() - t0) * 1e3
        if publish_overlay:
            t0 = time.perf_counter()
            publisher.overlay.publish(rgb_to_image_msg(draw_overlay(image, result.phrases),
                                                       header))
            overlay_ms = (time.perf_counter() - t0) * 1e3
    total_ms = (time.perf_counter() - t_start) * 1e3

    tm = result.timing_ms
    calls = [1e3 * c for c in timer.calls.get("lmm", [])]
    # after generation, one teacher-forced pass per attention view other than identity
    views = sum(v != "identity" for v in engine.config.attention_views) if calls else 0
    lmm_calls, view_calls = calls[: len(calls) - views], calls[len(calls) - views:]
    vision_ms = 1e3 * timer.totals.get("vision", 0.0)
    prefill_forward = lmm_calls[0] if lmm_calls else 0.0
    decode_forward = sum(lmm_calls[1:])
    sam_decoder_model = 1e3 * (timer.totals.get("sam_prompt_encoder", 0.0)
                               + timer.totals.get("sam_mask_decoder", 0.0)
                               + timer.totals.get("sam_postprocess", 0.0))
    sam_encoder_model = 1e3 * timer.totals.get("sam_encoder", 0.0)
    model_ms = sum(calls) + sam_encoder_model + sam_decoder_model
    stages = {
        "preprocess (processor)": tm.get("preprocess", 0.0),
        "vision encode + prefill": tm.get("vision_prefill", 0.0),
        "decode": tm.get("decode", 0.0),
        "attention views (teacher-forced passes)": tm.get("views", 0.0),
        "phrase parsing": tm.get("phrases", 0.0),
        "SAM embedding": tm.get("sam_embedding", 0.0),
        "SAM decodes (all phrases)": tm.get("segment", 0.0),
        "the prompt's own phrases (command target)": tm.get("prompt_grounding", 0.0),
        "mask encoding (RLE)": rle_ms,
        "message building (excl. RLE)": max(0.0, msg_ms - rle_ms),
        "publish response": publish_ms,
        "overlay (draw + publish)": overlay_ms,
    }
    engine_ms = (t_ground - t_start) * 1e3
    stages["other (engine bookkeeping)"] = max(0.0, engine_ms - sum(
        tm.get(k, 0.0) for k in ("preprocess", "vision_prefill", "decode", "views", "phrases",
                                 "sam_embedding", "segment", "prompt_grounding")))
    return {
        "stages_ms": stages,
        "model_ms": {
            "vision tower + projector": vision_ms,
            "LMM prefill forward (incl. vision)": prefill_forward,
            "LMM decode forwards": decode_forward,
            "LMM attention-view passes (incl. vision)": sum(view_calls),
            "SAM image encoder": sam_encoder_model,
            "SAM prompt enc + mask dec + upsample": sam_decoder_model,
        },
        "total_ms": total_ms,
        "model_total_ms": model_ms,
        "outside_ms": total_ms - model_ms,
        "tokens": len(result.token_ids),
        "phrases": len(result.phrases),
        "decode_steps": max(0, len(lmm_calls) - 1),
        "rle_bytes_hint": [len(mask_to_counts(p.mask)) for p in result.phrases],
        "_result": result,
    }


def what_if(engine, image, key, result, reps: int = 5) -> dict:
    """Side-by-side costs behind two overhead items, to say what would change them:

    - SAM decodes: one `predict` per phrase vs one batched decode over all phrases' points
      (`segment_points`, what the engine does; same masks), on the frame's cached embedding;
    - phrase parsing: spaCy noun chunks vs the token character spans (one prefix decode per
      token) within the `phrases` stage.
    """
    from ros_ground.phrases import noun_phrases, token_char_spans

    sam = engine.sam
    points = [p.point for p in result.phrases if p.point is not None]
    out: dict = {"phrases": len(points)}
    if points:
        sam.set_image(image, key=key)
        per_phrase, batched, agree = [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            singles = [sam.segment_point(image, pt, "iou", key=key)[0] for pt in points]
            per_phrase.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            chosen = [mask for mask, _ in sam.segment_points(image, points, "iou", key=key)]
            batched.append((time.perf_counter() - t0) * 1e3)
            agree.append(float(np.mean([np.mean(a == b) for a, b in zip(singles, chosen)])))
        out.update(sam_decode_per_phrase_ms=median(per_phrase),
                   sam_decode_batched_ms=median(batched), batched_pixel_agreement=min(agree))
    ids = list(result.token_ids)
    spacy_ms, spans_ms = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        noun_phrases(engine.nlp, result.text)
        t1 = time.perf_counter()
        token_char_spans(engine.lmm.decode, ids)
        spacy_ms.append((t1 - t0) * 1e3)
        spans_ms.append((time.perf_counter() - t1) * 1e3)
    out.update(spacy_noun_chunks_ms=median(spacy_ms), token_char_spans_ms=median(spans_ms),
               tokens=len(ids))
    return out


def summarise(frames: list[dict]) -> dict:
    def med(getter):
        return median([getter(f) for f in frames])

    stages = {k: med(lambda f, k=k: f["stages_ms"][k]) for k in frames[0]["stages_ms"]}
    models = {k: med(lambda f, k=k: f["model_ms"][k]) for k in frames[0]["model_ms"]}
    fractions = [f["outside_ms"] / f["total_ms"] for f in frames]
    total = med(lambda f: f["total_ms"])
    return {
        "frames": len(frames),
        "total_ms": total,
        "model_total_ms": med(lambda f: f["model_total_ms"]),
        "outside_ms": med(lambda f: f["outside_ms"]),
        "overhead_fraction_outside_models": median(fractions),
        "stages_ms": stages,
        "model_ms": models,
        "tokens": med(lambda f: f["tokens"]),
        "phrases": med(lambda f: f["phrases"]),
        "per_token_ms": {
            "decode": med(lambda f: f["stages_ms"]["decode"] / max(1, f["decode_steps"])),
            "decode_forward": med(lambda f: f["model_ms"]["LMM decode forwards"]
                                  / max(1, f["decode_steps"])),
        },
    }


def build_default_engine(params: dict | None = None, lmm=None):
    """The engine the grounding node builds from config/sim.yaml (or `lmm` swapped in)."""
    import torch

    from ros_ground.engine import EngineConfig, GroundingEngine, build_engine

    p = params or sim_params()
    config = EngineConfig(mode=p.get("mode", "auto"), max_new_tokens=int(p.get("max_new_tokens",
                                                                               64)))
    # the bench's own torch threads (bench.run --threads), not the yaml's
    engine = build_engine(model=p.get("model", "tiny"), sam_model=p.get("sam_model", "tiny"),
                          device=p.get("device", "auto"), dtype=p.get("dtype", "auto"),
                          config=config, torch_threads=torch.get_num_threads(),
                          compile=p.get("compile", "auto"))
    if lmm is not None:
        engine = GroundingEngine(lmm, engine.sam, engine.nlp, engine.config,
                                 engine.torch_threads)
    if engine.lmm.decoder is not None:  # as the node does while it configures
        t0 = time.perf_counter()
        engine.warm_up(p.get("default_prompt", PROMPT), config.max_new_tokens)
        log(f"compiled the decode step in {time.perf_counter() - t0:.1f} s")
    return engine


def run_breakdown(quick: bool, publisher: Publisher | None = None, frames: int | None = None,
                  profile: bool = True) -> dict:
    params = sim_params()
    log(f"breakdown: engine from config/sim.yaml (model={params.get('model')}, "
        f"sam_model={params.get('sam_model')}, max_new_tokens={params.get('max_new_tokens')})")
    # eager decoding: a compiled step runs no forward hooks, and the hooks are the attribution
    # (section 7 times the default's compiled response)
    engine = build_default_engine({**params, "compile": "off"})
    image = tabletop_image(240, 320)
    frames_n = frames or (3 if quick else 20)
    timer = instrument(engine)
    try:
        one_frame(engine, timer, image, ("warmup", 0), publisher)  # first-call costs
        frames = [one_frame(engine, timer, image, ("frame", i), publisher)
                  for i in range(frames_n)]
    finally:
        timer.remove()
    engine.prefetch = False  # as timed above, for the what-ifs and cProfile (one thread)
    out = summarise(frames)
    out["params"] = {k: params.get(k) for k in ("model", "sam_model", "device", "dtype",
                                                "max_new_tokens", "mode", "publish_overlay")}
    out["image"] = list(image.shape)
    out["text_sample"] = frames[-1]["_result"].text
    out["published"] = publisher is not None
    out["masks"] = [p.mask for p in frames[-1]["_result"].phrases]
    out["what_if"] = what_if(engine, image, ("frame", frames_n - 1), frames[-1]["_result"],
                             reps=3 if quick else 10)
    if profile and not quick:
        out["profile_top"] = profile_frame(engine, image, ("profile", 0), PROMPT)
        out["profile_buckets_ms"] = profile_buckets(engine, image, ("profile", 1), PROMPT)
    del engine.prefetch  # the class default again, for the sections that reuse the engine
    out["_engine"] = engine  # reused by the embedding measurement; not serialised
    return out


def run_breakdown_mid(quick: bool, publisher: Publisher | None = None) -> dict | None:
    """The same pipeline with the mid-size LMM in place of the tiny one (a realistic ratio)."""
    from bench.models import mid_adapter

    adapter = mid_adapter()
    engine = build_default_engine(lmm=adapter)
    image = tabletop_image(240, 320)
    timer = instrument(engine)
    frames_n = 1 if quick else 3
    try:
        one_frame(engine, timer, image, ("mid-warmup", 0), publisher)
        frames = [one_frame(engine, timer, image, ("mid", i), publisher) for i in range(frames_n)]
    finally:
        timer.remove()
    out = summarise(frames)
    out["text_sample"] = frames[-1]["_result"].text
    return out


__all__ = ["run_breakdown", "run_breakdown_mid", "sim_params", "ForwardTimer", "np"]
