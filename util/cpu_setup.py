"""CPU runtime defaults, applied by the drivers before anything imports torch (glibc and OpenMP read settings once).

glibc's allocator keeps freed memory (by default large tensors are unmapped and page-faulted in again at every
iteration); any `MALLOC_*_` variable the user sets wins. OpenMP's waiting policy is left to the user
(`OMP_WAIT_POLICY=PASSIVE` helps a shared machine, slows an idle one). Figures: docs/scaling.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters
ALLOCATOR = {_M_MMAP_THRESHOLD: 32 * 2**20,  # glibc's maximum: blocks up to 32 MiB come from the heap
             _M_TRIM_THRESHOLD: 2**30,  # return memory to the system only beyond 1 GiB of free heap top
             _M_TOP_PAD: 256 * 2**20}  # grow the heap in 256 MiB steps


def apply_defaults() -> bool:
    """Apply the allocator default if torch is not imported yet; returns whether it could still take effect."""
    if "torch" in sys.modules:
        return False
    if not any(name.startswith("MALLOC_") for name in os.environ):
        tune_glibc_malloc()
    return True


def tune_glibc_malloc() -> bool:
    """Keep freed memory in the process (see the module docstring); False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in ALLOCATOR.items())


apply_defaults()
