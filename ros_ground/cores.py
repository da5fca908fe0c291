"""The CPU cores this process may use, and the `torch_threads` setting checked against them.

Without torch: the command line checks `--torch-threads` while it parses its arguments, and a
usage error should not wait for torch's import (about 2 s on a 2-core CPU).
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_torch_threads(torch_threads: int) -> int:
    """`torch_threads` if 0 (torch's default) .. `usable_cores()`; ValueError naming it else (more
    threads than CPUs: a request took 11.7 s at 1000 threads on 2 CPUs, 0.2 s at 1)."""
    if not 0 <= torch_threads <= usable_cores():
        raise ValueError(f"torch_threads must be 0 (torch's default) .. {usable_cores()} (the "
                         f"CPUs this process may use), got {torch_threads}")
    return torch_threads
