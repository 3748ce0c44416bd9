"""Payload bytes that wait in a buffer: sized to their content.

orjson (3.12 and later) returns ``bytes`` whose allocation is rounded up to a power of two
with a 4 KiB floor and never shrunk: a 1.7 KB document holds 8-16 KiB. ``len()`` and the
buffers' byte accounting see 1.7 KB, so a buffer limited to 256 MiB of payloads held over
a gigabyte of memory (measured with the ``null`` output). Every payload that is kept (in a
buffer, in flight, in a disk buffer awaiting fsync) is therefore either built by a join or
concatenation, which allocate exactly, or copied once with ``right_sized``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shipper.record import Record


def right_sized(data: bytes) -> bytes:
    """A copy of ``data`` whose allocation matches its length (about 0.2 µs for 2 KB)."""
    return bytes(memoryview(data))


def json_lines(records: Sequence[Record], newline: bool = False) -> list[bytes]:
    """Each record body as one JSON document (with a trailing LF when ``newline``), sized
    to keep. Values JSON cannot hold (non-str keys, sets, ...) become strings rather than
    failing the batch."""
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE if newline else 0
    out: list[bytes] = []
    for record in records:
        try:
            line = dumps(record.body, option=option)
        except (TypeError, orjson.JSONEncodeError):
            line = dumps(record.body, default=str, option=option | orjson.OPT_NON_STR_KEYS)
        out.append(right_sized(line))
    return out


def describe_json(payload: bytes) -> dict[str, Any]:
    """A JSON-document payload back as its record, for the dead-letter store."""
    try:
        return {"record": orjson.loads(payload)}
    except orjson.JSONDecodeError:
        return {"raw": payload.decode("utf-8", "replace")}
