"""How minigrad asks the C allocator to treat the arrays autograd makes and frees.

By default glibc hands every freed block over 128 KB-32 MB back to the operating
system, and the next array of that size faults each of its pages in again: a 4 MB
array costs about a thousand page faults, often more than the arithmetic on it.
Autograd frees and makes many such arrays every step, so minigrad raises the two
thresholds at import (deep learning frameworks' caching allocators do the same job
in their own way). Measured: one forward + backward over a 1M-element chain went from
12.6 ms to 3.2 ms. Memory then stays with the process up to the trim threshold.

Linux/glibc only; set MINIGRAD_MALLOC_TUNE=0 to leave malloc alone.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # mallopt's parameter numbers (malloc.h)


def keep_freed_arrays_for_reuse():
    """Raise glibc's mmap threshold to 32 MB and its trim threshold to 256 MB; True if done."""
    if os.environ.get("MINIGRAD_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):      # not glibc (musl, ...): nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


MALLOC_TUNED = keep_freed_arrays_for_reuse()
