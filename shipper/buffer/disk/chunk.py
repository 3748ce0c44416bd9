"""One disk buffer chunk: a segment file plus what the buffer must remember about it."""

from __future__ import annotations

from pathlib import Path

from shipper.acks import AckGroup
from shipper.buffer.memory import Chunk


class DiskChunk(Chunk):
    """A chunk backed by one segment file.

    ``nbytes`` is the file size (header and framing included: that is what the byte limit
    counts). ``payloads`` is authoritative only while ``hot``; a cold chunk is read back from
    its file when delivery takes it. ``pending`` lists the ack groups still waiting for this
    file to become durable, each with the file offset its records end at; ``unsynced`` keeps
    the bytes written since the last successful fsync, so that after a failed fsync they are
    written again instead of trusting pages the kernel may have dropped.
    """

    __slots__ = ("count", "dir_synced", "fd", "hot", "load_failures", "path", "pending",
                 "rewrite", "sealed", "synced", "unsynced")

    def __init__(self, seq: int, path: Path, created: float) -> None:
        super().__init__(seq, created)
        self.path = path
        self.fd: int | None = None
        self.count = 0
        self.hot = False
        self.sealed = False
        self.synced = 0
        self.dir_synced = False
        self.rewrite = False
        self.pending: list[tuple[AckGroup, int]] = []
        self.unsynced: list[tuple[int, bytes]] = []
        self.load_failures = 0

    @classmethod
    def recovered(cls, seq: int, path: Path, size: int, count: int, created: float,
                  ) -> DiskChunk:
        """A sealed, durable, cold chunk found on disk at start."""
        chunk = cls(seq, path, created)
        chunk.nbytes = chunk.synced = size
        chunk.count = count
        chunk.sealed = chunk.dir_synced = True
        return chunk

    def __len__(self) -> int:
        return self.count

    @property
    def durable(self) -> bool:
        return self.dir_synced and self.synced >= self.nbytes and not self.rewrite

    def release_synced(self, size: int) -> None:
        """Release the holds of every group whose records end at or before ``size``."""
        pending = self.pending
        k = 0
        while k < len(pending) and pending[k][1] <= size:
            k += 1
        done, self.pending = pending[:k], pending[k:]
        for group, _ in done:
            group.release()

    def release_all(self) -> None:
        pending, self.pending = self.pending, []
        for group, _ in pending:
            group.release()

    def drop_synced_bytes(self, size: int) -> None:
        self.unsynced = [(off, blob) for off, blob in self.unsynced if off + len(blob) > size]
