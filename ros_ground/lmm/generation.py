"""One request's output (`Generation`) and the hook that streams it token by token."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ros_ground.geometry import ImageGeometry
from ros_ground.lmm.layout import ImageLayout

if TYPE_CHECKING:
    from ros_ground.lmm.adapter import LMMAdapter


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


class TokenHook:
    """Stopping criterion that streams tokens, checks cancel and timestamps the first token."""

    def __init__(self, adapter: LMMAdapter, prompt: str, prompt_len: int,
                 layout: ImageLayout, geometry: ImageGeometry,
                 on_token: Callable[[int, str, Callable[[], Generation]], None] | None,
                 should_stop: Callable[[], bool] | None):
        self.adapter, self.prompt, self.prompt_len = adapter, prompt, prompt_len
        self.layout, self.geometry = layout, geometry
        self.on_token, self.should_stop = on_token, should_stop
        self.maps: Callable[[], torch.Tensor] | None = None  # [steps, image tokens] so far
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
        maps = self.maps()[: len(generated)]
        grid = maps.reshape(-1, self.layout.grid_h, self.layout.grid_w).numpy()
        return Generation(self.prompt, text, list(generated), grid.astype(np.float32),
                          self.geometry, {})
