"""The torch device a `device` setting names, for every model the package loads."""

from __future__ import annotations

import torch


def resolve_device(device: str = "auto", error: type[Exception] = ValueError) -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu; any other name as torch reads it.

    Raises `error` (a loader's own ValueError type) for a name torch does not take, and for a
    CUDA device when torch sees no CUDA: torch's own errors name its driver, not the setting.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise error(f"device {device!r} requested but CUDA is not available")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:  # "CPU", "", 3: torch's words name no setting
        raise error(f"device must be auto, cpu, cuda or cuda:N, got {device!r} ({exc})") from None
