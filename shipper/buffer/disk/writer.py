"""Appending to the open segment of a disk buffer: create, write, seal.

One segment is open at a time. A write goes to a worker thread as one ``pwrite`` at the
segment's known end, so a retry after a failure rewrites the same range; a failed write is
truncated away at once (and recovery would cut it off anyway). Each ack group that has
records in the segment holds it once, with the offset its records end at, until the
``Syncer`` has made that offset durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.disk.chunk import DiskChunk
from shipper.buffer.disk.format import HEADER_SIZE, encode_header, frame
from shipper.buffer.disk.plan import plan_run
from shipper.buffer.disk.recovery import segment_name
from shipper.buffer.disk.storage import Storage
from shipper.buffer.disk.sync import Syncer
from shipper.crashpoints import crashpoint


class SegmentWriter:
    """The producer side of one disk buffer (callers hold the buffer's write lock)."""

    def __init__(self, config: BufferConfig, directory: Path, storage: Storage, syncer: Syncer,
                 on_sealed: Callable[[DiskChunk], None], on_grown: Callable[[int], None],
                 keep_hot: Callable[[], bool]) -> None:
        self._config = config
        self._directory = directory
        self._storage = storage
        self._syncer = syncer
        self._on_sealed = on_sealed
        self._on_grown = on_grown
        self._keep_hot = keep_hot
        self.open: DiskChunk | None = None
        self.next_seq = 1

    def plan(self, payloads: Sequence[bytes], start: int, free: int) -> tuple[bool, int]:
        # ``is not None``, not truthiness: ``len(chunk)`` is its record count, and an open
        # segment still empty after a failed write must be appended to, not replaced (each
        # retry would leave one more header-only segment behind).
        cfg, cur = self._config, self.open
        return plan_run(payloads, start, open_size=cur.nbytes if cur is not None else None,
                        open_count=cur.count if cur is not None else 0, free=free,
                        chunk_limit_bytes=cfg.chunk_limit_bytes,
                        chunk_limit_records=cfg.chunk_limit_records)

    async def append(self, payloads: Sequence[bytes], start: int, end: int, new: bool,
                     group: AckGroup | None) -> None:
        """Write ``payloads[start:end]`` (into a new segment if ``new``). Raises OSError
        with none of them appended."""
        if new:
            self.seal()
            await self._create()
        chunk = self.open
        assert chunk is not None and chunk.fd is not None
        batch = payloads[start:end]
        blob = frame(batch)
        offset = chunk.nbytes
        try:
            await asyncio.to_thread(self._storage.pwrite, chunk.fd, blob, offset)
        except OSError:
            with contextlib.suppress(OSError):  # leave no half record behind
                await asyncio.to_thread(self._storage.truncate, chunk.fd, offset)
            raise
        crashpoint("buffer_after_write")
        self._on_grown(len(blob))
        chunk.nbytes += len(blob)
        chunk.count += end - start
        chunk.unsynced.append((offset, blob))
        if chunk.hot:
            chunk.payloads.extend(batch)
        if group is not None:
            if chunk.pending and chunk.pending[-1][0] is group:
                chunk.pending[-1] = (group, chunk.nbytes)
            else:
                group.hold()
                chunk.pending.append((group, chunk.nbytes))
        cfg = self._config
        if chunk.nbytes >= cfg.chunk_limit_bytes or chunk.count >= cfg.chunk_limit_records:
            self.seal()

    async def _create(self) -> None:
        seq = self.next_seq
        self.next_seq += 1
        path = self._directory / segment_name(seq)
        header = encode_header()
        try:
            fd = await asyncio.to_thread(self._storage.create, path, header)
        except FileExistsError:
            raise  # not ours to delete; the retry takes the next sequence number
        except OSError:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._storage.unlink, path)
            raise
        crashpoint("buffer_after_create")
        chunk = DiskChunk(seq, path, time.monotonic())
        chunk.fd = fd
        chunk.nbytes = HEADER_SIZE
        chunk.unsynced.append((0, header))
        chunk.hot = self._keep_hot()
        self.open = chunk
        self._syncer.track(chunk)
        self._on_grown(HEADER_SIZE)

    def seal(self) -> None:
        """No more appends to the open segment; hand it on (its fd closes once synced)."""
        chunk, self.open = self.open, None
        if chunk is not None:
            chunk.sealed = True
            self._on_sealed(chunk)

