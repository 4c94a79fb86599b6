"""Allocator and garbage-collector settings for a server worker.

A list response is one large ``bytes`` (a 100-score page is ~470 KB). glibc's malloc serves
blocks above a threshold with ``mmap`` and adjusts that threshold, and how far it trims the
heap, as it goes; in the benchmark, after a run of small-response load (GET by id), 100-item
lists fell from 3.6k to 1.3k/s on SQLite, with the page's join and the row fetch (fresh pages
from the kernel on every request) taking most of the time. Fixed thresholds, the documented
``mallopt`` settings, keep such blocks in the heap and reused: with them the same sequence
measured 3.6k/s (``python bench/run.py --backend sqlite --scales 10k --scenarios
get_by_id,list_top100``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 16 * 1024 * 1024  # above a $top=999 page
TRIM_THRESHOLD = 64 * 1024 * 1024  # free heap kept for reuse before it goes back to the OS


def tune_allocator() -> bool:
    """Set glibc's malloc thresholds for this process; False where the C library is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


GEN0_THRESHOLD = 7000


def settle_heap() -> None:
    """Once a worker has started: collect, then move every object alive so far (modules,
    compiled statements, the schema) out of the collector's sight, and collect the youngest
    generation less often.

    Full collections traversed that whole start-up heap: with PostgreSQL, whose reads allocate
    futures, tasks and records, GET by id had p99 41–47 ms at ~19k req/s; with this, 6–9 ms and
    ~10 % more requests (``python bench/run.py --backend postgresql --scales 10k --scenarios
    get_by_id --repeat 2 --duration 6``).
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
