"""Per-output buffers: bounded in bytes, chunked, releasing acks when data is safe.

``Buffer`` is the contract between the pipeline (producer: ``put``), delivery (consumer:
``get`` / ``settle`` / ``requeue``) and the agent's lifecycle (``open``, ``close``,
``shutdown``). Two implementations:

- ``MemoryBuffer``: a chunk's ack holds are released when delivery settles it (delivered or
  dead-lettered), so a crash re-reads from the sources what was not delivered.
- ``DiskBuffer``: holds are released once the records are fsynced into segment files
  (ack = safe); after a crash the buffer replays every unsettled record itself.

Both: ``when_full: block`` makes ``put`` wait (backpressure), ``drop_newest`` drops what
does not fit and counts it, exactly.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Protocol

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import Chunk, MemoryBuffer
from shipper.errors import StorageError
from shipper.metrics import Metrics

__all__ = ["Buffer", "Chunk", "MemoryBuffer", "buffer_directory", "build_buffer"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class Buffer(Protocol):
    """What the pipeline, delivery and the agent need from an output's buffer."""

    @property
    def bytes_used(self) -> int: ...

    @property
    def chunk_count(self) -> int: ...

    @property
    def empty(self) -> bool: ...

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest unsettled chunk was opened (0 when empty)."""

    async def open(self) -> None:
        """Prepare (disk: recover and queue unsettled records); before any other call."""

    async def put(self, payloads: Sequence[bytes], group: AckGroup | None) -> None:
        """Take encoded payloads; waits while full (block) or drops and counts them."""

    async def get(self) -> Chunk | None:
        """The next chunk to deliver; ``None`` once closed and drained."""

    def settle(self, chunk: Chunk) -> Awaitable[None]:
        """Delivery is done with ``chunk``; awaiting the result makes that durable."""

    def requeue(self, chunk: Chunk) -> None:
        """Give back a chunk whose delivery was cancelled; it stays unsettled."""

    def close(self) -> None:
        """Accept no more records; what is open becomes ready for delivery."""

    async def shutdown(self) -> None:
        """After delivery stopped: persist what is left and release resources."""


def buffer_directory(state_dir: Path, output: str) -> Path:
    """Where the disk buffer of ``output`` lives; refuses names that are not plain."""
    if not _SAFE_NAME.fullmatch(output) or output in (".", ".."):
        raise StorageError(f"output name {output!r} cannot name a buffer directory "
                           "(use letters, digits, '_', '-', '.')")
    return state_dir / "buffers" / output


def build_buffer(output: str, config: BufferConfig, metrics: Metrics, state_dir: Path,
                 ) -> Buffer:
    """The buffer ``config.type`` asks for (no I/O: ``open`` does it)."""
    if config.type == "disk":
        from shipper.buffer.disk import DiskBuffer

        return DiskBuffer(output, config, metrics, buffer_directory(state_dir, output))
    return MemoryBuffer(output, config, metrics)
