"""The one exception type that means "the request's input is wrong", not "the model failed",
and the checks of a request's image and prompt that raise it.

Input checks (the image, the prompt, the requested mode) raise `InputError`; the node answers
it with BAD_INPUT. Any other exception out of the models, a torch or transformers ValueError
included, is a MODEL_ERROR. It subclasses ValueError so callers that catch ValueError (the
command line) still catch it. Also: how much of a sender's string an error quotes (`shorten`),
and what torch.load refused in a pickled checkpoint (`pickle_refusal`).
"""

from __future__ import annotations

import numpy as np

ECHO_CHARS = 200  # the most of a sender's string an error message or a log line quotes


def shorten(text, limit: int = ECHO_CHARS):
    """`text` as an error message, a log line or a refused request's response may echo it: a
    string of at most `limit` characters unchanged, a longer one its first `limit` characters,
    "..." and its length in characters ("rgb8xx... (10000 characters)"); anything not a string
    unchanged. Strings a sender chose (an image's encoding, a goal's mode, a frame_id, a
    refused prompt) are unbounded on the wire: a 10 MB command would otherwise be sent back
    whole and a 10 kB encoding make 10 kB log lines."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class InputError(ValueError):
    """A request's image, prompt or option cannot be taken as given; the message says why."""


class ImageCodecError(InputError):
    """An image that cannot be decoded or encoded as given (base of the two errors below)."""


class ImageDecodeError(ImageCodecError):
    """The image fields are inconsistent, the payload is corrupt, or the encoding unsupported."""


def check_prompt(prompt, max_chars: int) -> None:
    """Raise InputError unless `prompt` is a non-blank string of at most `max_chars` characters,
    all of them encodable as UTF-8 (a command line's undecodable bytes reach Python as lone
    surrogates, which the tokenizers reject with a TypeError)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("empty prompt")
    if len(prompt) > max_chars:
        raise InputError(f"prompt has {len(prompt)} characters, limit is {max_chars}")
    check_utf8(prompt)


def check_utf8(prompt: str) -> None:
    """InputError unless `prompt` encodes as UTF-8: a command line's undecodable bytes reach
    Python as lone surrogates, which neither a tokenizer nor a ROS string takes."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputError(f"prompt is not valid UTF-8 text: character {err.start} stands for an "
                         "undecodable byte") from None


def check_image(image) -> np.ndarray:
    """`image`, unchanged; raises InputError unless it is a non-empty HxWx3 uint8 (RGB) numpy
    array. The one image check of every model input: the engine, SAM and the LMM's processor."""
    expected = "image must be a non-empty HxWx3 uint8 RGB array"
    if not isinstance(image, np.ndarray):
        raise InputError(f"{expected}, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise InputError(f"{expected}, got {image.shape} {image.dtype}")
    return image


def pickle_refusal(message: str) -> str:
    """What torch.load(weights_only=True) refused ("Unsupported global: GLOBAL posix.system",
    "Unsupported operand 149"), out of the pickle.UnpicklingError message it raised; the rest
    is advice to its own users (load it with weights_only=False, allowlist the global, file an
    issue), which the SAM and LMM loaders' refusals leave out."""
    said = message.split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    if "WeightsUnpickler error:" not in message:  # another wording: the line naming the refusal
        lines = [line for line in lines if "unsupported" in line.lower()] or lines[-1:]
    return lines[0].split(". Please")[0].rstrip(".") if lines else "no reason given"
