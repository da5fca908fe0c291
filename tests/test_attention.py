"""Attention capture equals eager attention, keeps tokens identical and stays small."""

import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from ros_ground.lmm.attention import (
    CAPTURE_IMPLEMENTATION,
    AttentionCapture,
    CaptureComplete,
    RowsCapture,
    image_probabilities,
    install_capture,
    last_row_image_attention,
    last_rows_scores,
)
from ros_ground.lmm.tiny import build_tiny_lmm

NEW_TOKENS = 8


def _inputs(processor, seed=0):
    msgs = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "Describe the image in detail."}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    image = np.random.RandomState(seed).randint(0, 255, (48, 80, 3), dtype=np.uint8)
    return processor(images=image, text=text, return_tensors="pt")


def _greedy(model, inputs):
    with torch.no_grad():
        # min_new_tokens only masks EOS (the same in every run), so each run has NEW_TOKENS steps
        return model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                              do_sample=False)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2)])
def test_capture_equals_eager_and_keeps_tokens(heads, kv_heads):
    model, processor = build_tiny_lmm(0, heads, kv_heads)
    inputs = _inputs(processor)
    reference = _greedy(model, inputs)  # plain sdpa

    install_capture(model)
    assert model.config.text_config._attn_implementation == CAPTURE_IMPLEMENTATION
    assert model.config.vision_config._attn_implementation == "sdpa"
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    with AttentionCapture(positions) as capture:
        generated = _greedy(model, inputs)
    assert torch.equal(generated, reference)
    maps = capture.maps()
    assert maps.shape == (NEW_TOKENS, 64) and maps.dtype == torch.float32

    # eager attention's own weights: generate with output_attentions, last query row per step
    model.set_attn_implementation({"text_config": "eager"})
    with torch.no_grad():
        eager = model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                               do_sample=False, output_attentions=True,
                               return_dict_in_generate=True)
    assert torch.equal(eager.sequences, reference)
    expected = torch.stack([
        torch.stack(step)[:, 0, :, -1, :][..., positions].float().mean(dim=(0, 1))
        for step in eager.attentions  # per step: layers x [1, heads, q, k]
    ])
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=0)
    assert torch.all(maps.sum(-1) < 1.0 + 1e-6)  # raw softmax over the whole context


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2)])
def test_rows_capture_of_a_teacher_forced_answer_equals_generation(heads, kv_heads):
    """One pass over prompt + answer gives every step's map as the decode loop recorded it;
    left padding (a real mask instead of SDPA's implicit causal one) changes nothing."""
    model, processor = build_tiny_lmm(0, heads, kv_heads)
    install_capture(model)
    inputs = _inputs(processor)
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    with AttentionCapture(positions) as capture, torch.no_grad():
        # an answer to feed back holds no image placeholder (the adapter suppresses it too)
        generated = model.generate(**inputs, max_new_tokens=NEW_TOKENS,
                                   min_new_tokens=NEW_TOKENS, do_sample=False,
                                   suppress_tokens=[model.config.image_token_id])
    prompt_len = inputs["input_ids"].shape[1]
    forced = dict(inputs, input_ids=generated[:, :-1],
                  attention_mask=torch.ones_like(generated[:, :-1]))
    with torch.no_grad(), RowsCapture(positions, rows=NEW_TOKENS) as rows:
        model(**forced, use_cache=False)
    torch.testing.assert_close(rows.maps()[0], capture.maps(), atol=1e-5, rtol=0)

    pad = torch.full((1, 1), 3, dtype=generated.dtype)
    padded = dict(inputs, input_ids=torch.cat([pad, generated[:, :-1]], 1),
                  attention_mask=torch.cat([torch.zeros_like(pad), forced["attention_mask"]], 1))
    with torch.no_grad(), RowsCapture(positions + 1, rows=NEW_TOKENS) as shifted:
        model(**padded, use_cache=False)
    torch.testing.assert_close(shifted.maps()[0], capture.maps(), atol=1e-5, rtol=0)
    assert prompt_len + NEW_TOKENS - 1 == forced["input_ids"].shape[1]


def test_rows_capture_stops_the_pass_after_the_last_layer():
    """With `layers`, the pass ends once the last layer's scores are read (no LM head) and the
    maps equal a full pass's."""
    model, processor = build_tiny_lmm(0, 4, 2)
    install_capture(model)
    inputs = _inputs(processor)
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    with torch.no_grad(), RowsCapture(positions, rows=4) as full:
        model(**inputs, use_cache=False)
    heads = []
    hook = model.lm_head.register_forward_hook(lambda *args: heads.append(1))
    try:
        with torch.no_grad(), RowsCapture(positions, rows=4, layers=3) as early, \
                pytest.raises(CaptureComplete):
            model(**inputs, use_cache=False)
    finally:
        hook.remove()
    assert not heads
    torch.testing.assert_close(early.maps(), full.maps(), atol=0, rtol=0)


def test_rows_capture_reads_exactly_one_pass():
    model, processor = build_tiny_lmm(0)
    install_capture(model)
    inputs = _inputs(processor)
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    too_many = inputs["input_ids"].shape[1] + 1
    with torch.no_grad(), RowsCapture(positions, rows=too_many), \
            pytest.raises(ValueError, match="at least"):
        model(**inputs, use_cache=False)
    with torch.no_grad(), RowsCapture(positions, rows=2) as once:
        model(**inputs, use_cache=False)
        with pytest.raises(ValueError, match="seen before: True"):
            model(**inputs, use_cache=False)
    assert once.maps().shape == (1, 2, positions.numel())  # the first pass's rows
    with RowsCapture(positions, rows=1) as idle, pytest.raises(RuntimeError, match="no attention"):
        idle.maps()


def test_capture_retains_only_step_vectors():
    model, processor = build_tiny_lmm(0)
    install_capture(model)
    inputs = _inputs(processor)
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    with AttentionCapture(positions) as capture:
        _greedy(model, inputs)
    maps = capture.maps()
    assert maps.shape == (NEW_TOKENS, positions.numel())
    assert all(s.shape == (positions.numel(),) and s.dtype == torch.float32 for s in capture.steps)

    def tensors(obj):
        if isinstance(obj, torch.Tensor):
            yield obj
        elif isinstance(obj, dict):
            for v in obj.values():
                yield from tensors(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                yield from tensors(v)

    held = sum(t.numel() for t in tensors(vars(capture)))
    # the step vectors plus the position index (and its device copy, dropped on exit)
    assert held <= (NEW_TOKENS + 2) * positions.numel()


def test_no_capture_outside_context_and_per_thread():
    model, processor = build_tiny_lmm(0)
    install_capture(model)
    inputs = _inputs(processor)
    positions = (inputs["input_ids"][0] == model.config.image_token_id).nonzero().flatten()
    with torch.no_grad():
        model(**inputs)  # no active capture: nothing recorded anywhere, no error
    with AttentionCapture(positions) as capture:
        worker = threading.Thread(target=lambda: _greedy(model, inputs))
        worker.start()
        worker.join()
        assert capture.maps().shape[0] == 0  # the other thread's forwards are not captured
        with torch.no_grad():
            model(**inputs)
    assert capture.maps().shape[0] == 1


def _repeat_kv_reference(query, key, mask, scaling, positions):
    rep = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(rep, dim=1)
    scores = (query[:, :, -1:, :] @ k.transpose(-1, -2)) * scaling  # [1, H, 1, K]
    if mask is not None:
        m = mask[:, :, -1:, :]
        scores = scores.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else scores + m
    probs = scores.softmax(-1)[0, :, 0, :]
    return probs[:, positions].sum(0)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "bool_per_head"])
def test_last_row_matches_reference_with_masks(mask_kind):
    gen = torch.Generator().manual_seed(0)
    heads, kv, q_len, k_len, dim = 8, 2, 3, 20, 16
    query = torch.randn(1, heads, q_len, dim, generator=gen)
    key = torch.randn(1, kv, k_len, dim, generator=gen)
    positions = torch.tensor([2, 3, 4, 5, 9])
    mask = None
    if mask_kind != "none":
        allowed = torch.rand(1, 1, q_len, k_len, generator=gen) > 0.3
        allowed[..., -1] = True
        if mask_kind == "bool_per_head":
            allowed = allowed.expand(1, heads, q_len, k_len).clone()
            allowed[:, 1, -1, 3] = False
        mask = allowed if mask_kind.startswith("bool") else \
            torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
    module = torch.nn.Module()
    got = last_row_image_attention(module, query, key, mask, 0.25, positions)
    torch.testing.assert_close(got, _repeat_kv_reference(query, key, mask, 0.25, positions))


def test_sliding_window_without_mask_and_softcap_refused():
    gen = torch.Generator().manual_seed(1)
    query = torch.randn(1, 4, 1, 8, generator=gen)
    key = torch.randn(1, 4, 12, 8, generator=gen)
    positions = torch.arange(12)
    module = torch.nn.Module()
    module.sliding_window = 5
    got = last_row_image_attention(module, query, key, None, 0.3, positions)
    window = torch.zeros(1, 1, 1, 12, dtype=torch.bool)
    window[..., 12 - 5:] = True
    torch.testing.assert_close(got, _repeat_kv_reference(query, key, window, 0.3, positions))
    assert torch.all(got[:7] == 0)

    module.attn_logit_softcapping = 50.0
    with pytest.raises(NotImplementedError, match="soft-capping"):
        last_row_image_attention(module, query, key, None, 0.3, positions)


def _rows_reference(query, key, allowed, scaling, positions):
    rep = query.shape[1] // key.shape[1]
    scores = (query @ key.repeat_interleave(rep, dim=1).transpose(-1, -2)) * scaling  # [1,H,q,K]
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return probs[..., positions]  # [B, H, q, N]


@pytest.mark.parametrize("mask_kind", ["causal", "window", "bool", "float"])
def test_last_rows_match_reference(mask_kind):
    gen = torch.Generator().manual_seed(2)
    heads, kv, q_len, k_len, dim, rows, batch = 8, 2, 6, 20, 16, 4, 3
    query = torch.randn(batch, heads, q_len, dim, generator=gen)
    key = torch.randn(batch, kv, k_len, dim, generator=gen)
    positions = torch.tensor([0, 2, 3, 9, 15])
    module = torch.nn.Module()
    q_pos = torch.arange(k_len - q_len, k_len)[:, None]
    allowed = (torch.arange(k_len)[None, :] <= q_pos)[None, None]  # causal, [1, 1, q, K]
    mask = None
    if mask_kind == "window":
        module.sliding_window = 7
        allowed = allowed & (torch.arange(k_len)[None, :] > q_pos - 7)
    elif mask_kind in ("bool", "float"):
        allowed = allowed & (torch.rand(batch, 1, q_len, k_len, generator=gen) > 0.3)
        allowed[..., 0] = True
        mask = allowed if mask_kind == "bool" else \
            torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
    scores = last_rows_scores(module, query, key, mask, 0.25, rows)
    assert scores.shape == (batch, kv, heads // kv, rows, k_len)
    got = image_probabilities(scores, positions).reshape(batch, heads, rows, -1)
    want = _rows_reference(query, key, allowed, 0.25, positions)[:, :, -rows:]
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("heads,kv_heads", [(4, 4), (4, 2)])
def test_prefill_prompt_rows_equal_eager(heads, kv_heads):
    """The prompt's text rows read during the prefill equal eager attention's rows, and the
    decode maps and tokens are unchanged by reading them."""
    model, processor = build_tiny_lmm(0, heads, kv_heads)
    inputs = _inputs(processor)
    ids = inputs["input_ids"][0]
    positions = (ids == model.config.image_token_id).nonzero().flatten()
    rows = torch.arange(int(positions.max()) + 1, ids.numel())  # the text after the image
    install_capture(model)
    with AttentionCapture(positions) as plain:
        reference = _greedy(model, inputs)
    with AttentionCapture(positions, prompt_positions=rows) as capture:
        generated = _greedy(model, inputs)
    assert torch.equal(generated, reference)
    # the prefill's last row is read in the prompt rows' product: equal to float rounding
    torch.testing.assert_close(capture.maps()[0], plain.maps()[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(capture.maps()[1:], plain.maps()[1:], atol=0, rtol=0)
    got = capture.prompt_maps()
    assert got.shape == (rows.numel(), positions.numel()) and got.dtype == torch.float32

    model.set_attn_implementation({"text_config": "eager"})
    with torch.no_grad():
        eager = model(**inputs, output_attentions=True)
    weights = torch.stack(eager.attentions)[:, 0]  # [layers, heads, q, k]
    expected = weights[:, :, rows][..., positions].float().mean(dim=(0, 1))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    # the last prompt row is the query that emits the first token: decode step 0
    torch.testing.assert_close(got[-1], capture.maps()[0], atol=1e-6, rtol=0)
    held = capture._prompt_sum.numel()
    assert held == rows.numel() * positions.numel()  # O(prompt rows x image tokens)


def test_prompt_maps_need_a_prefill():
    with AttentionCapture(torch.arange(4), prompt_positions=torch.tensor([5])) as idle, \
            pytest.raises(RuntimeError, match="no prefill"):
        idle.prompt_maps()
    assert AttentionCapture(torch.arange(4)).prompt_maps().shape == (0, 4)
