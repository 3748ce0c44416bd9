"""Building Logz.io bulk bodies, and checking them before they are sent (spec §2.2, §2.3).

A record becomes one payload: one minified JSON object, no newline. A body is the payloads
joined by ``\\n`` with no trailing newline (a trailing one would count as an empty line), so
its size is the sum of the payloads plus one byte per separator.

Every field convention of logzio-k8s is applied at encode time, on a shallow copy (other
outputs share the record body): ``log`` becomes ``message``, ``type`` is the configured log
type, ``@timestamp`` is the record time with millisecond precision (fluent-plugin-logzio's
``iso8601(3)``) and the tag goes in ``fluentd_tags``. Fields a record already has win.

Limits are enforced here, so that a 400 from the listener stays rare: a line longer than
``max_line_bytes`` has its ``message`` (then ``log``) cut at a UTF-8 boundary and is flagged
like the tail source flags long lines (``shipper.flags`` gets ``truncated``,
``shipper.original_bytes`` the length of the field before the cut). A record that does not fit
even so keeps its full line: ``check_line`` rejects it in ``send`` and the dead-letter store
gets it whole.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from outputs.logzio.config import LogzioConfig
from shipper.compression import gzip_fast
from shipper.payloads import BodySerializer, dumps_lenient, right_sized, spans_within
from shipper.protocols import ItemError
from shipper.record import Record

NS_PER_SEC = 1_000_000_000
TRUNCATED = "truncated"
# Field texts tried, in order, when a line is too long.
_CUTTABLE = ("message", "log")
_MAX_CUT_ROUNDS = 8


class LineEncoder:
    """Encodes records into Logz.io lines for one output's settings."""

    __slots__ = ("_log_type", "_max_line", "_tag_key", "_ts_cache", "truncated")

    def __init__(self, config: LogzioConfig) -> None:
        self._log_type = config.log_type
        self._tag_key = config.tag_key
        self._max_line = config.max_line_bytes
        self._ts_cache: dict[int, str] = {}
        self.truncated = 0  # records cut to fit, since the owner last read and reset this

    def timestamp(self, time_ns: int) -> str:
        """``2026-11-22T01:02:03.123Z``; the date-time part is formatted once per second."""
        seconds, nanos = divmod(time_ns, NS_PER_SEC)
        head = self._ts_cache.get(seconds)
        if head is None:
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            head = self._ts_cache[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S",
                                                           time.gmtime(seconds))
        return f"{head}.{nanos // 1_000_000:03d}Z"

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        """One payload per record, in order."""
        out: list[bytes] = []
        append = out.append
        log_type = self._log_type
        tag_key = self._tag_key
        limit = self._max_line
        serialize = BodySerializer().dumps
        for record in records:
            doc = dict(record.body)
            if "log" in doc and "message" not in doc:
                doc["message"] = doc.pop("log")
            if "type" not in doc:
                doc["type"] = log_type
            if tag_key is not None and tag_key not in doc:
                doc[tag_key] = record.tag
            if "@timestamp" not in doc:
                doc["@timestamp"] = self.timestamp(record.time_ns)
            line = serialize(doc)
            if len(line) > limit:
                cut = fit_line(doc, limit)
                if cut is not None:
                    line = cut
                    self.truncated += 1
            append(right_sized(line))
        return out


def fit_line(doc: dict[str, Any], limit: int) -> bytes | None:
    """The line of ``doc`` with ``message``/``log`` cut so it fits ``limit``, else None.

    Works on a copy: ``doc`` is left as it was. JSON escaping makes a line longer than its
    text, so the cut is refined a few rounds; each round removes at least the excess.
    """
    work = dict(doc)
    meta = work.get("shipper")
    meta = dict(meta) if isinstance(meta, dict) else ({} if meta is None else {"value": meta})
    flags = meta.get("flags")
    flags = list(flags) if isinstance(flags, list) else []
    if TRUNCATED not in flags:
        flags.append(TRUNCATED)
    meta["flags"] = flags
    work["shipper"] = meta
    for key in _CUTTABLE:
        value = work.get(key)
        if not isinstance(value, str) or not value:
            continue
        raw = value.encode("utf-8", "surrogatepass")
        previous = meta.get("original_bytes")
        meta["original_bytes"] = max(len(raw), previous if isinstance(previous, int) else 0)
        line = dumps_lenient(work)
        keep = len(raw) - (len(line) - limit)
        for _ in range(_MAX_CUT_ROUNDS):
            keep = max(keep, 0)
            work[key] = raw[:keep].decode("utf-8", "ignore")
            line = dumps_lenient(work)
            excess = len(line) - limit
            if excess <= 0:
                return line
            if keep == 0:
                break
            keep -= excess
    return None


def check_line(payload: bytes, max_line_bytes: int) -> ItemError | None:
    """Why the listener would refuse this line, or None. Cheap checks only (no parsing):
    our encoder always writes one JSON object, so this guards the limits and the framing."""
    if not payload.strip():
        return ItemError(400, "empty_line", "an empty line is not a log (emptyLogLines)")
    if len(payload) > max_line_bytes:
        return ItemError(413, "line_too_large",
                         f"line of {len(payload)} bytes exceeds max_line_bytes "
                         f"({max_line_bytes}) even with its message truncated")
    if b"\n" in payload or payload[:1] != b"{" or payload[-1:] != b"}":
        return ItemError(400, "malformed_line", "not a single-line JSON object")
    return None


def body_size(payloads: Sequence[bytes]) -> int:
    """Bytes of the uncompressed body these payloads make."""
    return sum(map(len, payloads)) + max(0, len(payloads) - 1)


def group_bodies(sizes: Sequence[int], max_bytes: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` ranges whose joined body stays within ``max_bytes``.

    A single payload larger than ``max_bytes`` gets a range of its own (``check_line`` keeps
    that from happening, since ``max_line_bytes <= max_request_bytes``).
    """
    return spans_within(sizes, max_bytes, separator=1)  # lines are joined with \n


def join_body(payloads: Sequence[bytes], compress: bool = False) -> bytes:
    """One request body, gzip-compressed when asked."""
    body = b"\n".join(payloads)
    return gzip_fast(body) if compress else body


def decode_payload(payload: bytes) -> dict[str, Any]:
    """The record a payload holds, for the dead-letter store (raw text if it is not JSON)."""
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {"raw": payload.decode("utf-8", "replace")}
    return {"record": record}
