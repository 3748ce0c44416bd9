"""Dead-letter store: records an output rejected for good, kept with the reason.

One NDJSON file per output per UTC day under ``state_dir/dead-letter/``; each line is the
original record, the target it was meant for, the error type and reason, and when. Written and
fsynced before the record counts as settled, so a rejected record is never silently gone. The
store is bounded: past ``max_bytes`` new rejects are counted as dropped (reason
``dead_letter_full``) and logged, never written without limit onto the node's disk.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from shipper.errors import StorageError
from shipper.metrics import Metrics
from shipper.protocols import ItemError

log = logging.getLogger(__name__)


class DeadLetterStore:
    """Append-only, size-bounded NDJSON files of rejected records."""

    def __init__(self, directory: Path, metrics: Metrics, max_bytes: int = 512 * 1024 * 1024,
                 ) -> None:
        self._dir = directory
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._used: int | None = None

    @property
    def directory(self) -> Path:
        return self._dir

    def _current_usage(self) -> int:
        if self._used is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._used = sum(p.stat().st_size for p in self._dir.glob("*.ndjson"))
        return self._used

    def write(self, output: str, entries: Sequence[tuple[dict[str, Any], ItemError]]) -> int:
        """Persist rejected records; returns how many were stored (the rest are counted)."""
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
        used = self._current_usage()
        stored = 0
        size = 0
        for line in lines:
            if used + size + len(line) > self._max_bytes:
                break
            size += len(line)
            stored += 1
        if stored:
            path = self._dir / f"{output}-{time.strftime('%Y.%m.%d', time.gmtime(now))}.ndjson"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
                try:
                    os.write(fd, b"".join(lines[:stored]))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise StorageError(f"cannot write dead letters to {path}: {exc}") from exc
            self._used = used + size
            for _described, error in entries[:stored]:
                self._metrics.records_dead_lettered.labels(output, error.type or "unknown").inc()
        lost = len(entries) - stored
        if lost:
            self._metrics.records_dropped.labels(output, "dead_letter_full").inc(lost)
            log.error("dead-letter store full; rejected records dropped and counted",
                      extra={"event": "dead_letter_full", "output": output, "records": lost})
        return stored
