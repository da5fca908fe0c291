"""Random-weight LLaVA models built from config, and the three generation variants compared.

- `mid`: 8 Llama layers, hidden 1024, 16 heads, vocabulary 32064, with a 2-layer CLIP tower at
  336 px / patch 14, so the prompt holds 576 image tokens as in LLaVA-1.5.
- `llava7b`: the LLaVA-1.5-7B shapes (Llama-2-7B + CLIP ViT-L/14-336), for a GPU, in fp16.
- `tiny`: ros_ground's in-repo model (`ros_ground.lmm.tiny.build_tiny_lmm`), 64 image tokens.

Variants of one greedy generation with a fixed token count (min_new_tokens = max_new_tokens):
`plain` (stock SDPA attention), `capture` (ros_ground's attention capture beside SDPA, inside an
`AttentionCapture`, i.e. what LMMAdapter.generate does) and `eager` (eager attention with
`output_attentions=True`, the usual way to read attention).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch

VARIANTS = ("plain", "capture", "eager")
IMAGE_TOKEN_ID = 32000


def mid_config(image_token_id: int = IMAGE_TOKEN_ID, initializer_range: float = 0.2):
    """initializer_range 0.2 (not 0.02) so the random decoder's text varies with the image
    instead of repeating one token; the compute is the same."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=256,
                              intermediate_size=1024, num_hidden_layers=2, num_attention_heads=4,
                              projection_dim=256)
    text = LlamaConfig(vocab_size=32064, hidden_size=1024, intermediate_size=2816,
                       num_hidden_layers=8, num_attention_heads=16, num_key_value_heads=16,
                       max_position_embeddings=2048, pad_token_id=0, bos_token_id=1,
                       eos_token_id=2, initializer_range=initializer_range)
    return LlavaConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                       vision_feature_select_strategy="default", vision_feature_layer=-2,
                       projector_hidden_act="gelu", image_seq_length=576, pad_token_id=0)


def llava7b_config(image_token_id: int = IMAGE_TOKEN_ID):
    """llava-hf/llava-1.5-7b-hf's architecture (no weights needed)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=1024,
                              intermediate_size=4096, num_hidden_layers=24,
                              num_attention_heads=16, projection_dim=768, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                       num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                       max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=0,
                       bos_token_id=1, eos_token_id=2)
    return LlavaConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                       vision_feature_select_strategy="default", vision_feature_layer=-2,
                       projector_hidden_act="gelu", image_seq_length=576, pad_token_id=0)


@dataclass
class BenchModel:
    name: str
    model: object
    inputs: dict  # input_ids, attention_mask, pixel_values on the model's device
    image_positions: torch.Tensor
    device: torch.device
    dtype: torch.dtype
    build_s: float = 0.0
    adapter: object = None  # the LMMAdapter for `tiny`


def build_random_llava(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32,
                       prompt_tokens: int = 40, seed: int = 0, **config_kwargs) -> BenchModel:
    """`mid` or `llava7b` from config with random weights, plus a fixed one-image prompt."""
    from transformers import LlavaForConditionalGeneration

    config = {"mid": mid_config, "llava7b": llava7b_config}[name](**config_kwargs)
    dev = torch.device(device)
    t0 = time.perf_counter()
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            with dev:
                model = LlavaForConditionalGeneration(config)
        finally:
            torch.set_default_dtype(previous)
    model = model.to(dev, dtype).eval()
    build_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(seed)
    n_image = config.image_seq_length
    text = torch.randint(3, IMAGE_TOKEN_ID, (1, prompt_tokens), generator=gen)
    ids = torch.cat([torch.tensor([[1]]), torch.full((1, n_image), IMAGE_TOKEN_ID), text], dim=1)
    size = config.vision_config.image_size
    pixels = torch.randn(1, 3, size, size, generator=gen)
    inputs = {"input_ids": ids.to(dev), "attention_mask": torch.ones_like(ids).to(dev),
              "pixel_values": pixels.to(dev, dtype)}
    positions = (ids[0] == IMAGE_TOKEN_ID).nonzero().flatten()
    return BenchModel(name, model, inputs, positions, dev, dtype, build_s)


def build_tiny(image=None, prompt: str = "Describe the scene.") -> BenchModel:
    """ros_ground's tiny LMM through its adapter (capture installed), with the adapter's inputs."""
    from bench.common import tabletop_image
    from ros_ground.lmm import load_lmm

    t0 = time.perf_counter()
    adapter = load_lmm("tiny", device="cpu", dtype="float32")
    build_s = time.perf_counter() - t0
    image = tabletop_image() if image is None else image
    inputs, layout, _ = adapter.prepare(image, prompt)
    return BenchModel("tiny", adapter.model, dict(inputs), layout.positions.clone(),
                      adapter.device, adapter.dtype, build_s, adapter)


def set_variant(model, variant: str) -> None:
    """Switch the text decoder's attention; the vision tower keeps its SDPA."""
    from ros_ground.lmm.attention import CAPTURE_IMPLEMENTATION, register_capture

    register_capture()
    impl = {"plain": "sdpa", "capture": CAPTURE_IMPLEMENTATION, "eager": "eager",
            "adapter": CAPTURE_IMPLEMENTATION}[variant]
    model.set_attn_implementation({"text_config": impl})


def fixed_generation_config(model, new_tokens: int, eager: bool = False):
    from transformers import GenerationConfig

    base = model.generation_config
    eos = base.eos_token_id if base.eos_token_id is not None else 2
    pad = base.pad_token_id if base.pad_token_id is not None else 0
    return GenerationConfig(
        max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, num_beams=1,
        eos_token_id=eos, pad_token_id=pad, temperature=None, top_p=None, top_k=None,
        output_attentions=eager, return_dict_in_generate=eager,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generate(bm: BenchModel, variant: str, new_tokens: int) -> tuple[float, int, object]:
    """One greedy generation of exactly `new_tokens`; (seconds, tokens generated, extra).

    `extra` is the captured maps (capture), the attentions tuple (eager) or None.
    `adapter` (tiny only) runs the whole LMMAdapter.generate path (processor included).
    """
    from transformers import DynamicCache

    from ros_ground.lmm.attention import AttentionCapture

    set_variant(bm.model, variant)
    prompt_len = bm.inputs["input_ids"].shape[1]
    if variant == "adapter":
        return _adapter_generate(bm, new_tokens)
    config = fixed_generation_config(bm.model, new_tokens, eager=variant == "eager")
    extra = None
    _sync(bm.device)
    t0 = time.perf_counter()
    with torch.no_grad():
        if variant == "capture":
            with AttentionCapture(bm.image_positions) as capture:
                out = bm.model.generate(**bm.inputs, generation_config=config,
                                        past_key_values=DynamicCache())
            extra = capture.maps()
        else:
            out = bm.model.generate(**bm.inputs, generation_config=config,
                                    past_key_values=DynamicCache())
    _sync(bm.device)
    seconds = time.perf_counter() - t0
    if variant == "eager":
        extra = out.attentions
        out = out.sequences
    return seconds, int(out.shape[1] - prompt_len), extra


def _adapter_generate(bm: BenchModel, new_tokens: int):
    adapter = bm.adapter
    original = adapter._generation_config

    def forced(config_cls, max_new_tokens):  # the adapter's config, with a fixed token count
        config = original(config_cls, max_new_tokens)
        config.min_new_tokens = max_new_tokens
        return config

    from bench.common import tabletop_image

    adapter._generation_config = forced
    try:
        t0 = time.perf_counter()
        gen = adapter.generate(tabletop_image(), "Describe the scene.", max_new_tokens=new_tokens)
        seconds = time.perf_counter() - t0
    finally:
        del adapter._generation_config
    return seconds, len(gen.token_ids), gen.image_maps


def mid_adapter():
    """An LMMAdapter over the mid-size random LLaVA with a LLaVA-1.5-style processor (336 px,
    576 image tokens) whose word-level tokenizer covers the model's 32064-entry vocabulary."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    from ros_ground.lmm import LMMAdapter
    from ros_ground.lmm.tiny import CHAT_TEMPLATE

    tokenizer = _wide_tokenizer(32064)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 336},
                                         crop_size={"height": 336, "width": 336},
                                         do_center_crop=True)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=14, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    bm = build_random_llava("mid")
    bm.model.config.image_token_id = image_token_id
    bm.model.generation_config.eos_token_id = tokenizer.eos_token_id
    bm.model.generation_config.pad_token_id = tokenizer.pad_token_id
    return LMMAdapter("mid-random", bm.model, processor, torch.device("cpu"), torch.float32)


def _wide_tokenizer(vocab_size: int):
    """The tiny model's tabletop word tokenizer, padded to `vocab_size` with two-word tokens
    ("red mug") so every id a random model emits decodes to tabletop words spaCy can parse."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ros_ground.lmm.tiny import SPECIAL_TOKENS, build_tokenizer

    base = build_tokenizer()
    vocab = dict(sorted(base.get_vocab().items(), key=lambda kv: kv[1]))
    words = [w for w in vocab if w not in SPECIAL_TOKENS and w.isalpha()]
    fillers = itertools.chain(itertools.product(words, repeat=2),
                              itertools.product(words, repeat=3))
    for combo in fillers:  # fillers are multi-word tokens ("red mug"): decoded text stays words
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(" ".join(combo), len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"},
        chat_template=base.chat_template, padding_side="left")
