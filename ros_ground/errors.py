"""The one exception type that means "the request's input is wrong", not "the model failed",
and the checks of a request's image and prompt that raise it.

Input checks (the image, the prompt, the requested mode) raise `InputError`; the node answers
it with BAD_INPUT. Any other exception out of the models, a torch or transformers ValueError
included, is a MODEL_ERROR. It subclasses ValueError so callers that catch ValueError (the
command line) still catch it.
"""

from __future__ import annotations

import numpy as np


class InputError(ValueError):
    """A request's image, prompt or option cannot be taken as given; the message says why."""


def check_prompt(prompt, max_chars: int) -> None:
    """Raise InputError unless `prompt` is a non-blank string of at most `max_chars` characters."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("empty prompt")
    if len(prompt) > max_chars:
        raise InputError(f"prompt has {len(prompt)} characters, limit is {max_chars}")


def check_image(image: np.ndarray) -> None:
    """Raise InputError unless `image` is a non-empty HxWx3 uint8 (RGB) array."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
            and image.dtype == np.uint8 and image.shape[0] > 0 and image.shape[1] > 0):
        shape = getattr(image, "shape", None)
        raise InputError(f"image must be a non-empty HxWx3 uint8 RGB array, got {shape}")

