"""Dead-letter store: records an output rejected for good, kept with the reason.

One NDJSON file per output per UTC day under ``state_dir/dead-letter/``; each line is the
original record, the target it was meant for, the error type and reason, and when. Written and
fsynced before the record counts as settled, so a rejected record is never silently gone. The
store is bounded: past ``max_bytes`` new rejects are counted as dropped (reason
``dead_letter_full``) and logged, never written without limit onto the node's disk.

A write that fails (ENOSPC, EIO, EACCES, a file where the directory should be) raises
``StorageError`` and leaves the file as it was: the bytes are written with ``pwrite`` at the
file's end and cut off again on any failure, so a retry never duplicates or splices lines.
Delivery then keeps the chunk unsettled and retries the write with backoff (see
``shipper.delivery``). Every system call goes through ``DeadLetterFiles``, which tests replace
to inject faults at each step; the blocking work runs in a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from shipper.errors import StorageError
from shipper.metrics import Metrics
from shipper.protocols import ItemError

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class DeadLetterFiles:
    """The dead-letter store's system calls (production implementation; all blocking)."""

    def makedirs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    def usage(self, directory: Path) -> int:
        """Bytes held by the dead-letter files already there."""
        return sum(p.stat().st_size for p in directory.glob("*.ndjson"))

    def open(self, path: Path) -> tuple[int, bool]:
        """Open ``path`` for writing, creating it; returns (fd, whether it was created)."""
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:
            return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o640), True
        except FileExistsError:
            return os.open(path, flags), False

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def ends_with_newline(self, path: Path, size: int) -> bool:
        """Whether the last byte is a newline (a torn line from a crash is not continued)."""
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            return fh.read(1) == b"\n"

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, _DIR_FLAGS)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self, fd: int) -> None:
        os.close(fd)


class DeadLetterStore:
    """Append-only, size-bounded NDJSON files of rejected records."""

    def __init__(self, directory: Path, metrics: Metrics, max_bytes: int = 512 * 1024 * 1024,
                 *, files: DeadLetterFiles | None = None) -> None:
        self._dir = directory
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._files = files or DeadLetterFiles()
        self._used: int | None = None
        self._lock = threading.Lock()  # delivery workers of every output share the store
        self._unsynced_names: set[Path] = set()  # created, directory not fsynced since

    @property
    def directory(self) -> Path:
        return self._dir

    def file_for(self, output: str, now: float | None = None) -> Path:
        """The file ``output``'s rejects go to at ``now`` (one per output and UTC day)."""
        day = time.strftime("%Y.%m.%d", time.gmtime(time.time() if now is None else now))
        return self._dir / f"{output}-{day}.ndjson"

    async def write(self, output: str, entries: Sequence[tuple[dict[str, Any], ItemError]],
                    ) -> int:
        """Persist rejected records durably; returns how many were stored (the rest are
        counted as dropped, ``dead_letter_full``). Raises StorageError, with nothing written
        or counted, when the files cannot be written: the caller retries."""
        if not entries:
            return 0
        return await asyncio.to_thread(self.write_blocking, output, entries)

    def write_blocking(self, output: str,
                       entries: Sequence[tuple[dict[str, Any], ItemError]]) -> int:
        """``write`` in the calling thread."""
        if not entries:
            return 0
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        lines: list[bytes] = []
        for described, error in entries:
            entry = dict(described)
            entry["error"] = {"status": error.status, "type": error.type, "reason": error.reason}
            entry["output"] = output
            entry["rejected_at"] = stamp
            lines.append(orjson.dumps(entry, default=str) + b"\n")
        path = self.file_for(output, now)
        with self._lock:
            used = self._current_usage(output)
            stored = 0
            size = 0
            for line in lines:
                if used + size + len(line) > self._max_bytes:
                    break
                size += len(line)
                stored += 1
            if stored:
                self._append(output, path, b"".join(lines[:stored]))
                self._used = used + size
        for _described, error in entries[:stored]:
            self._metrics.records_dead_lettered.labels(output, error.type or "unknown").inc()
        lost = len(entries) - stored
        if lost:
            self._metrics.records_dropped.labels(output, "dead_letter_full").inc(lost)
            log.error("dead-letter store full; rejected records dropped and counted",
                      extra={"event": "dead_letter_full", "output": output, "records": lost})
        return stored

    def _current_usage(self, output: str) -> int:
        if self._used is None:
            try:
                self._files.makedirs(self._dir)
            except OSError as exc:
                raise self._failed(output, "mkdir", self._dir, exc) from exc
            try:
                self._used = self._files.usage(self._dir)
            except OSError as exc:
                raise self._failed(output, "usage", self._dir, exc) from exc
        return self._used

    def _append(self, output: str, path: Path, data: bytes) -> None:
        """Write ``data`` at the end of ``path`` and fsync it (and the directory, the first
        time); on any failure the file is cut back to its old size, so nothing is half
        there and a retry writes the lines once."""
        files = self._files
        op = "open"
        try:
            fd, created = files.open(path)
        except OSError as exc:
            raise self._failed(output, op, path, exc) from exc
        if created:
            self._unsynced_names.add(path)
        start: int | None = None
        try:
            op = "write"
            start = files.size(fd)
            if start and not files.ends_with_newline(path, start):
                data = b"\n" + data  # a torn last line stays one line of its own
            files.pwrite(fd, data, start)
            op = "fsync"
            files.fsync(fd)
            if path in self._unsynced_names:
                op = "fsync_dir"
                files.fsync_dir(self._dir)
                self._unsynced_names.discard(path)
        except OSError as exc:
            if start is not None:
                with contextlib.suppress(OSError):
                    files.truncate(fd, start)
            raise self._failed(output, op, path, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                files.close(fd)

    def _failed(self, output: str, op: str, path: Path, exc: OSError) -> StorageError:
        self._metrics.storage_errors.labels("dead_letter", output, op).inc()
        return StorageError(f"cannot write dead letters to {path} ({op}): "
                            f"{exc.strerror or exc}")
