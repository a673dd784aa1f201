"""After a tick the worker gives freed heap memory back to the OS (``stream_app.worker.memory``).

Run in a subprocess, on its own heap: glibc keeps freed memory between live
objects in its arenas, so a process's resident size stays at its high-water
mark until ``malloc_trim`` returns those pages (what a tick of every SKU
leaves behind: its arrays and messages, freed around the states that stay).
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os
from stream_app.worker.memory import release_free_memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

blobs = [bytes(1000) + i.to_bytes(4, "little") for i in range(300_000)]  # ~300 MB on the C heap
kept = blobs[::10]  # every tenth stays alive: the freed ones sit between them
del blobs
before = rss()
released = release_free_memory()
print(released, before, rss(), len(kept))
"""


def test_freed_memory_between_live_objects_goes_back_to_the_os():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    released, before, after, kept = out.stdout.split()
    assert released == "True" and int(kept) == 30_000
    # ~270 MB of the ~300 MB were freed: at least 100 MB of it must leave the resident set.
    assert int(before) - int(after) > 100 * 2**20, (before, after)
