"""pybullet without its C-level banner on stdout, which would corrupt `--json` output.

pybullet prints "pybullet build time ..." with C stdio when a client connects; the text sits in
C's stdout buffer until exit, so the redirect has to flush that buffer before it is undone.
"""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager

_LIBC = ctypes.CDLL(None)


@contextmanager
def quiet_stdout():
    sys.stdout.flush()
    _LIBC.fflush(None)
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
            _LIBC.fflush(None)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def import_pybullet():
    with quiet_stdout():
        import pybullet
    return pybullet


def connect_direct(p) -> int:
    """A private headless client, its banner discarded."""
    with quiet_stdout():
        return p.connect(p.DIRECT)
