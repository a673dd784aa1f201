"""Giving freed heap memory back to the operating system after a forecast tick.

A tick allocates and frees a micro-batch's arrays, messages and states for
every active SKU; glibc keeps freed memory in its arenas for reuse, so the
process's resident size stays at the tick's high-water mark although the
memory is free. ``malloc_trim(0)`` returns what it can. Elsewhere than glibc
(musl, macOS) there is nothing to call and the worker goes on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _trim():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Ask the C allocator to return free memory to the OS (the GIL is released meanwhile); False where it cannot."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
