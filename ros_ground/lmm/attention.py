"""Read the LMM's attention to image tokens without eager attention.

Eager attention (needed for `output_attentions`) materialises every [heads, q, k] matrix and is
slow; SDPA returns no weights. Instead we register our own attention function that runs the
stock SDPA kernel and, while a capture is active, recomputes only the last query row's scores
(the row that emits the next token). The softmax, the image-column gather and the sum over heads
and layers run once per step on all layers' scores stacked: on a GPU, where decoding is bound by
kernel launches, a few small ops per layer would cost more than the arithmetic. Memory stays
O(steps x image tokens) plus one step's [layers x heads x keys] scores.

With `prompt_positions`, the prefill also yields the rows of those prompt queries (the user's
own text tokens) to the image tokens, summed over heads and layers as each layer runs: memory
O(prompt rows x image tokens) plus one layer's [heads x rows x keys] scores, no eager attention.

The active capture lives in a ContextVar, so concurrent generations in different threads (the
multi-threaded ROS executor) never see each other's capture.
"""

from __future__ import annotations

import contextvars
import math
from typing import TypeVar

import torch

CAPTURE_IMPLEMENTATION = "ros_ground_capture"
# forward kwarg naming a list that collects each text layer's last-row scores (compiled.py)
ROWS_KWARG = "ros_ground_rows"

_ACTIVE: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "ros_ground_attention_capture", default=None
)
# typing.Self is Python 3.11+; Humble runs on 3.10
_CaptureT = TypeVar("_CaptureT", bound="_Capture")


class _Capture:
    """What both captures share: being the active capture of this context, and the image
    positions (with a copy per device, made once)."""

    def __init__(self, image_positions: torch.Tensor):
        positions = torch.as_tensor(image_positions, dtype=torch.long).flatten()
        if positions.numel() == 0:
            raise ValueError(f"{type(self).__name__} needs at least one image-token position")
        self.image_positions = positions
        self._positions_on: dict[torch.device, torch.Tensor] = {}
        self._token: contextvars.Token | None = None

    def __enter__(self: _CaptureT) -> _CaptureT:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, *exc) -> None:
        self._close()
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None
        self._positions_on.clear()

    def _close(self) -> None:
        """Runs on leaving the context, while the capture is still active."""

    def _positions(self, device: torch.device) -> torch.Tensor:
        if device not in self._positions_on:
            self._positions_on[device] = self.image_positions.to(device)
        return self._positions_on[device]


class AttentionCapture(_Capture):
    """Context manager collecting one image-attention vector per text-model forward pass.

    Step t's vector is the mean over heads and layers of softmax(q_last . K^T) restricted to the
    image columns, i.e. the attention of the query that emits generated token t.
    `prompt_positions` (sequence indices, optional): the first pass (the prefill) also records
    the same mean for each of those query rows, read with `prompt_maps()`.
    """

    def __init__(self, image_positions: torch.Tensor,
                 prompt_positions: torch.Tensor | None = None):
        super().__init__(image_positions)
        self.prompt_positions = None if prompt_positions is None else \
            torch.as_tensor(prompt_positions, dtype=torch.long).flatten()
        self._prompt_on: dict[tuple[torch.device, int], torch.Tensor] = {}
        self._prompt_sum: torch.Tensor | None = None  # [rows, num_image_tokens], prefill only
        self._prompt_count = 0
        self._passes = 0
        self._steps: list[torch.Tensor] = []
        self._scores: list[torch.Tensor] = []  # one [Hkv, rep, K] per layer, step in progress
        self._count = 0  # heads x layers in _scores
        self._first_layer: int | None = None
        self._context_len = 0  # key length of the previous step, to check the cache grows by q

    def _close(self) -> None:
        self._finish_step()
        self._prompt_on.clear()

    @property
    def steps(self) -> list[torch.Tensor]:
        """One float32 [num_image_tokens] per completed forward pass (prefill = step 0)."""
        self._finish_step()
        return self._steps

    def prompt_maps(self) -> torch.Tensor:
        """[len(prompt_positions), num_image_tokens] float32 on the CPU: the prefill's rows of
        the prompt positions (mean over heads and layers); empty without prompt positions."""
        rows = 0 if self.prompt_positions is None else self.prompt_positions.numel()
        if self._prompt_sum is None:
            if rows:
                raise RuntimeError("no prefill was captured: run the generation in the context")
            return torch.zeros((0, self.image_positions.numel()), dtype=torch.float32)
        return (self._prompt_sum / self._prompt_count).to("cpu", torch.float32)

    def maps(self) -> torch.Tensor:
        """[num_steps, num_image_tokens] float32 on the CPU."""
        steps = self.steps
        if not steps:
            return torch.zeros((0, self.image_positions.numel()), dtype=torch.float32)
        return torch.stack([s.detach().to("cpu", torch.float32) for s in steps])

    # -- called from the attention function -------------------------------------------------

    def _finish_step(self) -> None:
        if self._scores:
            scores = torch.stack(self._scores)  # [layers, Hkv, rep, K]
            probs = image_probabilities(scores, self._positions(scores.device))
            self._steps.append(probs.sum(dim=(0, 1, 2)) / self._count)
        self._scores = []
        self._count = 0

    def _add(self, module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
             attention_mask: torch.Tensor | None, scaling: float | None, kwargs: dict) -> None:
        layer_idx = int(module.layer_idx)
        q_len, k_len = query.shape[2], key.shape[2]
        if self._first_layer is None:
            self._first_layer = layer_idx
        if layer_idx == self._first_layer:  # a new forward pass of the text model
            self._finish_step()
            if k_len != self._context_len + q_len:
                raise NotImplementedError(
                    f"attention capture needs a growing dynamic KV cache: key length {k_len} != "
                    f"{self._context_len} cached + {q_len} new (static or sliding cache, or one "
                    f"capture reused for two generations?)"
                )
            self._context_len = k_len
            self._passes += 1
        elif k_len != self._context_len:
            raise NotImplementedError(
                f"layer {layer_idx} sees {k_len} keys but layer {self._first_layer} saw "
                f"{self._context_len} (sliding-window cache?); capture would be inexact"
            )
        if self._passes == 1 and self.prompt_positions is not None \
                and self.prompt_positions.numel():
            last = self._add_prompt_rows(module, query, key, attention_mask, scaling, kwargs)
        else:
            last = last_row_scores(module, query, key, attention_mask, scaling, kwargs)
        self._scores.append(last)
        self._count += query.shape[1]

    def _add_prompt_rows(self, module, query, key, attention_mask, scaling,
                         kwargs) -> torch.Tensor:
        """Adds the prompt rows' maps of this layer; returns its last row's scores [Hkv, rep, K].

        The last row is read in the same product as the prompt rows: on a small model each
        extra product costs more in launches than in arithmetic."""
        # per layer, summed at once: the prefill runs once, and holding every layer's
        # [heads x rows x keys] scores until the pass ends would cost layers times the memory
        if query.shape[0] != 1:
            raise NotImplementedError("attention capture while decoding supports batch size 1 only")
        device, q_len = query.device, query.shape[2]
        if (device, q_len) not in self._prompt_on:
            last = torch.tensor([q_len - 1], dtype=torch.long)
            self._prompt_on[(device, q_len)] = torch.cat([self.prompt_positions, last]).to(device)
        scores = query_rows_scores(module, query, key, attention_mask, scaling,
                                   self._prompt_on[(device, q_len)], kwargs)
        # scores: [1, Hkv, rep, rows + 1, K]
        probs = image_probabilities(scores[..., :-1, :], self._positions(device)).sum(dim=(0, 1, 2))
        self._prompt_sum = probs if self._prompt_sum is None else self._prompt_sum + probs
        self._prompt_count += query.shape[1]
        return scores[0, :, :, -1, :]


class CaptureComplete(Exception):
    """Raised from inside the forward pass by a `RowsCapture` given `layers`, once it has read
    the last of them: the rest of the pass (that layer's attention output and MLP, the final
    norm, the LM head) cannot change what was captured, so it is not computed."""


class RowsCapture(_Capture):
    """Context manager collecting the image attention of the last `rows` queries of one pass.

    For a teacher-forced answer (prompt + answer in one forward pass): row t is the attention
    of the query that emits answer token t, as `AttentionCapture` would have recorded it while
    generating, without a decode loop. Mean over heads and layers, like `AttentionCapture`.
    The pass may hold a batch (several views of one image, same token positions): one map per
    batch row.

    `layers` (optional): the text model's layer count; after reading its last layer the
    capture raises `CaptureComplete`, which the caller catches to end the pass early.
    """

    def __init__(self, image_positions: torch.Tensor, rows: int, layers: int | None = None):
        super().__init__(image_positions)
        if rows < 1:
            raise ValueError("RowsCapture needs at least one row")
        self.rows = rows
        self.layers = layers
        self._sum: torch.Tensor | None = None  # [batch, rows, num_image_tokens]
        self._count = 0
        self._layers: set[int] = set()

    def maps(self) -> torch.Tensor:
        """[batch, rows, num_image_tokens] float32 on the CPU."""
        if self._sum is None:
            raise RuntimeError("no attention was captured: run one forward pass inside the context")
        return (self._sum / self._count).to("cpu", torch.float32)

    def _add(self, module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
             attention_mask: torch.Tensor | None, scaling: float | None, kwargs: dict) -> None:
        layer = int(module.layer_idx)
        if layer in self._layers or query.shape[2] < self.rows:
            raise ValueError(f"one RowsCapture reads one forward pass of at "
                             f"least {self.rows} queries (layer {layer}: {query.shape[2]} "
                             f"queries, seen before: {layer in self._layers})")
        self._layers.add(layer)
        scores = last_rows_scores(module, query, key, attention_mask, scaling, self.rows, kwargs)
        probs = image_probabilities(scores, self._positions(scores.device))
        step = probs.sum(dim=(1, 2))  # [batch, rows, num_image_tokens]
        self._sum = step if self._sum is None else self._sum + step
        self._count += query.shape[1]
        if self.layers is not None and len(self._layers) == self.layers:
            raise CaptureComplete


def last_row_image_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                             attention_mask: torch.Tensor | None, scaling: float | None,
                             image_positions: torch.Tensor, kwargs: dict | None = None
                             ) -> torch.Tensor:
    """Sum over heads of softmax(q_last . k^T * scaling + mask_row)[image columns], float32.

    Raw probabilities over the whole context (not renormalised over the image slice).
    query: [1, Hq, Q, D] (its last row is read), key: [1, Hkv, K, D], attention_mask: None or
    additive/bool [1, 1 or Hq, Q, K]; image_positions: long [I] key indices. Returns float32 [I].
    Raises NotImplementedError for a batch above 1, a mask not covering the K keys, logit
    soft-capping or attention sinks; ValueError when Hq is not a multiple of Hkv.
    """
    scores = last_row_scores(module, query, key, attention_mask, scaling, kwargs)
    return image_probabilities(scores, image_positions).sum(dim=(0, 1))


def image_probabilities(scores: torch.Tensor, image_positions: torch.Tensor) -> torch.Tensor:
    """softmax over the keys (last dim), then the image-token columns only: scores [..., K]
    and image_positions long [I] -> [..., I] probabilities (not renormalised over the I)."""
    return torch.softmax(scores, dim=-1).index_select(-1, image_positions)


def last_row_scores(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                    attention_mask: torch.Tensor | None, scaling: float | None,
                    kwargs: dict | None = None) -> torch.Tensor:
    """q_last . k^T * scaling + mask_row as float32 [Hkv, rep, K].

    Grouped query heads are matched to their key head by a reshape, which equals repeating k.
    Float32 as SDPA kernels accumulate (bf16 logits would be off by ~0.04 at 10). One batched
    matmul, the additive mask fused in, per layer and step: the call sits in the decode loop,
    where every extra kernel launch costs more than its arithmetic.
    """
    kwargs = kwargs or {}
    if query.shape[0] != 1:
        raise NotImplementedError("attention capture while decoding supports batch size 1 only")
    n_kv_heads, rep, head_dim, scaling = _supported_shapes(module, query, key, scaling, kwargs)
    n_q_heads, k_len = query.shape[1], key.shape[2]
    # a view (splits the head dim); .float() copies only for half-precision models
    q = query[0, :, -1, :].reshape(n_kv_heads, rep, head_dim).float()
    keys_t = key[0].float().transpose(-1, -2)  # [Hkv, D, K]
    mask = None
    if attention_mask is not None:
        mask = attention_mask[0, :, -1, :]  # [1 or Hq, K]
        if mask.shape[-1] != k_len:
            raise NotImplementedError(f"mask covers {mask.shape[-1]} keys, attention {k_len}")
        mask = mask.reshape(n_kv_heads, rep, k_len) if mask.shape[0] == n_q_heads else mask[:1]
    if mask is not None and mask.dtype != torch.bool:
        return torch.baddbmm(mask.float(), q, keys_t, alpha=scaling)
    scores = torch.bmm(q, keys_t).mul_(scaling)
    if mask is not None:
        scores.masked_fill_(~mask, float("-inf"))
    else:
        window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
        if window is not None and k_len > window:
            # the last query (absolute position k_len-1) sees keys with idx > k_len-1-window
            scores[..., : k_len - window] = float("-inf")
    return scores


def last_rows_scores(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None, rows: int,
                     kwargs: dict | None = None) -> torch.Tensor:
    """Like `last_row_scores` for the last `rows` queries, any batch: float32
    [batch, Hkv, rep, rows, K].

    Kept apart from `last_row_scores`, which runs per layer and decode step, where building a
    causal mask would add kernel launches for a row that sees every key anyway.
    """
    q_len = query.shape[2]
    rows_at = torch.arange(q_len - rows, q_len, device=query.device)
    return query_rows_scores(module, query, key, attention_mask, scaling, rows_at, kwargs)


def query_rows_scores(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float | None,
                      rows: torch.Tensor, kwargs: dict | None = None) -> torch.Tensor:
    """q[rows] . k^T * scaling + mask for the query rows `rows` (indices into this pass's
    queries, on the query's device), any batch: float32 [batch, Hkv, rep, len(rows), K].

    Without a mask (SDPA's is_causal prefill) the causal mask, and a sliding window if the
    layer has one, are applied here: every row is normalised over the keys it may see.
    """
    kwargs = kwargs or {}
    n_kv_heads, rep, head_dim, scaling = _supported_shapes(module, query, key, scaling, kwargs)
    batch, n_q_heads, q_len, k_len = query.shape[0], query.shape[1], query.shape[2], key.shape[2]
    count = rows.numel()
    q = query.index_select(2, rows).float().reshape(batch, n_kv_heads, rep * count, head_dim)
    scores = torch.matmul(q, key.float().transpose(-1, -2)).mul_(scaling)
    scores = scores.reshape(batch, n_kv_heads, rep, count, k_len)
    if attention_mask is not None:
        mask = attention_mask.index_select(2, rows)  # [batch or 1, 1 or Hq, rows, K]
        if mask.shape[-1] != k_len:
            raise NotImplementedError(f"mask covers {mask.shape[-1]} keys, attention {k_len}")
        mask = mask.reshape(mask.shape[0], n_kv_heads, rep, count, k_len) \
            if mask.shape[1] == n_q_heads else mask[:, :1].unsqueeze(1)
        if mask.dtype == torch.bool:
            return scores.masked_fill_(~mask, float("-inf"))
        return scores.add_(mask.float())
    query_pos = (rows + (k_len - q_len))[:, None]  # absolute positions of the rows
    key_pos = torch.arange(k_len, device=scores.device)[None, :]
    hidden = key_pos > query_pos
    window = kwargs.get("sliding_window") or getattr(module, "sliding_window", None)
    if window is not None:
        hidden |= key_pos <= query_pos - window
    return scores.masked_fill_(hidden, float("-inf"))


def _supported_shapes(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                      scaling: float | None, kwargs: dict) -> tuple[int, int, int, float]:
    """(key heads, query heads per key head, head dim, scaling); refuses what we can't redo."""
    _, n_q_heads, _, head_dim = query.shape
    n_kv_heads = key.shape[1]
    if n_q_heads % n_kv_heads:
        raise ValueError(f"{n_q_heads} query heads are not a multiple of {n_kv_heads} key heads")
    softcap = kwargs.get("softcap") or getattr(module, "attn_logit_softcapping", None)
    if softcap:
        raise NotImplementedError("attention capture does not reproduce logit soft-capping")
    if kwargs.get("s_aux") is not None or kwargs.get("position_bias") is not None:
        raise NotImplementedError("attention capture does not reproduce sinks or position bias")
    if scaling is None:
        scaling = getattr(module, "scaling", None) or 1.0 / math.sqrt(head_dim)
    return n_kv_heads, n_q_heads // n_kv_heads, head_dim, scaling


def capture_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                              value: torch.Tensor, attention_mask: torch.Tensor | None,
                              *args, **kwargs):
    """SDPA attention, plus the capture for causal text layers while one is active."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    rows = kwargs.pop(ROWS_KWARG, None)
    text_layer = getattr(module, "is_causal", False) \
        and getattr(module, "layer_idx", None) is not None
    if rows is not None:
        # compiled decoding (compiled.py): a plain list passed down as a forward kwarg, since
        # torch.compile traces a list append into the graph but breaks it on a ContextVar
        if text_layer:
            scaling = kwargs.get("scaling", args[1] if len(args) > 1 else None)
            rows.append(last_row_scores(module, query, key, attention_mask, scaling, kwargs))
    else:
        capture = _ACTIVE.get()
        if capture is not None and text_layer:
            scaling = kwargs.get("scaling", args[1] if len(args) > 1 else None)
            with torch.no_grad():
                capture._add(module, query, key, attention_mask, scaling, kwargs)
    sdpa = ALL_ATTENTION_FUNCTIONS["sdpa"]
    return sdpa(module, query, key, value, attention_mask, *args, **kwargs)


def register_capture() -> None:
    """Register the capture function and its (SDPA) mask builder with transformers; idempotent."""
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    AttentionInterface.register(CAPTURE_IMPLEMENTATION, capture_attention_forward)
    AttentionMaskInterface.register(CAPTURE_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def install_capture(model) -> None:
    """Switch the model's text decoder to the capture attention; the vision tower stays as is."""
    register_capture()
    if getattr(model.config, "text_config", None) is not None:
        model.set_attn_implementation({"text_config": CAPTURE_IMPLEMENTATION})
    else:
        model.set_attn_implementation(CAPTURE_IMPLEMENTATION)
