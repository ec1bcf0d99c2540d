"""CPU runtime defaults, applied by the drivers before anything imports torch (OpenMP reads its settings once).

1. OpenMP threads wait passively. PyTorch's CPU kernels run on OpenMP threads that by default spin while they
   wait for each other at the end of every parallel operation. When the machine has other work (another run,
   loader workers, a shared or virtual machine) a spinning thread burns the time slice its partner needs, and
   each of the thousands of operations per iteration waits for a descheduled thread: on this project's 2-core
   machine under load, a CycleGAN 128-px iteration took 8-23 s instead of 4.3 s. Passive waiting costs a few
   microseconds per operation on an idle machine and removes that collapse.
2. glibc's allocator keeps freed memory instead of returning it to the system after every iteration. By
   default large tensors are mmap-ed and unmapped each time, so every iteration page-faults its activations
   in again: pix2pix at 256 px took ~67,000 page faults per iteration; with these settings ~2,000, and the
   iteration 10-20 % less time at the same peak memory.

Settings the user gives in the environment win (`OMP_WAIT_POLICY=ACTIVE`, any `MALLOC_*_` variable).
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
    """Apply both defaults if torch is not imported yet; returns whether they could still take effect."""
    if "torch" in sys.modules:
        return False
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
