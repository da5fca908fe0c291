"""Pasted model-card prompts are reduced to the user's text, never templated twice."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import jinja2
import pytest

from ros_ground.errors import InputError
from ros_ground.prompts import (
    ChatMarkers,
    EmptyPromptError,
    markers_from_template,
    require_text,
    strip_chat_markup,
)

# The chat templates of llava-hf/llava-1.5-7b-hf, llava-hf/llava-v1.6-mistral-7b-hf and
# Qwen/Qwen2-VL-7B-Instruct (transformers' `{% generation %}` tag left out: plain jinja here).
LLAVA_15 = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' '}}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
LLAVA_NEXT_MISTRAL = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] }}{% endfor %}{{' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'][0]['text'] + '</s> '}}"
    "{% endif %}{% endfor %}"
)
QWEN2_VL = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA_SPECIALS = ["<s>", "</s>", "<unk>", "<image>", "<pad>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]

# (template, its special tokens, BOS/EOS, the model card's prompt)
MODELS = {
    "llava-1.5": (LLAVA_15, LLAMA_SPECIALS, ["<s>", "</s>"],
                  "USER: <image>\nWhere is the mug? ASSISTANT:"),
    "llava-next-mistral": (LLAVA_NEXT_MISTRAL, LLAMA_SPECIALS, ["<s>", "</s>"],
                           "[INST] <image>\nWhere is the mug? [/INST]"),
    "llava-next-vicuna": (LLAVA_15, LLAMA_SPECIALS, ["<s>", "</s>"],
                          "A chat between a curious human and an artificial intelligence "
                          "assistant. The assistant gives helpful, detailed, and polite answers "
                          "to the human's questions. USER: <image>\nWhere is the mug? ASSISTANT:"),
    "llava-next-34b": (QWEN2_VL, QWEN_SPECIALS, [],
                       "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n"
                       "<image>\nWhere is the mug?<|im_end|><|im_start|>assistant\n"),
    "qwen2-vl": (QWEN2_VL, QWEN_SPECIALS, ["<|endoftext|>"],
                 "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                 "<|vision_start|><|image_pad|><|vision_end|>Where is the mug?<|im_end|>\n"
                 "<|im_start|>assistant\n"),
}


def _renderer(template: str):
    compiled = jinja2.Environment().from_string(template)

    def render(text: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text", "text": text}]}]
        return compiled.render(messages=messages, add_generation_prompt=True)

    return render


def _clean(model: str, prompt: str) -> str:
    template, specials, sequence, _ = MODELS[model]
    markers = markers_from_template(_renderer(template), specials, sequence)
    text = strip_chat_markup(prompt, markers)
    for special in specials:  # what the adapter's neutralize does next
        text = text.replace(special, "")
    return text.strip()


@pytest.mark.parametrize("model", list(MODELS))
def test_model_card_prompt_is_the_question(model):
    template, _, _, card = MODELS[model]
    assert _clean(model, card) == "Where is the mug?"
    render = _renderer(template)
    # templating the cleaned prompt gives what the plain question gives: no double template
    assert render(_clean(model, card)) == render("Where is the mug?")
    assert _clean(model, "Where is the mug?") == "Where is the mug?"  # plain: unchanged
    assert _clean(model, _clean(model, card)) == _clean(model, card)  # idempotent


@pytest.mark.parametrize("model", list(MODELS))
def test_other_families_cards_are_cleaned_too(model):
    """A card prompt copied from another family (a Qwen prompt into LLaVA) is cleaned."""
    for _, _, _, card in MODELS.values():
        assert _clean(model, card) == "Where is the mug?", card


def test_template_markers_are_found():
    markers = markers_from_template(_renderer(QWEN2_VL), QWEN_SPECIALS, ["<|endoftext|>"])
    assert markers.user_starts[0] == r"<\|im_start\|>\s*user"
    assert markers.user_ends[0] == r"<\|im_end\|>"
    markers = markers_from_template(_renderer(LLAVA_15), LLAMA_SPECIALS, ["<s>", "</s>"])
    assert markers.user_starts[0] == "USER:" and markers.user_ends[0] == "ASSISTANT:"
    # a custom template's own markers, found only from the template
    custom = ("{% for m in messages %}<<HUMAN>> {% for c in m['content'] %}"
              "{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} <<END>>"
              "{% endfor %}<<BOT>>")
    markers = markers_from_template(_renderer(custom), [], [])
    assert strip_chat_markup("<<HUMAN>> find the tray <<END>><<BOT>>", markers) == "find the tray"
    assert strip_chat_markup("<<HUMAN>> find the tray <<END>>") != "find the tray"  # not generic

    def broken(text):
        raise ValueError("no template")

    assert markers_from_template(broken, [], []) == ChatMarkers()


def test_last_user_turn_and_words_that_look_like_markers():
    chat = ("USER: <image>\nWhat is on the table? ASSISTANT: A mug and a tray.</s>"
            "USER: Where is the tray? ASSISTANT:")
    assert strip_chat_markup(chat) == "Where is the tray?"
    # lower-case words are the user's own
    assert strip_chat_markup("the user: manual, and the [inst] sheet") == \
        "the user: manual, and the [inst] sheet"
    assert strip_chat_markup("look at <image> the mug") == "look at the mug"
    # a placeholder between two words keeps them apart: "the mugon the left" named no mug
    assert strip_chat_markup("Pick up the mug<image>on the left.") == "Pick up the mug on the left."
    assert strip_chat_markup("Pick up the mug<image> on the left.") == "Pick up the mug on the left."
    assert strip_chat_markup("the mug<|image_pad|>.") == "the mug."
    assert strip_chat_markup("Put the red<image><image>mug on the tray.") == "Put the red mug on the tray."
    assert strip_chat_markup("the red<image>\n<start_of_image>mug") == "the red mug"


@pytest.mark.parametrize("pasted", [
    "<|im_start|>system\nWhere is the mug?<|im_end|>",  # a system turn, no user turn
    "<|im_start|>Where is the mug?",
    "Where is the mug?<|eot_id|><|start_header_id|>assistant<|end_header_id|>",
    "<start_of_turn>model\nWhere is the mug?",
    "Where is the mug? [/INST]",
    "<|im_start|>developer\nWhere is the mug?",
    "<|start_header_id|>ipython<|end_header_id|>\nWhere is the mug?",
    "<|im_<start_of_turn>start|>system\nWhere is the mug?",  # one marker inside another
])
def test_turn_markers_of_any_role_are_removed(pasted):
    assert strip_chat_markup(pasted) == "Where is the mug?"
    assert strip_chat_markup(strip_chat_markup(pasted)) == "Where is the mug?"


@pytest.mark.parametrize("empty", ["", "   ", "USER: <image>\n ASSISTANT:", "[INST] [/INST]",
                                   "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
                                   "<|im_end|>\n<|im_start|>assistant\n"])
def test_nothing_left_is_an_input_error(empty):
    with pytest.raises(EmptyPromptError, match="no text of its own") as info:
        require_text(strip_chat_markup(empty), empty)
    assert isinstance(info.value, InputError)  # the node's BAD_INPUT path


def test_adapter_does_not_template_twice():
    from ros_ground.lmm import load_lmm

    tiny = load_lmm("tiny", device="cpu")
    card = "USER: <image>\nWhere is the mug? ASSISTANT:"
    assert tiny.build_prompt(card) == tiny.build_prompt("Where is the mug?")
    assert tiny.build_prompt(card).count("ASSISTANT:") == 1
    assert tiny.clean_prompt(card) == "Where is the mug?"
    with pytest.raises(EmptyPromptError):
        tiny.build_prompt("USER: <image> ASSISTANT:")


def test_invisible_format_characters_are_removed():
    assert strip_chat_markup("Pick up the duck\u200b.") == "Pick up the duck."
    assert strip_chat_markup("Where is\x01 the\x7fmug?\x00") == "Where is  the mug?"
    assert strip_chat_markup("Where is\tthe\nmug?") == "Where is\tthe\nmug?"
    assert strip_chat_markup("Where\x07 is the\x1b[31;1m mug\x1b[0m?") == "Where  is the  mug ?"
    assert strip_chat_markup("\u200eWhere is the\u2060 mug?\ufeff") == "Where is the mug?"
    assert strip_chat_markup("USER: hi ASSISTANT: Pick up the duck") == "hi"  # the last user turn
