"""Making written records durable: fsync, directory fsync, then release their ack holds.

The syncer tracks every chunk whose file is still open for writing or not yet durable.
``sync`` snapshots how far each was written, fsyncs the files (and the directory when a
segment was created since the last time, so the new name survives a power cut too), and
only then releases the ack holds of the records below the snapshot: the order is what lets
a source advance its checkpoint without risking the records.

A failed fsync is never retried as a bare fsync: Linux may have dropped the dirty pages and
report success the next time. The bytes written since the last good fsync are kept
(``DiskChunk.unsynced``) and written again first. Until an fsync succeeds the syncer is
unhealthy and ``put`` waits (inputs pause).

File descriptors are closed only under the syncer's lock, so an fsync running in a worker
thread can never hit a closed (or reused) descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from shipper.buffer.disk.chunk import DiskChunk
from shipper.buffer.disk.report import StorageReporter
from shipper.buffer.disk.storage import Storage
from shipper.crashpoints import crashpoint

#: (chunk, its fd, its size when the fsync starts, bytes to write again first, or None)
_Work = tuple[DiskChunk, int, int, list[tuple[int, bytes]] | None]


class Syncer:
    """Durability of the open chunks of one disk buffer."""

    def __init__(self, directory: Path, storage: Storage, reporter: StorageReporter) -> None:
        self.directory = directory
        self.storage = storage
        self.reporter = reporter
        self.healthy = asyncio.Event()
        self.healthy.set()
        self.chunks: list[DiskChunk] = []
        self._lock = asyncio.Lock()

    def track(self, chunk: DiskChunk) -> None:
        self.chunks.append(chunk)

    async def sync(self) -> bool:
        """fsync what was written so far; False if storage failed (then unhealthy)."""
        async with self._lock:
            work: list[_Work] = [
                (c, c.fd, c.nbytes, list(c.unsynced) if c.rewrite else None)
                for c in self.chunks if not c.durable and c.fd is not None]
            if work:
                need_dir = any(not c.dir_synced for c, *_ in work)
                try:
                    await asyncio.to_thread(self._fsync_all, work, need_dir)
                except OSError as exc:
                    for c, *_ in work:
                        c.rewrite = True
                    self.healthy.clear()
                    self.reporter.failed("fsync", exc)
                    return False
                crashpoint("buffer_after_fsync")
                for c, _fd, size, _blobs in work:
                    c.synced = max(c.synced, size)
                    c.dir_synced = True
                    c.rewrite = False
                    c.drop_synced_bytes(size)
                    c.release_synced(size)
            for c in [c for c in self.chunks if c.sealed and c.durable]:
                self._close(c)
        if not self.healthy.is_set():
            self.healthy.set()
            self.reporter.recovered("fsync")
        return True

    def _fsync_all(self, work: list[_Work], need_dir: bool) -> None:
        storage = self.storage
        for _chunk, fd, _size, blobs in work:
            for offset, blob in blobs or ():
                storage.pwrite(fd, blob, offset)
            storage.fsync(fd)
        if need_dir:
            storage.fsync_dir(self.directory)

    async def forget(self, chunk: DiskChunk) -> None:
        """Stop tracking ``chunk`` (it is being deleted) and close its descriptor."""
        async with self._lock:
            if chunk in self.chunks:
                self._close(chunk)

    async def close_all(self) -> None:
        async with self._lock:
            for chunk in list(self.chunks):
                self._close(chunk)

    def _close(self, chunk: DiskChunk) -> None:
        self.chunks.remove(chunk)
        if chunk.fd is not None:
            with contextlib.suppress(OSError):
                self.storage.close(chunk.fd)
            chunk.fd = None
