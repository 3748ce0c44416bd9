"""Records and batches: the unit of data flowing from sources through filters to outputs.

A record is a plain ``dict`` body (Fluentd field names: ``log``, ``stream``, ``time``,
``kubernetes.*``, ``docker.container_id``...) plus the event time in nanoseconds, the routing
tag and a deterministic document id. The id is derived from the record's origin (file identity
and byte offset for tailed lines) so a replay after a crash maps to the same document and the
``create`` action turns the duplicate into a 409 instead of a second copy.

Sources emit whole batches, never single records: every per-record cost in Python is paid a
million times per million lines, so the hot path works on lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipper.acks import AckGroup


@dataclass(slots=True)
class Record:
    """One log event."""

    body: dict[str, Any]
    time_ns: int
    tag: str
    doc_id: str | None = None


@dataclass(slots=True)
class Batch:
    """Records emitted together by one source; ``ack`` resolves once all of them are safe."""

    records: list[Record]
    ack: AckGroup | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def format_rfc3339_nanos(time_ns: int) -> str:
    """Format UTC nanoseconds as ``2026-11-22T01:02:03.123456789Z`` (Fluentd's ``time`` shape)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    import time as _time

    tm = _time.gmtime(seconds)
    return (
        f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T"
        f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{nanos:09d}Z"
    )
