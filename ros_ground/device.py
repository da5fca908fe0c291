"""The torch device a `device` setting names, for every model the package loads."""

from __future__ import annotations

import torch

# the device types the package runs its models on, as the `device` setting spells them
# (settings._device): "meta" holds shapes alone, and mps / xpu go untested here while the loaders'
# dtype choice, SAM's stream synchronisation and ahead.py's worker know only the CPU and CUDA
RUNNABLE = ("cpu", "cuda")


def resolve_device(device: str = "auto", error: type[Exception] = ValueError) -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu; any other name as torch reads it.

    Raises `error` (a loader's own ValueError type) for a name torch does not take, for a type
    outside RUNNABLE ("meta": loaded weights would hold no values), for a CUDA device when torch
    sees no CUDA, and for cuda:N past the GPUs torch sees: torch's own errors name its driver,
    not the setting, and come only at the first tensor moved.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:  # "CPU", "", 3: torch's words name no setting
        raise error(f"device must be auto, cpu, cuda or cuda:N, got {device!r} ({exc})") from None
    if resolved.type not in RUNNABLE:
        raise error(f"device must be auto, cpu, cuda or cuda:N, got {device!r} "
                    f"(a {resolved.type} device runs no model)")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise error(f"device {device!r} requested but CUDA is not available")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise error(f"device {device!r} requested but torch sees {count} CUDA device"
                        f"{'' if count == 1 else 's'} (cuda:0..cuda:{count - 1})")
    return resolved
