"""Request bodies written into buffers that are reused from one bulk request to the next.

A bulk body is megabytes: ``b"".join`` allocates it afresh for every request, and an
allocation that size is a new memory mapping (see ``shipper.tuning``) whose every page
faults on first write and is handed back when the body is freed. That cost a quarter of a
microsecond per record, as much as the copy itself. A reused buffer keeps its pages.

A buffer goes back to the pool only after its request has finished normally. If the request
was cancelled or failed, the sending thread may still hold the body, so that buffer is left
to the garbage collector and never written again.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from shipper.compression import gzip_fast

# A buffer that has grown past this is not kept: one oversized request must not pin its size.
KEEP_MAX_BYTES = 32 * 1024 * 1024


class BodyBuffers:
    """A small pool of reusable body buffers for one output (event-loop use only)."""

    def __init__(self, keep_max_bytes: int = KEEP_MAX_BYTES) -> None:
        self._free: list[io.BytesIO] = []
        self._keep_max_bytes = keep_max_bytes

    @asynccontextmanager
    async def body(self, payloads: Sequence[bytes],
                   compress: bool = False) -> AsyncIterator[bytes | memoryview]:
        """The payloads joined, as a view valid until the ``async with`` block ends."""
        buf = self._free.pop() if self._free else io.BytesIO()
        buf.seek(0)
        buf.writelines(payloads)
        size = buf.tell()
        whole = buf.getbuffer()
        view = whole[:size]
        if compress:
            # gzip's output is a new object anyway; the buffer only saves the join.
            compressed = gzip_fast(view)
            view.release()
            whole.release()
            self._keep(buf)
            yield compressed
            return
        yield view  # an exception (cancellation included) leaves the buffer behind
        view.release()
        whole.release()
        self._keep(buf)

    def _keep(self, buf: io.BytesIO) -> None:
        if buf.seek(0, io.SEEK_END) <= self._keep_max_bytes:
            self._free.append(buf)
