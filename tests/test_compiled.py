"""Compiled decoding (static KV cache + torch.compile) keeps the attention capture exact.

Cost: the graph-break check and the aot_eager runs trace the tiny model's step in a few seconds
each; the inductor test compiles C++ kernels (about 1.5 min on a busy 2-core CPU, marked slow);
the CUDA test runs only where a GPU is.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ros_ground.ahead import usable_cores
from ros_ground.lmm import load_lmm
from ros_ground.lmm.compiled import CompiledDecoder, compile_enabled

PROMPT = "Describe the image in detail."
TOKENS = 24


@pytest.fixture(scope="module")
def eager():
    return load_lmm("tiny", device="cpu", compile="off")


@pytest.fixture(scope="module")
def image():
    return np.random.RandomState(0).randint(0, 255, (48, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def reference(eager, image):
    return eager.generate(image, PROMPT, max_new_tokens=TOKENS)


def _compiled(backend: str, device: str = "cpu", dtype: str = "float32"):
    adapter = load_lmm("tiny", device=device, dtype=dtype, compile="on")
    adapter.decoder.backend = backend
    return adapter


def _assert_same(gen, reference, atol):
    assert gen.token_ids == reference.token_ids
    assert gen.image_maps.shape == reference.image_maps.shape
    np.testing.assert_allclose(gen.image_maps, reference.image_maps, atol=atol, rtol=0)
    np.testing.assert_allclose(gen.prompt_maps, reference.prompt_maps, atol=atol, rtol=0)


def test_compile_setting():
    assert not compile_enabled("auto", torch.device("cpu"))
    assert compile_enabled("auto", torch.device("cuda"))
    assert compile_enabled("on", torch.device("cpu"))
    assert not compile_enabled("off", torch.device("cuda"))
    with pytest.raises(ValueError, match="compile must be one of"):
        compile_enabled("yes", torch.device("cpu"))
    assert load_lmm("tiny", device="cpu").decoder is None


def test_decode_step_has_no_graph_break(eager, image):
    decoder = CompiledDecoder(eager.model, eager.image_token_id)
    inputs, layout, _ = eager.prepare(image, PROMPT)
    length = inputs["input_ids"].shape[1]
    decoder.prepare_cache(length + 2)
    with torch.no_grad():
        explained = torch._dynamo.explain(decoder.step)(
            torch.tensor([[5]]), torch.tensor([length]), layout.positions)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert explained.graph_count == 1


def test_uncompiled_steps_equal_eager_capture(eager, image, reference):
    # the static cache and the kwarg capture alone, without compilation
    decoder = CompiledDecoder(eager.model, eager.image_token_id)
    inputs, layout, _ = eager.prepare(image, PROMPT)
    ids, maps, _ = decoder.generate(inputs, layout.positions, TOKENS, {2}, compiled=False)
    assert ids == reference.token_ids
    np.testing.assert_allclose(maps.numpy().reshape(reference.image_maps.shape),
                               reference.image_maps, atol=1e-5, rtol=0)


def test_compiled_generate_equals_eager(image, reference):
    adapter = _compiled("aot_eager")
    streamed = []
    gen = adapter.generate(image, PROMPT, max_new_tokens=TOKENS,
                           on_token=lambda tid, text, partial: streamed.append(partial()))
    _assert_same(gen, reference, atol=1e-5)
    assert len(streamed) == len(gen.token_ids)
    np.testing.assert_allclose(streamed[-1].image_maps, reference.image_maps, atol=1e-5)
    # a second request reuses the compiled step and the reset cache: same answer
    _assert_same(adapter.generate(image, PROMPT, max_new_tokens=TOKENS), reference, atol=1e-5)


def test_compiled_generate_stops_on_cancel(image, reference):
    adapter = _compiled("aot_eager")
    seen = []
    gen = adapter.generate(image, PROMPT, max_new_tokens=TOKENS,
                           on_token=lambda tid, text, partial: seen.append(tid),
                           should_stop=lambda: len(seen) >= 3)
    assert gen.canceled and gen.token_ids == reference.token_ids[:3]
    assert gen.image_maps.shape[0] == 3


@pytest.mark.slow
def test_inductor_compiled_equals_eager(image, reference):
    gen = _compiled("inductor").generate(image, PROMPT, max_new_tokens=TOKENS)
    _assert_same(gen, reference, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_equal_eager_fp16(image):
    """CUDA graphs (inductor, reduce-overhead) in fp16 decode the eager tokens, and their maps are
    as close to the float32 maps as eager fp16's are. Inductor fuses the fp16 ops, so its
    rounding is not eager's: the maps are compared with the float32 ones, not with eager fp16's
    (they differ from those by up to 6.4e-3). Measured on an H200, against float32, on maps of
    up to 0.245: image maps compiled 3.6e-3 / 8.1e-3, eager 6.0e-3 / 8.4e-3 (two images),
    prompt maps 0.021 / 0.015 both. A wrong layer, head or a stale graph replay is off by the
    maps' own size; the second image checks that a replay reads the new frame."""
    exact = load_lmm("tiny", device="cuda", dtype="float32", compile="off")
    eager = load_lmm("tiny", device="cuda", dtype="float16", compile="off")
    adapter = _compiled("inductor", device="cuda", dtype="float16")  # reduce-overhead
    other = np.ascontiguousarray(image[::-1, ::-1])
    for frame in (image, other, image):  # the second and third runs replay the recorded graphs
        reference = eager.generate(frame, PROMPT, max_new_tokens=TOKENS)
        truth = exact.generate(frame, PROMPT, max_new_tokens=TOKENS)
        gen = adapter.generate(frame, PROMPT, max_new_tokens=TOKENS)
        assert gen.token_ids == reference.token_ids
        steps = next((i for i, (a, b) in enumerate(zip(truth.token_ids, gen.token_ids))
                      if a != b), len(gen.token_ids))
        assert steps >= 1
        for name, rows in (("image_maps", steps), ("prompt_maps", None)):  # prompt: the prefill's
            want = getattr(truth, name)[:rows]
            eager_error = np.abs(getattr(reference, name)[:rows] - want).max()
            error = np.abs(getattr(gen, name)[:rows] - want).max()
            print(f"{name}: steps {steps}, max {want.max():.3g}, eager fp16 error "
                  f"{eager_error:.3g}, compiled fp16 error {error:.3g}")
            assert error <= 4 * eager_error + 1e-4, name


def test_warm_up_compiles_once_and_a_request_that_does_not_fit_decodes_eagerly(
        image, eager, reference):
    from torch._dynamo.utils import counters

    adapter = _compiled("aot_eager")
    assert load_lmm("tiny", device="cpu").warm_up(PROMPT, TOKENS) == 0  # compile off: nothing
    torch.compiler.reset()  # else an earlier test's compiled step is reused, nothing compiles
    graphs = counters["stats"]["unique_graphs"]
    length = adapter.warm_up(PROMPT, TOKENS)
    decoder = adapter.decoder
    assert counters["stats"]["unique_graphs"] == graphs + 1  # compiled here, once
    inputs, layout, _ = adapter.prepare(image, PROMPT)
    image_tokens = int(layout.positions.numel())
    assert length == decoder.cache_length and length % 256 == 0
    assert length >= inputs["input_ids"].shape[1] + TOKENS
    _assert_same(adapter.generate(image, PROMPT, max_new_tokens=TOKENS), reference, atol=1e-5)
    # past the compiled cache: the eager path's answer, nothing compiled again
    longer = length - inputs["input_ids"].shape[1] + 8
    long_reference = eager.generate(image, PROMPT, max_new_tokens=longer)
    assert len(long_reference.token_ids) > TOKENS  # it runs past the compiled cache
    assert not decoder.fits(length + 8, image_tokens)
    assert not decoder.fits(length, image_tokens + 1)  # another image size: static shapes
    _assert_same(adapter.generate(image, PROMPT, max_new_tokens=longer), long_reference,
                 atol=1e-5)
    assert decoder.eager_requests == 1 and decoder.cache_length == length
    _assert_same(adapter.generate(image, PROMPT, max_new_tokens=TOKENS), reference, atol=1e-5)
    assert decoder.eager_requests == 1
    assert counters["stats"]["unique_graphs"] == graphs + 1


@pytest.mark.skipif(usable_cores() < 2, reason="needs two threads to differ from one")
def test_engine_warm_up_compiles_for_its_requests_thread_count(image):
    """The decode step is guarded on torch's thread count, and a request runs under the
    engine's `torch_threads`: compiled under the process's count, the first request compiled it
    again, beside the work ahead on the worker thread (ahead.py says what that broke)."""
    from torch._dynamo.utils import counters

    from ros_ground.engine import build_engine

    engine = build_engine(model="tiny", sam_model="tiny", device="cpu", compile="on",
                          torch_threads=1)
    engine.lmm.decoder.backend = "aot_eager"
    torch.compiler.reset()
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the process's count differs from the requests'
    try:
        graphs = counters["stats"]["unique_graphs"]
        engine.warm_up(PROMPT, TOKENS)
        assert counters["stats"]["unique_graphs"] == graphs + 1
        engine.ground(image, PROMPT, mode="point", image_key="frame")
        assert counters["stats"]["unique_graphs"] == graphs + 1  # nothing compiled again
        assert engine.lmm.decoder.eager_requests == 0 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_release_lets_the_next_decoder_compile(image, reference):
    # dynamo keeps compiled code per function, and a fullgraph compile past its recompile
    # limit raises: a node that configures again and again must not reach it
    torch.compiler.reset()
    with torch._dynamo.config.patch(recompile_limit=1):
        for tokens in (TOKENS, TOKENS + 300):  # another cache length: another graph
            adapter = _compiled("aot_eager")
            adapter.warm_up(PROMPT, tokens)
            _assert_same(adapter.generate(image, PROMPT, max_new_tokens=TOKENS), reference,
                         atol=1e-5)
            assert adapter.decoder.eager_requests == 0
            adapter.decoder.release()
            assert adapter.decoder.cache_length == 0
