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

A record is dead-lettered once per document id. After a crash (or a stop that could not save
the tail's positions) the sources read some lines again; their records get the same
deterministic ids, and the ones rejected before are not written a second time: they are
counted in ``shipper_records_dead_lettered_duplicate_total`` instead. The store remembers
the last ``RECENT_IDS`` ids written per output, loaded at the first write of a run from the
end (at most ``SCAN_BYTES``) of that output's two newest files; a re-read after a crash
covers the records since the last saved positions, far fewer than that window. Only entries
with an ``_id`` (the Elasticsearch output's) can be recognised; others (forward, Logz.io,
undecodable payloads) are written every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from shipper.errors import StorageError
from shipper.metrics import Metrics
from shipper.protocols import ItemError

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
RECENT_IDS = 32_768  # document ids remembered per output (about 5 MiB at most)
# Read per output at start to learn the ids already stored: about RECENT_IDS typical entries
# (0.5 KiB each); fewer ids when the records are larger.
SCAN_BYTES = 16 * 1024 * 1024
_ID_MARK = b'"_id":"'  # lines without it carry no id: not parsed by the scan


def doc_id(described: dict[str, Any]) -> str | None:
    """The document id a dead-letter entry is known by, if its output gave it one."""
    value = described.get("_id")
    return value if isinstance(value, str) and value else None


class RecentIds:
    """The last ``limit`` ids added, oldest forgotten first (bounded memory)."""

    def __init__(self, limit: int = RECENT_IDS) -> None:
        self._limit = limit
        self._order: deque[str] = deque()
        self._ids: set[str] = set()

    def __contains__(self, item: str) -> bool:
        return item in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, item: str) -> None:
        if item in self._ids:
            return
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self._limit:
            self._ids.discard(self._order.popleft())


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

    def list(self, directory: Path) -> list[Path]:
        """The dead-letter files there (any output)."""
        return list(directory.glob("*.ndjson"))

    def read_tail(self, path: Path, limit: int) -> bytes:
        """At most the last ``limit`` bytes of ``path``, from the start of a line."""
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = max(0, size - limit)
            fh.seek(max(0, start - 1))
            if start:
                fh.readline()  # the rest of a line cut by the limit (or the newline before)
            return fh.read(size - fh.tell())


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
        self._recent: dict[str, RecentIds] = {}  # output -> ids written lately

    @property
    def directory(self) -> Path:
        return self._dir

    def file_for(self, output: str, now: float | None = None) -> Path:
        """The file ``output``'s rejects go to at ``now`` (one per output and UTC day)."""
        day = time.strftime("%Y.%m.%d", time.gmtime(time.time() if now is None else now))
        return self._dir / f"{output}-{day}.ndjson"

    async def write(self, output: str, entries: Sequence[tuple[dict[str, Any], ItemError]],
                    ) -> int:
        """Persist rejected records durably; returns how many were stored. Records whose
        document id is stored already are skipped and counted as duplicates; those the
        store has no room for are counted as dropped (``dead_letter_full``). Raises
        StorageError, with nothing written or counted, when the files cannot be written:
        the caller retries."""
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
        path = self.file_for(output, now)
        with self._lock:
            used = self._current_usage(output)
            recent = self._recent_ids(output)
            fresh: list[tuple[dict[str, Any], ItemError, str | None]] = []
            batch_ids: set[str] = set()
            for described, error in entries:
                ident = doc_id(described)
                if ident is not None:
                    if ident in recent or ident in batch_ids:
                        continue
                    batch_ids.add(ident)
                fresh.append((described, error, ident))
            stored = 0
            size = 0
            lines: list[bytes] = []
            for described, error, _ident in fresh:
                entry = dict(described)
                entry["error"] = {"status": error.status, "type": error.type,
                                  "reason": error.reason}
                entry["output"] = output
                entry["rejected_at"] = stamp
                line = orjson.dumps(entry, default=str) + b"\n"
                if used + size + len(line) > self._max_bytes:
                    break
                lines.append(line)
                size += len(line)
                stored += 1
            if stored:
                self._append(output, path, b"".join(lines))
                self._used = used + size
                for _described, _error, ident in fresh[:stored]:
                    if ident is not None:
                        recent.add(ident)
        for _described, error, _ident in fresh[:stored]:
            self._metrics.records_dead_lettered.labels(output, error.type or "unknown").inc()
        repeats = len(entries) - len(fresh)
        if repeats:
            self._metrics.records_dead_lettered_duplicate.labels(output).inc(repeats)
        lost = len(fresh) - stored
        if lost:
            self._metrics.records_dropped.labels(output, "dead_letter_full").inc(lost)
            log.error("dead-letter store full; rejected records dropped and counted",
                      extra={"event": "dead_letter_full", "output": output, "records": lost})
        return stored

    def _recent_ids(self, output: str) -> RecentIds:
        """The ids ``output`` wrote lately; learnt from its newest files the first time."""
        recent = self._recent.get(output)
        if recent is None:
            recent = RecentIds()
            try:
                self._scan(output, recent)
            except OSError as exc:  # repeats may be written again: a cost, never a loss
                log.warning("cannot read the dead-letter files of output %s to recognise "
                            "records already stored (%s); a record read again may be written "
                            "twice", output, exc.strerror or exc,
                            extra={"event": "dead_letter_scan_failed", "output": output})
            self._recent[output] = recent
        return recent

    def _scan(self, output: str, recent: RecentIds) -> None:
        """Add the ids in the last ``SCAN_BYTES`` of ``output``'s two newest files (the
        current and the previous day's), oldest first."""
        pattern = re.compile(re.escape(output) + r"-\d{4}\.\d{2}\.\d{2}\.ndjson")
        names = sorted(p for p in self._files.list(self._dir) if pattern.fullmatch(p.name))
        budget = SCAN_BYTES
        chunks: list[bytes] = []
        for path in reversed(names[-2:]):
            if budget <= 0:
                break
            data = self._files.read_tail(path, budget)
            budget -= len(data)
            chunks.append(data)
        for data in reversed(chunks):
            for line in io.BytesIO(data):  # line by line: no second copy of the bytes
                if _ID_MARK not in line:
                    continue
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:  # a line torn by a crash
                    continue
                ident = doc_id(entry) if isinstance(entry, dict) else None
                if ident is not None:
                    recent.add(ident)

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
