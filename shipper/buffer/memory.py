"""In-memory chunked buffer of one output.

Records arrive already encoded by the output, so the byte limit is exact. The buffer groups
payloads into chunks (closed on ``chunk_limit_bytes``, ``chunk_limit_records`` or after
``flush_interval_secs``) and hands ready chunks to delivery. A memory buffer is not a safe
place: the ack groups of a chunk are released only when delivery settles the chunk (delivered
or dead-lettered), so a crash before that leaves the source's checkpoint behind the data and
the records are read again; deterministic ids make the replay harmless.

A batch whose ack group is ``urgent`` (a client waits for its ack before sending more) marks
the open chunk urgent: the next free delivery worker takes it at once instead of after
``flush_interval_secs``. While every worker is busy the chunk keeps filling, so many waiting
clients still share chunks; sources that do not wait (tail) keep the usual cadence.

``when_full: block`` makes ``put`` wait for space — the source stops reading, which is the
whole backpressure mechanism. ``drop_newest`` drops what does not fit and counts it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Generator, Sequence

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.metrics import Metrics
from shipper.payloads import run_end, running_totals


class Chunk:
    """A group of payloads delivered together; settled as a whole."""

    __slots__ = ("created", "groups", "id", "nbytes", "payloads", "urgent")

    def __init__(self, chunk_id: int, created: float) -> None:
        self.id = chunk_id
        self.payloads: list[bytes] = []
        self.nbytes = 0
        self.groups: list[AckGroup] = []
        self.created = created
        self.urgent = False  # a client waits for records in it: deliver when a worker is free

    def __len__(self) -> int:
        return len(self.payloads)


class _Done:
    """An awaitable that is already complete: what ``MemoryBuffer.settle`` returns, since
    settling in memory needs no I/O (callers that do not await it lose nothing)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # a generator that finishes at once: awaiting it never suspends


_DONE = _Done()


class MemoryBuffer:
    """Bounded chunk queue between the pipeline and one output's delivery."""

    def __init__(self, output: str, config: BufferConfig, metrics: Metrics) -> None:
        self._output = output
        self._config = config
        self._metrics = metrics
        self._ids = itertools.count(1)
        self._open: Chunk | None = None
        self._ready: deque[Chunk] = deque()
        self._in_flight: dict[int, Chunk] = {}
        self._bytes = 0
        self._closed = False
        self._changed = asyncio.Event()  # a chunk became ready, or the buffer closed
        self._space = asyncio.Event()  # bytes were freed
        self._gauge_bytes = metrics.buffer_bytes.labels(output)
        self._gauge_chunks = metrics.buffer_chunks.labels(output)
        self._dropped = metrics.records_dropped.labels(output, "buffer_full")

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Nothing to recover: a memory buffer starts empty."""

    async def shutdown(self) -> None:
        """Nothing to persist: undelivered records were never acknowledged to their sources."""

    # -- producer side -------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def chunk_count(self) -> int:
        return len(self._ready) + len(self._in_flight) + (1 if self._open else 0)

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest unsettled chunk was opened (0 when empty)."""
        now = time.monotonic() if now is None else now
        oldest = [c.created for c in self._in_flight.values()]
        oldest += [c.created for c in self._ready]
        if self._open is not None:
            oldest.append(self._open.created)
        return max(0.0, now - min(oldest)) if oldest else 0.0

    async def put(self, payloads: Sequence[bytes], group: AckGroup | None) -> None:
        """Append payloads, waiting for space (block) or dropping what does not fit."""
        if self._closed:
            raise RuntimeError(f"buffer of output {self._output!r} is closed")
        limit = self._config.total_limit_bytes
        totals = running_totals(map(len, payloads))
        start = 0
        n = len(payloads)
        while start < n:
            free = limit - self._bytes
            end = run_end(totals, start, n, free)
            if end == start and self._bytes == 0:
                end = start + 1  # one payload larger than the whole buffer: admit it alone
            if end > start:
                self._append(payloads, totals, start, end, group)
                start = end
                continue
            if self._config.when_full == "drop_newest":
                dropped = n - start
                self._dropped.inc(dropped)
                if group is not None:
                    group.dropped += dropped
                return
            self._space.clear()
            await self._space.wait()

    def _append(self, payloads: Sequence[bytes], totals: list[int], start: int, end: int,
                group: AckGroup | None) -> None:
        """Add ``payloads[start:end]`` (``totals``: running byte totals) to chunks."""
        cfg = self._config
        i = start
        while i < end:
            chunk = self._open
            if chunk is None:
                chunk = self._open = Chunk(next(self._ids), time.monotonic())
            room = cfg.chunk_limit_bytes - chunk.nbytes
            j = run_end(totals, i, end, room)
            if j == i and not chunk.payloads:
                j = i + 1  # a payload larger than a chunk gets a chunk of its own
            j = min(j, i + cfg.chunk_limit_records - len(chunk.payloads))
            if j > i:
                added = totals[j] - totals[i]
                chunk.payloads.extend(payloads[i:j])
                chunk.nbytes += added
                self._bytes += added
                if group is not None and (not chunk.groups or chunk.groups[-1] is not group):
                    group.hold()
                    chunk.groups.append(group)
                i = j
            if i < end:
                self._seal_open()
        chunk = self._open
        if chunk is not None and (chunk.nbytes >= cfg.chunk_limit_bytes
                                  or len(chunk.payloads) >= cfg.chunk_limit_records):
            self._seal_open()
            chunk = None
        if group is not None and group.urgent and chunk is not None and chunk.payloads:
            chunk.urgent = True
        self._update_gauges()
        self._changed.set()  # wake get(): it arms the flush timer, or takes an urgent chunk

    def _seal_open(self) -> None:
        if self._open is not None and self._open.payloads:
            self._ready.append(self._open)
            self._changed.set()
        self._open = None

    # -- consumer side -------------------------------------------------------------------------

    async def get(self) -> Chunk | None:
        """The next chunk to deliver; ``None`` once closed and empty."""
        while True:
            if self._ready:
                chunk = self._ready.popleft()
                self._in_flight[chunk.id] = chunk
                return chunk
            if self._open is not None and self._open.payloads:
                due = self._open.created + self._config.flush_interval_secs - time.monotonic()
                if due <= 0 or self._closed or self._open.urgent:
                    self._seal_open()
                    continue
            else:
                due = None
            if self._closed:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=due)
            except TimeoutError:
                pass

    def settle(self, chunk: Chunk) -> Awaitable[None]:
        """Delivery is done with the chunk: free its bytes and release its ack holds, at once
        (the returned awaitable is already complete)."""
        if self._in_flight.pop(chunk.id, None) is None:
            raise RuntimeError(f"chunk {chunk.id} settled twice or never handed out")
        self._bytes -= chunk.nbytes
        self._update_gauges()
        self._space.set()
        for group in chunk.groups:
            group.release()
        return _DONE

    def requeue(self, chunk: Chunk) -> None:
        """Give an unfinished chunk back (delivery was cancelled); it stays unsettled."""
        if self._in_flight.pop(chunk.id, None) is not None:
            self._ready.appendleft(chunk)

    def close(self) -> None:
        """Accept no more records; the open chunk becomes ready at once."""
        self._closed = True
        self._seal_open()
        self._changed.set()

    @property
    def empty(self) -> bool:
        return not self._ready and not self._in_flight and not (self._open and self._open.payloads)

    def _update_gauges(self) -> None:
        self._gauge_bytes.set(self._bytes)
        self._gauge_chunks.set(self.chunk_count)
