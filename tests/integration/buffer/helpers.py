"""Shared helpers for disk buffer tests: building buffers, faults, crashes, reading segments."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from shipper.buffer.config import BufferConfig
from shipper.buffer.disk import DiskBuffer
from shipper.buffer.disk.format import HEADER_SIZE, scan
from shipper.buffer.disk.storage import Storage
from shipper.metrics import Metrics


def disk_config(**overrides: object) -> BufferConfig:
    base: dict[str, object] = {"type": "disk", "flush_interval_secs": 3600.0, "fsync": "always",
                               "chunk_limit_records": 4}
    base.update(overrides)
    return BufferConfig(**base)  # type: ignore[arg-type]


def new_buffer(directory: Path, metrics: Metrics | None = None, storage: Storage | None = None,
               **overrides: object) -> DiskBuffer:
    return DiskBuffer("out", disk_config(**overrides), metrics or Metrics(), directory,
                      storage=storage, retry_secs=(0.01, 0.05))


def simulate_crash(buf: DiskBuffer) -> None:
    """What SIGKILL leaves: written bytes stay in the files; nothing else runs. (Only the
    file descriptors are closed, so the test process does not leak them.)"""
    task = buf._task
    if task is not None:
        task.cancel()
    for chunk in list(buf._syncer.chunks):
        if chunk.fd is not None:
            os.close(chunk.fd)
            chunk.fd = None
    buf._syncer.chunks.clear()


def simulate_power_loss(buf: DiskBuffer) -> None:
    """Worst case of a machine crash: every byte not fsynced is gone, and a segment whose
    directory entry was never fsynced is gone entirely."""
    lost = [(c.path, c.synced, c.dir_synced) for c in buf._syncer.chunks]
    simulate_crash(buf)
    for path, synced, dir_synced in lost:
        if not path.exists():
            continue
        if not dir_synced:
            path.unlink()
        else:
            os.truncate(path, synced)


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def stored_payloads(directory: Path) -> list[bytes]:
    """Every good record in the segments, in delivery order."""
    out: list[bytes] = []
    for path in segments(directory):
        data = path.read_bytes()
        out += scan(data, HEADER_SIZE).payloads(data)
    return out


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in segments(directory))


def counter(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"output": "out", **labels}) or 0.0


class FaultyStorage(Storage):
    """Storage whose operations fail on demand with a chosen errno (ENOSPC, EIO...)."""

    def __init__(self) -> None:
        self.faults: dict[str, int] = {}
        self.times: dict[str, int] = {}  # fail only this many more times (absent: until cleared)
        self.calls: list[tuple[str, object]] = []
        self.on_call: Callable[[str], None] | None = None

    def _maybe_fail(self, op: str, detail: object = None) -> None:
        self.calls.append((op, detail))
        if self.on_call is not None:
            self.on_call(op)
        code = self.faults.get(op)
        if code is not None:
            if op in self.times:
                self.times[op] -= 1
                if self.times[op] <= 0:
                    del self.faults[op], self.times[op]
            raise OSError(code, os.strerror(code))

    def create(self, path: Path, header: bytes) -> int:
        self._maybe_fail("create", path.name)
        return super().create(path, header)

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self._maybe_fail("pwrite", offset)
        if self.faults.get("pwrite_partial") is not None:
            os.pwrite(fd, data[: len(data) // 2], offset)  # half written, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        self._maybe_fail("fsync")
        super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        self._maybe_fail("fsync_dir")
        super().fsync_dir(path)

    def read(self, path: Path) -> bytes:
        self._maybe_fail("read", path.name)
        return super().read(path)

    def unlink(self, path: Path) -> None:
        self._maybe_fail("unlink", path.name)
        super().unlink(path)
