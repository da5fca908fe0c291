"""LMM adapter: one image + prompt in, generated text + per-token image-attention maps out.

Hides the model family's differences (where the image tokens sit, what grid they form, how the
processor fitted the image) behind `LMMAdapter.generate`, which greedy-decodes with a dynamic
KV cache under `AttentionCapture` so every generated token comes with its attention map.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ros_ground.attention import AttentionCapture, RowsCapture, install_capture
from ros_ground.errors import InputError
from ros_ground.geometry import (
    ImageGeometry,
    background_fill,
    geometry_for,
    pad_to_square,
    trim_to_crop,
)
from ros_ground.prompts import ChatMarkers, markers_from_template, require_text, strip_chat_markup
from ros_ground.views import flip_image, unflip_maps

IMAGE_FITS = ("processor", "pad")
_TRUE = ("1", "true", "yes", "on")
# "sim": the embedded default, trained in simulation (ros_ground/train), loaded as a directory.
SIM_LMM_DIR = Path(__file__).resolve().parent / "models" / "sim_lmm"


class ModelLoadError(ValueError):
    """The requested model could not be found or loaded."""


class BadPromptError(InputError):
    """The prompt would change the image tokens the model sees."""


@dataclass
class Generation:
    """Greedy output of one request, with one raw image-attention map per generated token."""

    prompt: str
    text: str
    token_ids: list[int]
    image_maps: np.ndarray  # float32 [num_steps, grid_h, grid_w]
    geometry: ImageGeometry
    timing_ms: dict[str, float] = field(default_factory=dict)
    canceled: bool = False
    # the prompt's own text (cleaned: `LMMAdapter.clean_prompt`), its tokens in the model's
    # input (chat-template tokens and image tokens excluded) with their character spans in
    # `prompt_text`, and each one's image attention read during the prefill: float32
    # [len(prompt_token_ids), grid_h, grid_w], raw like `image_maps`
    prompt_text: str = ""
    prompt_token_ids: list[int] = field(default_factory=list)
    prompt_token_spans: list[tuple[int, int]] = field(default_factory=list)
    prompt_maps: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0), np.float32))


@dataclass
class _PromptTokens:
    """Where the user's text sits in the model input: sequence positions, ids, char spans."""

    text: str
    positions: list[int]
    token_ids: list[int]
    spans: list[tuple[int, int]]


@dataclass
class _ImageLayout:
    positions: torch.Tensor  # sequence indices of the image tokens that form the grid
    grid_h: int
    grid_w: int
    fit: str  # "processor" (use the processor's config) or a geometry fit


class _TokenHook:
    """Stopping criterion that streams tokens, checks cancel and timestamps the first token."""

    def __init__(self, adapter: LMMAdapter, prompt: str, prompt_len: int,
                 layout: _ImageLayout, geometry: ImageGeometry,
                 on_token: Callable[[int, str, Callable[[], Generation]], None] | None,
                 should_stop: Callable[[], bool] | None):
        self.adapter, self.prompt, self.prompt_len = adapter, prompt, prompt_len
        self.layout, self.geometry = layout, geometry
        self.on_token, self.should_stop = on_token, should_stop
        self.capture: AttentionCapture | None = None
        self.first_token_at: float | None = None
        self.canceled = False

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        token_id = int(input_ids[0, -1])  # syncs the device, so the timestamp is honest
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        if self.on_token is not None:
            generated = input_ids[0, self.prompt_len:].tolist()
            text = self.adapter.decode(generated)
            self.on_token(token_id, text, lambda: self._partial(generated, text))
        if self.should_stop is not None and self.should_stop():
            self.canceled = True
            done[:] = True
        return done

    def _partial(self, generated: list[int], text: str) -> Generation:
        """The generation so far, maps included, for streaming partial grounding."""
        maps = self.capture.maps()[: len(generated)]
        grid = maps.reshape(-1, self.layout.grid_h, self.layout.grid_w).numpy()
        return Generation(self.prompt, text, list(generated), grid.astype(np.float32),
                          self.geometry, {})


class LMMAdapter:
    """A loaded image-text model with attention capture installed on its text decoder."""

    def __init__(self, name: str, model, processor, device: torch.device, dtype: torch.dtype,
                 image_fit: str = "processor"):
        if image_fit not in IMAGE_FITS:
            raise ValueError(f"image_fit must be one of {IMAGE_FITS}, got {image_fit!r}")
        self.name = name
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.device = torch.device(device)
        self.dtype = dtype
        self.image_fit = image_fit
        self.model_type = getattr(model.config, "model_type", "")
        self.image_token = getattr(processor, "image_token", None) or "<image>"
        self.image_token_id = _image_token_id(model.config, self.tokenizer, self.image_token)
        self._markers: ChatMarkers | None = None  # from the chat template, on first use
        install_capture(model)

    # -- text ---------------------------------------------------------------------------------

    def decode(self, token_ids) -> str:
        """Text of token ids, special tokens skipped, spacing exactly as the tokenizer gives."""
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.tolist()
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def _special_strings(self) -> list[str]:
        """The tokenizer's added/special token strings (image token, chat markers), longest
        first."""
        specials = {self.image_token}
        specials.update(str(t) for t in getattr(self.tokenizer, "all_special_tokens", []))
        decoder = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        specials.update(getattr(t, "content", str(t)) for t in decoder.values())
        for attr in ("video_token", "audio_token", "boi_token", "eoi_token"):
            if isinstance(getattr(self.processor, attr, None), str):
                specials.add(getattr(self.processor, attr))
        return sorted((s for s in specials if s and s.strip()), key=len, reverse=True)

    def neutralize(self, prompt: str) -> str:
        """Remove the tokenizer's added/special token strings (image token, chat markers)."""
        specials = self._special_strings()
        previous = None
        while previous != prompt:  # removal can join fragments into a new marker: repeat
            previous = prompt
            for s in specials:
                prompt = prompt.replace(s, "")
        return prompt.strip()

    def clean_prompt(self, prompt: str) -> str:
        """The user's own text of `prompt` (prompts.strip_chat_markup with this model's chat
        template markers, then special tokens removed). Raises prompts.EmptyPromptError (a
        ValueError) when nothing is left."""
        if self._markers is None:
            sequence = [getattr(self.tokenizer, name, None) for name in ("bos_token", "eos_token")]
            self._markers = markers_from_template(self._render, self._special_strings(),
                                                  [str(t) for t in sequence if t])
        return require_text(self.neutralize(strip_chat_markup(prompt, self._markers)), prompt)

    def _render(self, text: str) -> str:
        messages = [{"role": "user", "content": [
            {"type": "image"}, {"type": "text", "text": text}]}]
        template_owner = self.processor if getattr(self.processor, "chat_template", None) \
            else self.tokenizer
        return template_owner.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)

    def build_prompt(self, prompt: str) -> str:
        """The chat-templated text for one image + user text turn, generation prompt added;
        `prompt` is cleaned first (`clean_prompt`), so a pasted templated prompt is not
        templated twice."""
        return self._render(self.clean_prompt(prompt))

    def prompt_tokens(self, prompt: str, input_ids: torch.Tensor) -> _PromptTokens:
        """The input positions of the cleaned prompt's own text tokens, with their character
        spans in the cleaned text. `input_ids` ([1, L], the processor's, image tokens
        expanded) must come from `build_prompt(prompt)`. Tokens are matched to characters with
        the tokenizer's offsets on the templated text; positions stay empty when the tokenizer
        gives none (a slow tokenizer) or its tokens do not line up with the processor's."""
        text = self.clean_prompt(prompt)
        templated = self._render(text)
        start = templated.rfind(text)
        empty = _PromptTokens(text, [], [], [])
        try:
            encoded = self.tokenizer(templated, add_special_tokens=False,
                                     return_offsets_mapping=True)
        except (NotImplementedError, ValueError, TypeError):
            return empty
        ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
        full = input_ids[0].tolist()
        # the processor expands each image placeholder into a run of image tokens: one entry
        # per run, and any tokens it adds in front (BOS) skipped
        index, collapsed = [], []
        for i, token in enumerate(full):
            if token == self.image_token_id and collapsed and collapsed[-1] == token:
                continue
            index.append(i)
            collapsed.append(token)
        shift = len(collapsed) - len(ids)
        if shift < 0 or collapsed[shift:] != ids:
            return empty
        end = start + len(text)
        positions, token_ids, spans = [], [], []
        for j, (a, b) in enumerate(offsets):
            if b > a and a < end and b > start and ids[j] != self.image_token_id:
                positions.append(index[shift + j])
                token_ids.append(ids[j])
                spans.append((max(a, start) - start, min(b, end) - start))
        return _PromptTokens(text, positions, token_ids, spans)

    # -- image --------------------------------------------------------------------------------

    def prepare(self, image: np.ndarray, prompt: str) -> tuple[dict, _ImageLayout, ImageGeometry]:
        """Processor inputs on the device, the image-token layout and the pixel geometry."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image must be HxWx3 uint8 RGB, got {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        image_processor = getattr(self.processor, "image_processor", None)
        if self.image_fit == "pad":
            image = pad_to_square(image, background_fill(image_processor))
        elif self.model_type == "llava":
            image = trim_to_crop(image, image_processor)
        text = self.build_prompt(prompt)
        try:
            # a PIL image: an array with 1 or 3 rows is read as channels-first by the processor
            inputs = self.processor(images=Image.fromarray(np.ascontiguousarray(image)),
                                    text=text, return_tensors="pt")
        except ValueError as exc:  # e.g. more image placeholders than images
            raise BadPromptError(f"the processor rejected the prompt: {exc}") from exc
        layout = self._layout(inputs)
        fit = "pad" if self.image_fit == "pad" else layout.fit
        geometry = geometry_for(image_processor, height, width, layout.grid_h, layout.grid_w, fit)
        moved = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, self.dtype if value.is_floating_point() else None)
            moved[key] = value
        return moved, layout, geometry

    def _layout(self, inputs) -> _ImageLayout:
        """Find the image tokens, check their count, and shape them into the base grid."""
        ids = inputs["input_ids"]
        if ids.shape[0] != 1:
            raise ValueError("one image and one prompt per request")
        positions = (ids[0] == self.image_token_id).nonzero().flatten()
        expected = self._expected_image_tokens(inputs)
        if positions.numel() != expected:
            raise BadPromptError(
                f"prompt produced {positions.numel()} image tokens, expected {expected}: "
                f"remove image/special tokens from the prompt"
            )
        cfg = self.model.config
        vision = getattr(cfg, "vision_config", None)
        if self.model_type in ("qwen2_vl", "qwen2_5_vl"):
            t, h, w = (int(x) for x in inputs["image_grid_thw"][0])
            merge = int(getattr(vision, "spatial_merge_size", 2))
            gh, gw = h // merge, w // merge
            if t != 1:
                raise NotImplementedError("video inputs (temporal grid > 1) are not supported")
            return _ImageLayout(positions, gh, gw, "resize")
        has_cls = getattr(cfg, "vision_feature_select_strategy", "default") == "full"
        if self.model_type == "llava_next":
            # base (whole-image) grid only; the any-resolution tiles and newlines follow it
            side = vision.image_size // vision.patch_size
            base = positions[: side * side + int(has_cls)]
            return _ImageLayout(base[int(has_cls):], side, side, "resize")
        if has_cls:
            positions = positions[1:]
        side = math.isqrt(positions.numel())
        if side * side != positions.numel():
            raise NotImplementedError(
                f"{self.model_type}: {positions.numel()} image tokens do not form a square grid")
        return _ImageLayout(positions, side, side, "processor")

    def _expected_image_tokens(self, inputs) -> int:
        replace = getattr(self.processor, "replace_image_token", None)
        if replace is not None:
            try:
                return len(replace(inputs, 0)) // len(self.image_token)
            except NotImplementedError:
                pass
        vision = self.model.config.vision_config
        full = getattr(self.model.config, "vision_feature_select_strategy", "default") == "full"
        return (vision.image_size // vision.patch_size) ** 2 + int(full)

    # -- generation ---------------------------------------------------------------------------

    def generate(self, image: np.ndarray, prompt: str, max_new_tokens: int = 64,
                 on_token: Callable[[int, str, Callable[[], Generation]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 prompt_maps: bool = True) -> Generation:
        """Greedy generation with one image-attention map per generated token.

        With `prompt_maps`, the prefill also records the image attention of the prompt's own
        text tokens (`Generation.prompt_maps`, for grounding the command itself).

        `on_token(token_id, text_so_far, partial)` runs after every token, where `partial()`
        returns the Generation so far (maps included); `should_stop()` is polled
        after every token (and once before starting) and ends generation early (canceled=True).
        """
        from transformers import DynamicCache, GenerationConfig, StoppingCriteriaList

        if max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        t0 = time.perf_counter()
        inputs, layout, geometry = self.prepare(image, prompt)
        prompt_len = int(inputs["input_ids"].shape[1])
        own = self.prompt_tokens(prompt, inputs["input_ids"]) if prompt_maps else None
        timing = {"preprocess": (time.perf_counter() - t0) * 1e3}
        empty = np.zeros((0, layout.grid_h, layout.grid_w), dtype=np.float32)
        prompt_fields = {} if own is None else dict(
            prompt_text=own.text, prompt_token_ids=own.token_ids,
            prompt_token_spans=own.spans, prompt_maps=empty)
        if should_stop is not None and should_stop():
            timing.update(vision_prefill=0.0, decode=0.0)
            return Generation(prompt, "", [], empty, geometry, timing, canceled=True,
                              **prompt_fields)

        config = self._generation_config(GenerationConfig, max_new_tokens)
        hook = _TokenHook(self, prompt, prompt_len, layout, geometry, on_token, should_stop)
        t1 = time.perf_counter()
        rows = torch.tensor(own.positions, dtype=torch.long) if own and own.positions else None
        with torch.no_grad(), AttentionCapture(layout.positions, rows) as capture:
            hook.capture = capture
            out = self.model.generate(
                **inputs, generation_config=config, past_key_values=DynamicCache(),
                stopping_criteria=StoppingCriteriaList([hook]),
            )
        t2 = time.perf_counter()
        token_ids = out[0, prompt_len:].tolist()
        maps = capture.maps()
        if maps.shape[0] != len(token_ids):
            raise RuntimeError(f"captured {maps.shape[0]} attention steps for "
                               f"{len(token_ids)} generated tokens")
        first = hook.first_token_at or t2
        timing["vision_prefill"] = (first - t1) * 1e3
        timing["decode"] = (t2 - first) * 1e3
        if rows is not None:
            prompt_fields["prompt_maps"] = capture.prompt_maps().reshape(
                -1, layout.grid_h, layout.grid_w).numpy().astype(np.float32)
        return Generation(
            prompt=prompt,
            text=self.decode(token_ids),
            token_ids=token_ids,
            image_maps=maps.reshape(-1, layout.grid_h, layout.grid_w).numpy().astype(np.float32),
            geometry=geometry,
            timing_ms=timing,
            canceled=hook.canceled,
            **prompt_fields,
        )

    def view_maps(self, image: np.ndarray, prompt: str, token_ids: list[int],
                  views: Sequence[str]) -> np.ndarray:
        """The image-attention maps of an answer already generated, read on flipped views.

        One teacher-forced pass over prompt + answer, the views of `image` as one batch
        (`flip_image`); in view v, row t is the attention of the query that emits token t,
        flipped back onto the original image's grid: float32 [len(views), len(token_ids),
        grid_h, grid_w], each view like `Generation.image_maps`.
        """
        token_ids, views = list(token_ids), list(views)
        if not token_ids:
            raise ValueError("view_maps needs the answer's token ids")
        if not views:
            raise ValueError("view_maps needs at least one view")
        batch, layout = [], None
        for view in views:
            inputs, layout, _ = self.prepare(flip_image(image, view), prompt)
            batch.append(self._with_answer(inputs, token_ids))
        # a flip keeps the image's size, so every view has the same tokens at the same places
        inputs = {key: torch.cat([one[key] for one in batch])
                  if isinstance(batch[0][key], torch.Tensor) else batch[0][key] for key in batch[0]}
        with torch.no_grad(), RowsCapture(layout.positions, rows=len(token_ids)) as capture:
            # only the attention is wanted: logits for one position, not [tokens x vocabulary]
            self.model(**inputs, use_cache=False, logits_to_keep=1)
        maps = capture.maps().reshape(len(views), -1, layout.grid_h, layout.grid_w).numpy()
        return np.stack([unflip_maps(m.astype(np.float32), view) for m, view in zip(maps, views)])

    def _with_answer(self, inputs: dict, token_ids: list[int]) -> dict:
        """Processor inputs with the answer appended, for a teacher-forced pass."""
        # the query that emits answer token t sits at prompt_len - 1 + t: the last token is
        # never fed back, so the pass ends with the query that emitted it
        prompt_len = inputs["input_ids"].shape[1]
        answer = torch.tensor([token_ids[:-1]], dtype=inputs["input_ids"].dtype,
                              device=self.device)
        extended = dict(inputs)
        for key, value in inputs.items():
            if not (isinstance(value, torch.Tensor) and value.shape == (1, prompt_len)):
                continue
            if key == "input_ids":
                tail = answer
            else:  # attention mask: attend to the answer; per-token type ids: it is text (0)
                tail = torch.full_like(answer, int(key == "attention_mask"), dtype=value.dtype)
            extended[key] = torch.cat([value, tail], dim=1)
        return extended

    def _generation_config(self, config_cls, max_new_tokens: int):
        """Plain greedy search: checkpoint sampling or penalties must not change the tokens.

        The image placeholder is not text: an answer holding it could not be fed back to the
        model (attention views, a follow-up turn), so it is never generated."""
        base = self.model.generation_config
        eos = base.eos_token_id if base.eos_token_id is not None else self.tokenizer.eos_token_id
        pad = base.pad_token_id
        if pad is None:
            pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = eos[0] if isinstance(eos, list) else eos
        return config_cls(
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=eos, pad_token_id=pad, bos_token_id=base.bos_token_id,
            repetition_penalty=1.0, no_repeat_ngram_size=0, min_new_tokens=0,
            temperature=None, top_p=None, top_k=None, suppress_tokens=[self.image_token_id],
        )


def _image_token_id(config, tokenizer, image_token: str) -> int:
    for name in ("image_token_id", "image_token_index"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    value = tokenizer.convert_tokens_to_ids(image_token)
    if value is None or value == getattr(tokenizer, "unk_token_id", None):
        raise ModelLoadError(f"cannot find the image token id ({image_token!r})")
    return int(value)


# -- loading ------------------------------------------------------------------------------------

def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' -> bf16 (or fp16) on cuda, fp32 on cpu; or an explicit float32|float16|bfloat16."""
    names = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
             "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in names:
        raise ValueError(f"dtype must be auto|float32|float16|bfloat16, got {dtype!r}")
    return names[dtype]


def _looks_like_path(spec: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything else path-shaped is a directory."""
    return (spec.startswith(("/", "./", "../", "~", "."))
            or spec.count("/") > 1 or os.sep != "/" and os.sep in spec
            or Path(spec).expanduser().exists())


def _from_pretrained(source: str, local_only: bool, dtype: torch.dtype, device: torch.device,
                     trust_remote_code: bool):
    # One path for every device: load on the host, then move. `device_map` would load straight
    # onto a GPU, but transformers 5 refuses it without the `accelerate` package.
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(
        source, local_files_only=local_only, trust_remote_code=trust_remote_code)
    model = AutoModelForImageTextToText.from_pretrained(
        source, local_files_only=local_only, trust_remote_code=trust_remote_code, dtype=dtype,
        attn_implementation="sdpa")
    return model.to(device), processor


def hub_cache_dir(model_id: str) -> Path:
    """Where the Hugging Face cache keeps `model_id` (HF_HUB_CACHE / HF_HOME decide the root)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}"


def load_lmm(spec: str, device: str = "auto", dtype: str = "auto",
             trust_remote_code: bool = False, image_fit: str = "processor",
             allow_download: bool = False) -> LMMAdapter:
    """Load "tiny", "sim" (the packaged directory), a local checkpoint directory, or a Hugging
    Face id from the local cache.

    allow_download: only then may a Hugging Face id missing from the cache be downloaded from
    the Hub (and only while HF_HUB_OFFLINE is unset); by default nothing is fetched, whatever
    the environment says. Raises ModelLoadError naming every place searched (for a Hub id, its
    cache directory) when the model cannot be loaded.
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if image_fit not in IMAGE_FITS:
        raise ValueError(f"image_fit must be one of {IMAGE_FITS}, got {image_fit!r}")
    if spec == "tiny":
        from ros_ground.tiny import build_tiny_lmm

        model, processor = build_tiny_lmm()
        model = model.to(torch_device, torch_dtype)
        return LMMAdapter("tiny", model, processor, torch_device, torch_dtype, image_fit)

    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
    tried: list[str] = []
    errors: list[str] = []
    note = ""
    location = str(SIM_LMM_DIR) if spec == "sim" else spec
    if spec == "sim" and not (SIM_LMM_DIR / "config.json").is_file():
        raise ModelLoadError(f"the embedded 'sim' model is missing from {str(SIM_LMM_DIR)!r} "
                             f"(train it with `ros-ground train lmm`)")
    if _looks_like_path(location):
        path = Path(location).expanduser()
        if not path.is_dir():
            raise ModelLoadError(f"model {spec!r}: no such directory {str(path)!r} "
                                 f"(give a checkpoint directory, a Hugging Face id, or 'tiny')")
        attempts = [(str(path), True, f"local directory {str(path)!r}")]
    else:
        attempts = [(spec, True, f"Hugging Face cache {str(hub_cache_dir(spec))!r}")]
        if not allow_download:
            note = (" Downloads are off (allow_download is false): put the model in that cache "
                    "or give a local directory.")
        elif offline:
            note = " HF_HUB_OFFLINE is set, so the Hub was not contacted."
        else:
            attempts.append((spec, False, f"Hugging Face Hub download of {spec!r}"))
    for source, local_only, what in attempts:
        tried.append(what)
        try:
            model, processor = _from_pretrained(source, local_only, torch_dtype, torch_device,
                                                trust_remote_code)
        except (OSError, ValueError, KeyError, ImportError) as exc:
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            continue
        return LMMAdapter(spec, model, processor, torch_device, torch_dtype, image_fit)
    raise ModelLoadError(f"could not load model {spec!r}; tried: {'; '.join(tried)}.{note} "
                         f"Errors: {' | '.join(errors)}")

