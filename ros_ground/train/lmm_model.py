"""The embedded LMM's architecture: word-level tokenizer, squash-resize processor, small LLaVA.

A real `LlavaForConditionalGeneration` (CLIP-ViT vision tower -> 2-layer MLP projector -> Llama
decoder), only small, built from configs and trained from scratch by `ros_ground.train.lmm`.
The tokenizer is built with the `tokenizers` library: one token per word or punctuation mark of
the simulator's language (a multi-word category name is one), so spaCy's noun chunks map onto
whole tokens.
"""

from __future__ import annotations

import re

import torch

# the tiny model's conventions: LLaVA-1.5's conversation format and the same special tokens
from ros_ground.lmm.tiny import CHAT_TEMPLATE, IMAGE_TOKEN, SPECIAL_TOKENS, seeded_llava  # noqa: E402, F401
from ros_ground.train.configs import LMMArch

# Prompts the model is trained to answer with the scene description (the first is the default
# prompt of config/sim.yaml and of `ros-ground eval`).
DESCRIBE_PROMPTS = (
    "Describe the scene.",
    "Describe the image in detail.",
    "Describe the image.",
    "What is on the table?",
    "What do you see?",
)

# Words of the chat format, the prompts above and the answers composed in training, beyond
# those of the simulator's own texts (ros_ground.sim.language).
_EXTRA_WORDS = (
    "user assistant : describe the scene image in detail what is on table do you see where "
    "it colours objects . , ? ! ; ' - yes no"
)


def object_words() -> list[str]:
    """Multi-word category names that are ONE token each: "soccer ball", "teddy bears".

    Colours stay separate tokens, so "a red mug" is "a", "red", "mug": the query that emits
    "mug" already knows the colour it said and must find the object of that colour to tell its
    category, so its attention (part of the phrase's map, see `phrase_tokens`) lands on it. A
    single "red mug" token was chosen from the presence of every object at once and its
    attention spread over all of them (0.32 peak hit rate in the first shipped model's card).
    """
    from ros_ground.sim.assets import CATEGORIES
    from ros_ground.sim.language import PLURALS

    words = [f for category in CATEGORIES for f in (category, PLURALS[category]) if " " in f]
    return sorted(set(words), key=lambda w: (-len(w), w))


def pre_tokenizer_pattern() -> str:
    """Multi-word category names first (longest first), then words, then punctuation runs."""

    return "|".join([*(re.escape(w) for w in object_words()), r"\w+", r"[^\w\s]+"])


def _split(text: str) -> list[str]:
    """The pre-tokenizer's split of lower-cased text (same pattern, Python's re)."""

    return re.findall(pre_tokenizer_pattern(), text.lower())


def vocabulary_words() -> list[str]:
    """Every token the tokenizer knows, sorted: multi-word category names, the simulator's
    words, the chat format's words."""
    from ros_ground.sim.assets import CATEGORIES
    from ros_ground.sim.language import COLORS, NUMBER_WORDS, PLURALS, RELATIONS

    text = " ".join([
        *COLORS, *PLURALS, *PLURALS.values(), *NUMBER_WORDS, *RELATIONS, *CATEGORIES,
        # templates of ros_ground.sim.language (descriptions, referring expressions, questions)
        "a an and on a wooden table the leftmost rightmost closest to the camera farthest from "
        "what is how many are there none nothing is there on the table which object is closest "
        "to the camera which object is furthest to the left colour",
        _EXTRA_WORDS,
    ])
    words = set(_split(text)) | set(object_words())
    for w in list(words):  # parts of multi-word mentions stay known on their own
        words.update(w.split())
    return sorted(words)


def build_tokenizer(words: list[str] | None = None):
    """Word-level fast tokenizer: lower-cased category names, words and punctuation marks.

    Decoding joins tokens with spaces and removes the space before punctuation (WordPiece
    decoder with cleanup), so generated text reads "a red mug, a blue cube on a wooden table."
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = vocabulary_words() if words is None else list(words)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pre_tokenizer_pattern()), behavior="removed",
                                             invert=True)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
        pad_token="<pad>", extra_special_tokens={"image_token": IMAGE_TOKEN},
        chat_template=CHAT_TEMPLATE, padding_side="right",
    )


def build_processor(arch: LMMArch, tokenizer=None):
    """LlavaProcessor whose CLIPImageProcessor squash-resizes the whole frame to SxS.

    No centre crop: a 320x240 camera frame keeps its sides (geometry fit "resize"), at the cost
    of a 4:3 -> 1:1 aspect change that the vision tower learns with.
    """
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        do_resize=True, size={"height": arch.image_size, "width": arch.image_size},
        do_center_crop=False, crop_size={"height": arch.image_size, "width": arch.image_size},
        resample=3,  # bicubic
        do_rescale=True, do_normalize=True, do_convert_rgb=True,
    )
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer or build_tokenizer(),
        patch_size=arch.patch_size, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE,
    )


def build_config(arch: LMMArch, tokenizer):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        image_size=arch.image_size, patch_size=arch.patch_size, hidden_size=arch.vision_hidden,
        intermediate_size=arch.vision_mlp, num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads, projection_dim=arch.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=arch.text_hidden,
        intermediate_size=arch.text_mlp, num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads, num_key_value_heads=arch.text_kv_heads,
        max_position_embeddings=arch.max_positions, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False, rope_theta=10000.0,
    )
    grid = arch.image_size // arch.patch_size
    return LlavaConfig(
        vision_config=vision, text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default", vision_feature_layer=arch.vision_feature_layer,
        projector_hidden_act="gelu", image_seq_length=grid * grid,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_lmm(arch: LMMArch | None = None, seed: int = 0):
    """(model, processor) with fresh weights; equal seeds give equal weights (global RNG kept)."""
    arch = arch or LMMArch()
    processor = build_processor(arch)
    return seeded_llava(build_config(arch, processor.tokenizer), processor.tokenizer, seed), processor


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameters per part of a LlavaForConditionalGeneration (and the total)."""
    parts = {"vision_tower": 0, "multi_modal_projector": 0, "language_model": 0, "lm_head": 0}
    total = 0
    for name, p in model.named_parameters():
        total += p.numel()
        for part in parts:
            if f"{part}." in name or name.startswith(part):
                parts[part] += p.numel()
                break
    parts["total"] = total
    return parts
