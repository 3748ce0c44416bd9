"""Process-wide settings the agent applies once it is built: the collector and the allocator.

**Garbage collector.** The hot path allocates a few container objects per log line (the
record, its body, parsed fields) that reference counting frees as soon as a batch is
encoded; they almost never form cycles. CPython's default collector still runs a
young-generation pass every 700 allocations and walks every tracked object on each full pass,
which cost about a third of the decode stage at a few hundred thousand lines per second. So
the agent freezes what exists once it is built (modules, config, clients: long-lived objects
a full collection would otherwise walk again and again) and raises the young-generation
threshold, so the rare real cycles (exceptions with tracebacks, asyncio internals) are still
collected, in fewer, slightly larger passes. A cycle waits at most ``YOUNG_THRESHOLD``
allocations longer than with the defaults.

**Allocator (glibc).** Big buffers (1 MiB reads, 4 MiB segment frames and request bodies)
came from the heap once glibc's dynamic mmap threshold had grown past them, and the small
payloads allocated between them kept the heap from shrinking: with the disk buffer the heap
stayed at ~280 MiB while its live data was a tenth of that. A fixed threshold of 1 MiB
serves big buffers with mmap, returned to the system when freed: peak RSS of the disk-buffer
benchmark row 400 → 170 MiB, for about +0.2 CPU-s per million lines (page faults). The
biggest and most frequent of these, Elasticsearch bulk bodies, are written into reused buffers
instead (``outputs.elasticsearch.bodies``), so they fault once, not on every request. An
operator's own ``MALLOC_MMAP_THRESHOLD_`` wins; other C libraries are left alone.

``SHIPPER_TUNING_DEFAULTS=1`` keeps CPython's and glibc's defaults (diagnosis).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

YOUNG_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 20)
MMAP_THRESHOLD_BYTES = 1 << 20
M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
DISABLE_ENV = "SHIPPER_TUNING_DEFAULTS"


def tune_for_throughput() -> bool:
    """Apply the agent's settings once its long-lived objects exist; False if disabled."""
    if os.environ.get(DISABLE_ENV) == "1":
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    tune_allocator()
    return True


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold (see the module docstring); False when not applied."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is not None:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
