"""Building ``_bulk`` request bodies (spec §1.1, §1.2, §1.8).

A record becomes one payload: its action line and its source line, each ending in ``\\n``,
so any run of payloads joined together is a valid NDJSON bulk body and the buffer can measure
exact bytes. Encoding runs on whole batches and is the hot path of the agent: the index name is
formatted once per UTC day (not per record), the action-line prefix is cached with it, and the
``@timestamp`` field is spliced into the serialized body instead of copying the dict.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

import orjson

from outputs.elasticsearch.config import ElasticsearchConfig
from shipper.compression import gzip_fast
from shipper.payloads import BodySerializer, spans_within
from shipper.record import Record, format_rfc3339_nanos
from shipper.speedups import speedups

_encode_bulk = speedups.encode_bulk if speedups is not None else None

NS_PER_SEC = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SEC

# strftime directives that only depend on the date; any other one forces a finer cache key.
_DATE_ONLY_DIRECTIVES = frozenset("YymdjbBhaAUWVGguweFDCx%")
_DIRECTIVE = re.compile(r"%(.)")



def _cache_granularity_ns(dateformat: str) -> int:
    """How long a formatted index name stays valid: a UTC day unless the format has a time part."""
    if all(d in _DATE_ONLY_DIRECTIVES for d in _DIRECTIVE.findall(dateformat)):
        return NS_PER_DAY
    return NS_PER_SEC


class BulkEncoder:
    """Turns records into bulk payloads for one output's settings."""

    __slots__ = ("_dateformat", "_fixed_index", "_fixed_name", "_granularity", "_id_key",
                 "_index_cache", "_op", "_prefix", "_second_parts", "_ts_cache")

    def __init__(self, config: ElasticsearchConfig) -> None:
        self._op = config.write_operation.encode()
        self._id_key = config.id_key
        self._prefix = (config.logstash_prefix + config.logstash_prefix_separator).lower()
        self._dateformat = config.logstash_dateformat
        self._granularity = _cache_granularity_ns(config.logstash_dateformat)
        self._fixed_name: str | None = None
        self._fixed_index: bytes | None = None
        if not config.logstash_format:
            if not config.index:
                raise ValueError("index is required when logstash_format is false")
            self._fixed_name = config.index.lower()
            self._fixed_index = self._action_prefix(self._fixed_name)
        # period key -> action-line prefix; second -> "YYYY-MM-DDTHH:MM:SS" for @timestamp.
        self._index_cache: dict[int, bytes] = {}
        self._ts_cache: dict[int, bytes] = {}
        # second -> the parts of a payload around its id and fraction of a second.
        self._second_parts: dict[int, tuple[bytes, bytes]] = {}

    def _action_prefix(self, index: str) -> bytes:
        """``{"create":{"_index":"<index>"`` — the part of the action line shared by a period."""
        return b'{"' + self._op + b'":{"_index":' + orjson.dumps(index)

    def index_name(self, time_ns: int) -> str:
        """The index a record with this time goes to (for templates, tests and the DLQ)."""
        if self._fixed_name is not None:
            return self._fixed_name
        return self._format_name(time_ns // self._granularity)

    def _format_name(self, period: int) -> str:
        start = time.gmtime((period * self._granularity) // NS_PER_SEC)
        return (self._prefix + time.strftime(self._dateformat, start)).lower()

    def _action_line_prefix(self, time_ns: int) -> bytes:
        if self._fixed_index is not None:
            return self._fixed_index
        period = time_ns // self._granularity
        cached = self._index_cache.get(period)
        if cached is None:
            if len(self._index_cache) > 64:
                self._index_cache.clear()
            cached = self._index_cache[period] = self._action_prefix(self._format_name(period))
        return cached

    def _timestamp_head(self, seconds: int) -> bytes:
        """``{"@timestamp":"YYYY-MM-DDTHH:MM:SS`` for one second, formatted once per second."""
        head = self._ts_cache.get(seconds)
        if head is None:
            if len(self._ts_cache) > 4096:
                self._ts_cache.clear()
            # The date-time part of the shared formatter, so the shape is defined once.
            text = format_rfc3339_nanos(seconds * NS_PER_SEC)[:19]
            head = self._ts_cache[seconds] = b'{"@timestamp":"' + text.encode()
        return head

    def _parts_for(self, seconds: int) -> tuple[bytes, bytes]:
        """``{"create":{"_index":"<index>","_id":`` and ``}}\\n{"@timestamp":"<second>.``."""
        if len(self._second_parts) > 4096:
            self._second_parts.clear()
        time_ns = seconds * NS_PER_SEC
        parts = self._second_parts[seconds] = (
            self._action_line_prefix(time_ns) + b',"_id":',
            b"}}\n" + self._timestamp_head(seconds) + b".")
        return parts

    def _payload(self, time_ns: int, doc_id: str | None, body: dict[str, Any],
                 source: bytes) -> bytes:
        """A payload without an id, for a body with its own ``@timestamp``, or ``{}``."""
        prefix = self._action_line_prefix(time_ns)
        if doc_id is None:
            action = prefix + b"}}\n"
        else:
            action = prefix + b',"_id":' + orjson.dumps(doc_id) + b"}}\n"
        if "@timestamp" in body:
            return b"".join((action, source, b"\n"))
        seconds, nanos = divmod(time_ns, NS_PER_SEC)
        head = self._timestamp_head(seconds)
        if len(source) == 2:  # an empty body: {}
            return b"".join((action, head, b'.%09dZ"}\n' % nanos))
        return b"".join((action, head, b'.%09dZ",' % nanos, memoryview(source)[1:], b"\n"))

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        """One payload per record, in order: action line + source line, both newline-terminated.

        ``_id`` is the record's ``doc_id`` (or the ``id_key`` field) and is omitted when there
        is none, letting the server generate one. This runs once per record shipped, so each
        payload is one ``orjson.dumps`` and one ``join``; the per-index and per-second parts
        are cached, and the ``kubernetes`` map, one shared object for all records of a pod,
        is serialized once per batch and spliced in as an ``orjson.Fragment``.
        """
        if _encode_bulk is not None and self._id_key is None:
            # The same loop compiled (shipper.speedups); it hands odd records to ``_one``.
            return _encode_bulk(
                records if type(records) is list else list(records), self._second_parts,
                self._parts_for, BodySerializer().dumps, self._one)
        return self._encode_py(records)

    def _one(self, record: Record, source: bytes) -> bytes:
        """The payload of one record whose body serialized to ``source`` (no ``id_key``)."""
        time_ns, doc_id = record.time_ns, record.doc_id
        if doc_id is None or len(source) == 2 or "@timestamp" in record.body:
            return self._payload(time_ns, doc_id, record.body, source)
        seconds, nanos = divmod(time_ns, NS_PER_SEC)
        parts = self._second_parts.get(seconds) or self._parts_for(seconds)
        return b"".join((parts[0], orjson.dumps(doc_id), parts[1], b'%09dZ",' % nanos,
                         memoryview(source)[1:], b"\n"))

    def _encode_py(self, records: Sequence[Record]) -> list[bytes]:
        """The pure-Python loop of ``encode``: the reference, and the fallback."""
        out: list[bytes] = []
        append = out.append
        dumps = orjson.dumps
        join = b"".join
        second_parts = self._second_parts
        parts_for = self._parts_for
        id_key = self._id_key
        serialize = BodySerializer().dumps
        for record in records:
            body = record.body
            source = serialize(body)
            time_ns = record.time_ns
            doc_id = record.doc_id
            if id_key is not None:
                value = body.get(id_key)
                if value is not None:
                    doc_id = value if isinstance(value, str) else str(value)
            if doc_id is None or len(source) == 2 or "@timestamp" in body:
                append(self._payload(time_ns, doc_id, body, source))
                continue
            # The common case: one join of the second's cached parts, the id, the fraction
            # of the second and the body without its opening brace.
            seconds, nanos = divmod(time_ns, NS_PER_SEC)
            parts = second_parts.get(seconds) or parts_for(seconds)
            append(join((parts[0], dumps(doc_id), parts[1], b'%09dZ",' % nanos,
                         memoryview(source)[1:], b"\n")))
        return out


def body_spans(payloads: Sequence[bytes], max_bytes: int) -> list[tuple[int, int]]:
    """Group consecutive payloads into request bodies of at most ``max_bytes`` each.

    Returns ``(start, end)`` for each body of ``payloads[start:end]``. Sizes are measured
    before compression because server limits (``http.max_content_length``) apply to the
    decompressed content. A single payload larger than ``max_bytes`` gets a body of its own:
    only the server can say whether it is too large (413).
    """
    return spans_within(list(map(len, payloads)), max_bytes)


def join_body(payloads: Sequence[bytes], compress: bool = False) -> bytes:
    """One request body from payloads, gzip-compressed when asked."""
    body = b"".join(payloads)
    return gzip_fast(body) if compress else body


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Split a payload back into its target and document, for the dead-letter store."""
    action_line, _, source_line = payload.partition(b"\n")
    try:
        action = orjson.loads(action_line)
        op, meta = next(iter(action.items()))
        record = orjson.loads(source_line)
    except (orjson.JSONDecodeError, StopIteration, AttributeError):
        return {"index": None, "_id": None, "raw": payload.decode("utf-8", "replace")}
    return {"index": meta.get("_index"), "_id": meta.get("_id"), "op": op, "record": record}
