"""How much of a ``put`` fits where: a pure function, so the limits can be tested exactly."""

from __future__ import annotations

from collections.abc import Sequence

from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD


def plan_run(payloads: Sequence[bytes], start: int, *, open_size: int | None, open_count: int,
             free: int, chunk_limit_bytes: int, chunk_limit_records: int) -> tuple[bool, int]:
    """The next run of ``payloads[start:end]`` to append, as ``(new_segment, end)``.

    ``open_size``/``open_count`` describe the open segment (``None``: there is none);
    ``free`` is what the total limit still allows. The run goes into the open segment unless
    it is full, else into a new one whose header counts against ``free`` too — so the files
    never exceed the limit. A record larger than the chunk limit gets a segment of its own.
    ``end == start`` means nothing fits.
    """
    first = RECORD_OVERHEAD + len(payloads[start])
    new = (open_size is None or open_count >= chunk_limit_records
           or (open_count > 0 and open_size + first > chunk_limit_bytes))
    if new or open_size is None:
        size, count, cost = HEADER_SIZE, 0, HEADER_SIZE
    else:
        size, count, cost = open_size, open_count, 0
    i, n = start, len(payloads)
    while i < n and count < chunk_limit_records:
        f = RECORD_OVERHEAD + len(payloads[i])
        if (count > 0 and size + f > chunk_limit_bytes) or cost + f > free:
            break
        cost += f
        size += f
        count += 1
        i += 1
    return new, i
