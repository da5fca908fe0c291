"""Compiled greedy decoding with the attention capture inside the compiled graph.

`LMMAdapter.generate` decodes with `model.generate`, a dynamic KV cache and `AttentionCapture`:
on a GPU that loop is bound by kernel launches (every layer of every step launches its own
kernels from Python). Here the decode step, capture included, is one `torch.compile`d function
over a static KV cache (transformers `StaticCache`), so its shapes never change and, on CUDA,
`mode="reduce-overhead"` replays it as one CUDA graph per token.

The prefill (variable length, run once) stays eager under `AttentionCapture`, exactly as the
eager path runs it (the prompt's own rows included); its keys and values are then copied into
the static cache. Each decode step passes a list down as a forward kwarg (`ROWS_KWARG`), which
the capture attention fills with the last query row's scores per layer, and the step reduces
them to the image row in the graph: no ContextVar, no Python state, so no graph break. The
static cache's unused tail is masked (-inf) like any future key, so the softmax, and with it
the captured row, equals the eager one over the real keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from ros_ground.lmm.attention import ROWS_KWARG, AttentionCapture, image_probabilities

COMPILE_CHOICES = ("off", "auto", "on")
CACHE_BLOCK = 256  # static cache lengths are rounded up to this: few shapes, few recompiles
BACKEND = "inductor"  # torch.compile's backend when none is given
# model types whose decode step is positioned by its cache position alone (1-D RoPE), as `step`
# passes it. Qwen2-VL / Qwen2.5-VL place text after an image at cache position + rope_deltas
# on three M-RoPE axes: given cache positions, they decode other tokens from the second on.
COMPILED_MODEL_TYPES = ("llava", "llava_next")
LOG = logging.getLogger(__name__)


def compile_enabled(compile: str, device: torch.device) -> bool:
    """`compile` setting -> whether to decode compiled: on, off, or auto (on for CUDA)."""
    if compile not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES}, got {compile!r}")
    return compile == "on" or (compile == "auto" and torch.device(device).type == "cuda")


def compiled_decoding(compile: str, device: torch.device, model_type: str) -> bool:
    """Whether a model of `model_type` decodes compiled: `compile_enabled`, for
    COMPILED_MODEL_TYPES only. compile auto logs that another type decodes eagerly; compile on
    raises ValueError for it (its answers would be wrong, not slow)."""
    if not compile_enabled(compile, device):
        return False
    if model_type in COMPILED_MODEL_TYPES:
        return True
    reason = (f"the compiled decode step positions tokens for {' / '.join(COMPILED_MODEL_TYPES)} "
              f"only, not for model type {model_type!r} (Qwen2-VL's M-RoPE positions)")
    if compile == "on":
        raise ValueError(f"compile on: {reason}; set compile to auto or off")
    LOG.warning("compile auto: decoding eagerly, as %s", reason)
    return False


class CompiledDecoder:
    """Greedy decoding of one model with a compiled decode step (batch 1).

    backend / mode: passed to `torch.compile` (backend None: `BACKEND`; mode None:
    "reduce-overhead" on CUDA, i.e. CUDA graphs, else inductor's default). The step is compiled
    on first use (or by `warm_up`) for one static cache length (a `CACHE_BLOCK` multiple) and
    reused by every request that `fits` it (the same image tokens, no more tokens); the others
    are decoded eagerly by the caller (same tokens and maps) rather than stall for a recompile.
    Not thread-safe: callers serialise requests per model.
    """

    def __init__(self, model, image_token_id: int, backend: str | None = None,
                 mode: str | None = None):
        model_type = getattr(model.config, "model_type", "")
        if model_type not in COMPILED_MODEL_TYPES:  # its tokens would be wrong: compiled_decoding
            raise ValueError(f"the compiled decoder positions tokens for "
                             f"{' / '.join(COMPILED_MODEL_TYPES)} only, not {model_type!r}")
        self.model = model
        self.image_token_id = int(image_token_id)
        self.backend = backend or BACKEND
        self.mode = mode
        self.cache = None
        self._cache_len = 0
        self._step = None
        self._rows: list[torch.Tensor] = []
        self._image_tokens = 0  # the compiled step's (its shapes are static)
        self.eager_requests = 0  # requests that did not fit the compiled step (`fits`)

    def partial_maps(self) -> torch.Tensor:
        """The image rows of the generation in progress so far: float32 [tokens, image tokens]
        on the CPU (for streaming partial grounding)."""
        return torch.stack(self._rows).to("cpu", torch.float32)

    # -- the compiled step -------------------------------------------------------------------

    def step(self, input_ids: torch.Tensor, cache_position: torch.Tensor,
             image_positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decode step, uncompiled: input_ids [1, 1] at cache_position [1] ->
        (next token id [1] (greedy, image token suppressed), image row float32 [image tokens]:
        the mean over heads and layers of the fed token's attention to the image tokens)."""
        rows: list[torch.Tensor] = []
        out = self.model(input_ids=input_ids, past_key_values=self.cache,
                         cache_position=cache_position, position_ids=cache_position[None],
                         use_cache=True, logits_to_keep=1, **{ROWS_KWARG: rows})
        logits = out.logits[:, -1, :].float()
        logits[:, self.image_token_id] = float("-inf")
        scores = torch.stack(rows)  # [layers, Hkv, rep, K]
        heads = scores.shape[0] * scores.shape[1] * scores.shape[2]
        row = image_probabilities(scores, image_positions).sum(dim=(0, 1, 2)) / heads
        return logits.argmax(dim=-1), row

    def compiled_step(self):
        """The `torch.compile`d `step` (fullgraph: a graph break would raise, not slow down)."""
        if self._step is None:
            device = next(self.model.parameters()).device
            mode = self.mode
            if mode is None and device.type == "cuda":
                mode = "reduce-overhead"
            self._step = torch.compile(self.step, backend=self.backend, mode=mode,
                                       fullgraph=True, dynamic=False)
        return self._step

    @property
    def cache_length(self) -> int:
        """Tokens (prompt + answer) the static cache holds; 0 before the first request."""
        return self._cache_len

    def fits(self, length: int, image_tokens: int) -> bool:
        """Whether a request of `length` tokens (prompt + max_new_tokens) and `image_tokens`
        runs on the compiled step without compiling it again (always, before the first
        compilation: that one is shaped for it). A request that does not fit is for the eager
        path (`LMMAdapter.generate` counts it in `eager_requests`): a recompile would stall
        it ~30-60 s on a CPU, and dynamo stops compiling a function after a few shapes."""
        return self._step is None or (length <= self._cache_len
                                       and image_tokens == self._image_tokens)

    def warm_up(self, inputs: dict, image_positions: torch.Tensor, length: int) -> None:
        """Compile the step now, for a static cache of at least `length` tokens (prompt +
        answer), by decoding four tokens of the processor `inputs` (on CUDA the second and
        third calls record the CUDA graph): a node calls this while it configures, so that its
        first request does not wait for the compilation."""
        self.prepare_cache(length)
        self.generate(inputs, image_positions, 4, set())

    def release(self) -> None:
        """Drop the compiled step and the cache, and dynamo's compiled code with them: dynamo
        keeps compiled code per function, not per decoder, and after `recompile_limit` entries
        a `fullgraph` compile raises, so a node that reconfigures calls this when it unloads."""
        self._step, self.cache, self._cache_len, self._image_tokens = None, None, 0, 0
        torch.compiler.reset()

    def prepare_cache(self, length: int) -> None:
        """A static cache holding at least `length` tokens (reset; reallocated if shorter)."""
        from transformers import StaticCache

        if self.cache is None or self._cache_len < length:
            self._cache_len = -(-length // CACHE_BLOCK) * CACHE_BLOCK
            config = self.model.config
            self.cache = StaticCache(config=getattr(config, "text_config", config),
                                     max_cache_len=self._cache_len)
            self._step = None  # new cache tensors: the old graph's addresses are stale
        else:
            self.cache.reset()

    # -- generation --------------------------------------------------------------------------

    def generate(self, inputs: dict, image_positions: torch.Tensor, max_new_tokens: int,
                 eos_token_ids: set[int], prompt_positions: torch.Tensor | None = None,
                 on_token: Callable[[torch.Tensor], bool] | None = None,
                 compiled: bool = True) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """Greedy decoding of the processor `inputs` (batch 1) -> (token ids, image maps
        float32 [tokens, image tokens] on the CPU, prompt maps float32 [prompt rows, image
        tokens], as `AttentionCapture.prompt_maps`).

        Stops after an id in `eos_token_ids` (kept, as `model.generate` keeps it), after
        `max_new_tokens`, or when `on_token(sequence [1, prompt + generated])`, called after
        every token, returns True. `compiled=False` runs the same steps eagerly (the reference
        the compiled ones are tested against).
        """
        from transformers import DynamicCache

        prompt_len = int(inputs["input_ids"].shape[1])
        device = inputs["input_ids"].device
        self.prepare_cache(prompt_len + max_new_tokens)
        positions = torch.as_tensor(image_positions, dtype=torch.long).to(device)
        step = self.step
        if compiled:
            step = self.compiled_step()
            self._image_tokens = int(positions.numel())
        with torch.no_grad():
            prefill_cache = DynamicCache()
            with AttentionCapture(positions, prompt_positions) as capture:
                out = self.model(**inputs, past_key_values=prefill_cache, use_cache=True,
                                 logits_to_keep=1)
            at = torch.arange(prompt_len, device=device)
            for layer, (keys, values) in enumerate(_layers(prefill_cache)):
                self.cache.update(keys, values, layer, {"cache_position": at})
            del prefill_cache
            logits = out.logits[:, -1, :].float()
            logits[:, self.image_token_id] = float("-inf")
            token = logits.argmax(dim=-1)
            rows = self._rows = [capture.steps[0]]
            prompt_maps = capture.prompt_maps()
            sequence = torch.cat([inputs["input_ids"], token[:, None]], dim=1)
            while True:
                token_id = int(token[0])
                if on_token is not None and on_token(sequence):
                    break
                if token_id in eos_token_ids or len(rows) >= max_new_tokens:
                    break
                position = torch.tensor([sequence.shape[1] - 1], device=device)
                token, row = step(token.view(1, 1), position, positions)
                # CUDA-graph outputs are overwritten by the next replay: keep copies
                token, row = token.clone(), row.clone()
                rows.append(row)
                sequence = torch.cat([sequence, token[:, None]], dim=1)
        maps = torch.stack(rows).to("cpu", torch.float32)
        return sequence[0, prompt_len:].tolist(), maps, prompt_maps


def _layers(cache):
    """(keys, values) per layer of a DynamicCache, [batch, kv heads, tokens, head dim]."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache))
