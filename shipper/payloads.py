"""Payload bytes that wait in a buffer: sized to their content.

orjson (3.12 and later) returns ``bytes`` whose allocation is rounded up to a power of two
with a 4 KiB floor and never shrunk: a 1.7 KB document holds 8-16 KiB. ``len()`` and the
buffers' byte accounting see 1.7 KB, so a buffer limited to 256 MiB of payloads held over
a gigabyte of memory (measured with the ``null`` output). Every payload that is kept (in a
buffer, in flight, in a disk buffer awaiting fsync) is therefore either built by a join or
concatenation, which allocate exactly, or copied once with ``right_sized``.
"""

from __future__ import annotations


def right_sized(data: bytes) -> bytes:
    """A copy of ``data`` whose allocation matches its length (about 0.2 µs for 2 KB)."""
    return bytes(memoryview(data))
