"""Deterministic tiny LLaVA built in-process, so tests and demos need no downloaded weights.

The architecture is the real one (CLIP vision tower + projector + Llama decoder, the llava-hf
layout), only small and randomly initialised. The tokenizer is word-level over a built-in
vocabulary of tabletop words, so even a random model emits real words and spaCy finds noun
chunks in its output without biasing the model itself.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_IMAGE_SIZE = 64
TINY_PATCH_SIZE = 8
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN)

# LLaVA-1.5's conversation format ("USER: <image>\n... ASSISTANT:"), written for this tokenizer.
CHAT_TEMPLATE = (
    "<s>"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

_COLOURS = "red green blue yellow orange purple pink white black grey brown wooden metal plastic"
_OBJECTS = (
    "mug cup cube block duck tray table bowl plate bottle can ball sphere box lego brick jenga "
    "bear teddy torus ring toy robot gripper arm hand camera shelf drawer bin basket book pen "
    "banana apple orange lemon sponge towel spoon fork knife lid jar pot plant lamp cable wall "
    "floor corner edge surface object objects item items scene image picture background top side"
)
_SIZES = "small large big little tiny tall short round square flat empty full shiny dark bright"
_SPATIAL = (
    "on in at near next to left right of behind front above below under beside between "
    "center middle back close far inside outside across along against"
)
_GLUE = (
    "a an the this that there is are it its and with has have sits sitting stands standing "
    "lies lying placed rests holds shows contains appears see can some two three several "
    "other another one each both pile stack row group"
)
_SENTENCES = (
    "The image shows a red mug on a wooden table.",
    "A yellow duck sits next to the blue cube.",
    "There is a small green block in the tray, and a large white bowl behind it.",
    "Describe the image in detail.",
    "What is on the table? Where is the red cube?",
    "A teddy bear stands near the edge of the table, left of the grey tray.",
    "The robot gripper holds a purple sphere above the black bin.",
    "Two orange balls lie in front of a tall bottle; a plate is on the right.",
    "In the center of the scene, a stack of lego bricks rests against the wall.",
    "The camera sees a shiny metal can, a plastic spoon and a jenga block.",
)


def tabletop_corpus() -> list[str]:
    """The built-in corpus the word-level tokenizer is fitted on."""
    words = " ".join((_COLOURS, _OBJECTS, _SIZES, _SPATIAL, _GLUE))
    return [*_SENTENCES, words, "USER: ASSISTANT: , . ; : ? ! ' \" ( ) - 0 1 2 3 4 5 6 7 8 9 \n"]


def build_tokenizer():
    """Word-level tokenizer: every vocabulary entry is a whole (lower-case) word or punctuation.

    Words are joined with spaces on decode (WordPiece decoder, no sub-words), so any sequence of
    ids, even a random model's, decodes to readable words.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Lowercase()
    pre = pre_tokenizers.Whitespace()
    pieces = {
        piece
        for line in tabletop_corpus()
        for piece, _ in pre.pre_tokenize_str(normalizer.normalize_str(line))
    }
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for piece in sorted(pieces):
        vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
    )


def build_tiny_config(vocab_size: int, image_token_id: int, pad_token_id: int,
                      num_attention_heads: int = 4, num_key_value_heads: int = 2):
    """LlavaConfig with a 64 px / patch 8 CLIP tower (8x8 grid) and a 3-layer Llama."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, hidden_size=32,
        intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=num_attention_heads, num_key_value_heads=num_key_value_heads,
        max_position_embeddings=512, pad_token_id=pad_token_id, bos_token_id=1, eos_token_id=2,
        # larger than the usual 0.02 so the random decoder's output depends on its input
        initializer_range=0.5, tie_word_embeddings=False,
    )
    return LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        vision_feature_select_strategy="default", vision_feature_layer=-2,
        projector_hidden_act="gelu", image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
        pad_token_id=pad_token_id,
    )


def build_tiny_processor():
    """LlavaProcessor: CLIP-style resize-shortest-edge + centre-crop to 64 px, tiny tokenizer."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        do_center_crop=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_lmm(seed: int = 0, num_attention_heads: int = 4, num_key_value_heads: int = 2):
    """(model, processor): same seed -> identical weights; the global RNG is left untouched."""
    processor = build_tiny_processor()
    tok = processor.tokenizer
    config = build_tiny_config(
        len(tok), tok.convert_tokens_to_ids(IMAGE_TOKEN), tok.pad_token_id,
        num_attention_heads, num_key_value_heads,
    )
    model = seeded_llava(config, tok, seed)
    model.eval()
    return model, processor


def seeded_llava(config, tokenizer, seed: int):
    """A LlavaForConditionalGeneration of `config` with weights drawn from `seed` (the global RNG
    left untouched) and greedy decoding with `tokenizer`'s bos / eos / pad ids."""
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    return model


def save_tiny_lmm(directory: str | Path, seed: int = 0) -> Path:
    """Write the tiny model + processor like a real checkpoint, for the load_lmm(path) route."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model, processor = build_tiny_lmm(seed)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
