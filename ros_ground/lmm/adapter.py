"""LMM adapter: one image + prompt in, generated text + per-token image-attention maps out.

Hides the model family's differences (where the image tokens sit, what grid they form, how the
processor fitted the image: lmm.layout; its special tokens and where the user's text sits:
lmm.text) behind `LMMAdapter.generate`, which greedy-decodes with a dynamic KV cache under
`AttentionCapture` so every generated token comes with its attention map.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ros_ground.errors import check_image
from ros_ground.geometry import ImageGeometry, geometry_for
from ros_ground.lmm.attention import (
    AttentionCapture,
    CaptureComplete,
    RowsCapture,
    install_capture,
)
from ros_ground.lmm.compiled import CompiledDecoder, compiled_decoding
from ros_ground.lmm.errors import BadPromptError
from ros_ground.lmm.fit import fit_image, report_unseen, resolve_image_fit
from ros_ground.lmm.generation import Generation, TokenHook
from ros_ground.lmm.layout import ImageLayout, answer_room, find_image_token_id, image_layout
from ros_ground.lmm.text import PromptTokens, find_prompt_tokens, special_strings, strip_special_strings
from ros_ground.prompts import ChatMarkers, markers_from_template, require_text, strip_chat_markup
from ros_ground.views import flip_image, unflip_maps

# model types whose forward keeps no state between passes and whose continuation from a cache
# needs only cache positions (causal text over plain 1-D positions): `prefill_views`
PREFILL_MODEL_TYPES = ("llava", "llava_next")


class LMMAdapter:
    """A loaded image-text model with attention capture installed on its text decoder."""

    def __init__(self, name: str, model, processor, device: torch.device, dtype: torch.dtype,
                 image_fit: str = "auto", compile: str = "off"):
        """image_fit: auto | processor | pad (lmm.fit; ValueError for another), resolved here to
        processor or pad. compile: off | auto | on (auto: on for CUDA): decode with a static KV
        cache and a torch.compile'd step (compiled.py; `warm_up`, else the first request), for
        compiled.COMPILED_MODEL_TYPES only (on: ValueError for another)."""
        self.name = name
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.device = torch.device(device)
        self.dtype = dtype
        self.model_type = getattr(model.config, "model_type", "")
        self.image_fit = resolve_image_fit(image_fit, self.model_type,
                                           getattr(processor, "image_processor", None))
        self._unseen_said: set = set()  # frame sizes whose centre crop was logged
        self.image_token = getattr(processor, "image_token", None) or "<image>"
        self.image_token_id = find_image_token_id(model.config, self.tokenizer, self.image_token)
        self._markers: ChatMarkers | None = None  # from the chat template, on first use
        install_capture(model)
        self.decoder = CompiledDecoder(self.model, self.image_token_id) \
            if compiled_decoding(compile, self.device, self.model_type) else None

    # -- text ---------------------------------------------------------------------------------

    def decode(self, token_ids) -> str:
        """Text of token ids, special tokens skipped, spacing exactly as the tokenizer gives."""
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.tolist()
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)

    def _special_strings(self) -> list[str]:
        """The tokenizer's added/special token strings, longest first (lmm.text)."""
        return special_strings(self.tokenizer, self.processor, self.image_token)

    def neutralize(self, prompt: str) -> str:
        """Remove the tokenizer's added/special token strings (image token, chat markers)."""
        return strip_special_strings(prompt, self._special_strings())

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

    def prompt_tokens(self, prompt: str, input_ids: torch.Tensor) -> PromptTokens:
        """The input positions of the cleaned prompt's own text tokens, with their character
        spans in the cleaned text. `input_ids` ([1, L], the processor's, image tokens
        expanded) must come from `build_prompt(prompt)`. Tokens are matched to characters with
        the tokenizer's offsets on the templated text; positions stay empty when the tokenizer
        gives none (a slow tokenizer) or its tokens do not line up with the processor's."""
        text = self.clean_prompt(prompt)
        return find_prompt_tokens(self.tokenizer, self._render(text), text, input_ids,
                                  self.image_token_id)

    # -- image --------------------------------------------------------------------------------

    def prepare(self, image: np.ndarray, prompt: str) -> tuple[dict, ImageLayout, ImageGeometry]:
        """Processor inputs on the device, the image-token layout and the pixel geometry."""
        image = check_image(image)
        height, width = image.shape[:2]
        image_processor = getattr(self.processor, "image_processor", None)
        image = fit_image(image, self.image_fit, self.model_type, image_processor)
        text = self.build_prompt(prompt)
        try:
            # a PIL image: an array with 1 or 3 rows is read as channels-first by the processor
            inputs = self.processor(images=Image.fromarray(np.ascontiguousarray(image)),
                                    text=text, return_tensors="pt")
        except ValueError as exc:  # e.g. more image placeholders than images
            raise BadPromptError(f"the processor rejected the prompt: {exc}") from exc
        layout = image_layout(inputs, config=self.model.config, model_type=self.model_type,
                              processor=self.processor, image_token=self.image_token,
                              image_token_id=self.image_token_id)
        fit = "pad" if self.image_fit == "pad" else layout.fit
        geometry = geometry_for(image_processor, height, width, layout.grid_h, layout.grid_w, fit)
        report_unseen(geometry, self._unseen_said)
        moved = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.device, self.dtype if value.is_floating_point() else None)
            moved[key] = value
        return moved, layout, geometry

    # -- generation ---------------------------------------------------------------------------

    def generate(self, image: np.ndarray, prompt: str, max_new_tokens: int = 64,
                 on_token: Callable[[int, str, Callable[[], Generation]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 prompt_maps: bool = True) -> Generation:
        """Greedy generation with one image-attention map per generated token.

        With `prompt_maps`, the prefill also records the image attention of the prompt's own
        text tokens (`Generation.prompt_maps`, for grounding the command itself).
        `max_new_tokens` is capped at the room the model's context leaves after the prompt
        (layout.answer_room; InputError when the prompt alone fills it, ValueError below 1).

        `on_token(token_id, text_so_far, partial)` runs after every token, where `partial()`
        returns the Generation so far (maps included); `should_stop()` is polled
        after every token (and once before starting) and ends generation early (canceled=True).
        """
        from transformers import DynamicCache, GenerationConfig, StoppingCriteriaList

        t0 = time.perf_counter()
        inputs, layout, geometry = self.prepare(image, prompt)
        prompt_len = int(inputs["input_ids"].shape[1])
        max_new_tokens = answer_room(self.model.config, prompt_len, max_new_tokens)
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
        hook = TokenHook(self, prompt, prompt_len, layout, geometry, on_token, should_stop)
        t1 = time.perf_counter()
        rows = torch.tensor(own.positions, dtype=torch.long) if own and own.positions else None
        compiled = self.decoder is not None and self.decoder.fits(
            prompt_len + max_new_tokens, int(layout.positions.numel()))
        if self.decoder is not None and not compiled:
            self.decoder.eager_requests += 1
        if compiled:
            eos = config.eos_token_id
            hook.maps = self.decoder.partial_maps
            token_ids, maps, prompt_rows = self.decoder.generate(
                inputs, layout.positions, max_new_tokens,
                set(eos if isinstance(eos, list) else [eos]), rows,
                on_token=lambda sequence: bool(hook(sequence).any()))
        else:
            with torch.no_grad(), AttentionCapture(layout.positions, rows) as capture:
                hook.maps = capture.maps
                out = self.model.generate(
                    **inputs, generation_config=config, past_key_values=DynamicCache(),
                    stopping_criteria=StoppingCriteriaList([hook]),
                )
            token_ids = out[0, prompt_len:].tolist()
            maps = capture.maps()
            prompt_rows = capture.prompt_maps() if rows is not None else None
        t2 = time.perf_counter()
        if maps.shape[0] != len(token_ids):
            raise RuntimeError(f"captured {maps.shape[0]} attention steps for "
                               f"{len(token_ids)} generated tokens")
        first = hook.first_token_at or t2
        timing["vision_prefill"] = (first - t1) * 1e3
        timing["decode"] = (t2 - first) * 1e3
        if rows is not None:
            prompt_fields["prompt_maps"] = prompt_rows.reshape(
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

    def warm_up(self, prompt: str, max_new_tokens: int) -> int:
        """Compile the decode step now (compile on; else nothing happens) for requests up to
        `prompt`'s length plus `max_new_tokens` on a 320x240 frame (the static cache rounds
        that up to a `CACHE_BLOCK` multiple; longer requests, and frames of another image-token
        count, decode eagerly: `decoder.eager_requests`). Returns the tokens the compiled cache
        holds, 0 when not compiling. Takes ~30-60 s on a 2-core CPU the first time, a few
        seconds once inductor's cache (TORCHINDUCTOR_CACHE_DIR) holds the kernels."""
        if self.decoder is None:
            return 0
        inputs, layout, _ = self.prepare(np.full((240, 320, 3), 127, np.uint8), prompt)
        prompt_len = int(inputs["input_ids"].shape[1])
        length = prompt_len + answer_room(self.model.config, prompt_len, max_new_tokens)
        with torch.no_grad():
            self.decoder.warm_up(inputs, layout.positions, length)
        return self.decoder.cache_length

    def prefill_views(self, image: np.ndarray, prompt: str,
                      views: Sequence[str]) -> ViewsPrefill | None:
        """The part of `view_maps` that needs no answer: the views of `image` (one batch) and
        every prompt token but the last through the model, into a KV cache. It can run on
        another thread while the answer is generated (the capture is per context, so it records
        nothing there). The cache holds every layer's keys and values of len(views) x prompt
        tokens until `view_maps` uses it (LLaVA-1.5-7B in float32: ~1 MB per token and view,
        ~1.8 GB for 3 views of a 600-token prompt). None for model types not checked for it
        (`PREFILL_MODEL_TYPES`): e.g. Qwen2-VL keeps M-RoPE's `rope_deltas` on the model between
        passes, which a pass on another thread would change under a generation.
        """
        from transformers import DynamicCache

        views = _check_view_list(views)
        if self.model_type not in PREFILL_MODEL_TYPES:
            return None
        inputs, layout = self._views_batch(image, prompt, views)
        head = {key: value[:, :-1] if _per_token(value, inputs) else value
                for key, value in inputs.items()}
        cache = DynamicCache()
        with torch.no_grad():
            self.model(**head, past_key_values=cache, use_cache=True, logits_to_keep=1)
        return ViewsPrefill(prompt, views, tuple(np.shape(image)), layout, cache,
                            inputs["input_ids"][:, -1:], inputs.get("attention_mask"))

    def view_maps(self, image: np.ndarray, prompt: str, token_ids: list[int],
                  views: Sequence[str], prefill: ViewsPrefill | None = None) -> np.ndarray:
        """The image-attention maps of an answer already generated, read on flipped views.

        One teacher-forced pass over prompt + answer, the views of `image` as one batch
        (`flip_image`); in view v, row t is the attention of the query that emits token t,
        flipped back onto the original image's grid: float32 [len(views), len(token_ids),
        grid_h, grid_w], each view like `Generation.image_maps`. With `prefill`
        (`prefill_views` of this image, prompt and views; used up here), the pass covers only
        the last prompt token and the answer. Raises ValueError for no tokens or views, or a
        prefill of another request.
        """
        token_ids, views = list(token_ids), _check_view_list(views)
        if not token_ids:
            raise ValueError("view_maps needs the answer's token ids")
        if prefill is None:
            inputs, layout = self._views_batch(image, prompt, views)
            inputs, cache = self._with_answer(inputs, token_ids), None
        else:
            if (prefill.prompt, prefill.views, prefill.image_shape) != \
                    (prompt, views, tuple(np.shape(image))):
                raise ValueError("the views prefill is of another prompt, image or view set")
            if prefill.cache is None:
                raise ValueError("a views prefill serves one view_maps call")
            layout, cache, prefill.cache = prefill.layout, prefill.cache, None
            inputs = self._answer_after(prefill, token_ids, cache.get_seq_length())
        config = self.model.config
        layers = getattr(getattr(config, "text_config", config), "num_hidden_layers", None)
        with torch.no_grad(), RowsCapture(layout.positions, rows=len(token_ids),
                                          layers=layers) as capture:
            # only the attention is wanted: the pass ends once the last layer's scores are read
            try:
                self.model(**inputs, past_key_values=cache, use_cache=cache is not None,
                           logits_to_keep=1)
            except CaptureComplete:
                pass
        maps = capture.maps().reshape(len(views), -1, layout.grid_h, layout.grid_w).numpy()
        return np.stack([unflip_maps(m.astype(np.float32), view) for m, view in zip(maps, views)])

    def _views_batch(self, image: np.ndarray, prompt: str,
                     views: tuple[str, ...]) -> tuple[dict, ImageLayout]:
        """Processor inputs of the views of `image` as one batch, and their (shared) layout."""
        batch, layout = [], None
        for view in views:
            inputs, layout, _ = self.prepare(flip_image(image, view), prompt)
            batch.append(inputs)
        # a flip keeps the image's size, so every view has the same tokens at the same places
        return {key: torch.cat([one[key] for one in batch])
                if isinstance(batch[0][key], torch.Tensor) else batch[0][key]
                for key in batch[0]}, layout

    def _answer_after(self, prefill: ViewsPrefill, token_ids: list[int], cached: int) -> dict:
        """Inputs continuing `prefill`'s cache: the last prompt token, then the answer but its
        last token (the query that emits answer token t sits at prompt_len - 1 + t)."""
        ids = prefill.last_input_ids
        answer = torch.tensor([token_ids[:-1]], dtype=ids.dtype, device=ids.device)
        ids = torch.cat([ids, answer.expand(ids.shape[0], -1)], dim=1)
        inputs = {"input_ids": ids,
                  "cache_position": torch.arange(cached, cached + ids.shape[1], device=ids.device)}
        if prefill.attention_mask is not None:
            inputs["attention_mask"] = torch.cat(
                [prefill.attention_mask, prefill.attention_mask.new_ones(answer.shape).expand(
                    ids.shape[0], -1)], dim=1)
        return inputs

    def _with_answer(self, inputs: dict, token_ids: list[int]) -> dict:
        """Processor inputs with the answer appended, for a teacher-forced pass."""
        # the query that emits answer token t sits at prompt_len - 1 + t: the last token is
        # never fed back, so the pass ends with the query that emitted it
        batch, prompt_len = inputs["input_ids"].shape
        answer = torch.tensor([token_ids[:-1]], dtype=inputs["input_ids"].dtype,
                              device=self.device).expand(batch, -1)
        extended = dict(inputs)
        for key, value in inputs.items():
            if not _per_token(value, inputs):
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


@dataclass
class ViewsPrefill:
    """The views' prompt, read ahead of the answer (`LMMAdapter.prefill_views`): the KV cache of
    every prompt token but the last, for one `view_maps` call to continue."""

    prompt: str
    views: tuple[str, ...]
    image_shape: tuple[int, ...]
    layout: ImageLayout
    cache: object | None  # a transformers DynamicCache, batch = len(views); None once used
    last_input_ids: torch.Tensor  # [len(views), 1], the prompt's last token
    attention_mask: torch.Tensor | None  # [len(views), prompt_len]


def _check_view_list(views: Sequence[str]) -> tuple[str, ...]:
    views = tuple(views)
    if not views:
        raise ValueError("reading attention views needs at least one view")
    return views


def _per_token(value, inputs: dict) -> bool:
    """Whether a processor output has one entry per input token (ids, mask, token type ids)."""
    return isinstance(value, torch.Tensor) and value.dim() == 2 \
        and value.shape == inputs["input_ids"].shape
