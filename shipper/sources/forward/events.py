"""From decoded forward entries to records (spec §1.3-§1.6).

Fluentd's rules, where they keep data: an event is ``[time, record]``; time is an integer,
an EventTime, a float, or (protocol v1.5) ``[time, metadata]``; time 0 or nil means "now"; a
nil record is skipped; an event whose record is not a map, or whose time has no usable type,
is skipped and counted (Fluentd ``skip_invalid_event``). A time outside years 1970-9999 is
replaced by the receive time and flagged, because no index could hold it.

Bodies must be JSON-safe for every output: binary values become UTF-8 text (invalid bytes as
``\\xNN``), map keys become strings, EventTime values become integer seconds like Fluentd's
``to_json``, other ext values a small ``{"ext_type", "data"}`` map.

Document ids: a request with a ``chunk`` id gets ids ``<digest of the request bytes>-<index>``.
A client that resends a chunk whose ack it never saw resends the same bytes, so the records
map to the same documents and ``create`` answers 409 instead of storing a second copy; a client
that reuses a chunk id for different data gets different ids and loses nothing. Without a
chunk id there is no resend to recognise, and the output lets the server pick ids.
"""

from __future__ import annotations

import base64
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack

from shipper.record import Record, format_rfc3339_nanos
from shipper.sources.forward.config import MAX_ID_CHARS
from shipper.sources.forward.decoder import EventTime, Request

NS = 1_000_000_000
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_NS = MAX_SECONDS * NS + NS - 1
MAX_TAG_CHARS = 512
_TAG_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")
_PLAIN = (int, float, bool, type(None))


def sanitize_tag(tag: str) -> str:
    """A routing tag without spaces or control characters, at most 512 characters.

    Tags come from clients; they route records (``match``) and may end up in a ``tag`` field,
    so they are made printable here. No output derives an index name from them.
    """
    if not tag.isprintable() or " " in tag or len(tag) > MAX_TAG_CHARS:
        tag = _TAG_UNSAFE.sub("_", tag)[:MAX_TAG_CHARS]
        tag = tag.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return tag or "_"


def _fix_str(s: str) -> str:
    """Replace lone surrogates (invalid UTF-8 kept by ``surrogateescape``) by ``\\xNN``."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return s


def _key(k: Any, fix: bool) -> str:
    if type(k) is str:
        return _fix_str(k) if fix and not k.isascii() else k
    if isinstance(k, bytes):
        return k.decode("utf-8", "backslashreplace")
    return str(clean_value(k, fix))


def clean_value(v: Any, fix: bool) -> Any:
    """A JSON-safe copy of ``v`` (the same object when it already is one)."""
    t = type(v)
    if t is str:
        return _fix_str(v) if fix and not v.isascii() else v
    if t in _PLAIN:
        return v
    if t is dict:
        return clean_map(v, fix)
    if t is list:
        return clean_list(v, fix)
    if t is bytes:
        return v.decode("utf-8", "backslashreplace")
    if t is EventTime:
        return v.ns // NS
    if t is msgpack.Timestamp:
        return format_rfc3339_nanos(v.to_unix_nano())
    if t is msgpack.ExtType:
        return {"ext_type": v.code, "data": base64.b64encode(v.data).decode("ascii")}
    return str(v)


def clean_map(m: dict[Any, Any], fix: bool) -> dict[str, Any]:
    """The record map itself when it is already JSON-safe (the common case), else a copy.

    Nested maps and lists (Kubernetes metadata from a Fluent Bit forwarder, say) are checked
    in place too: copying every record that has one cost more than decoding it."""
    for k in m:
        if type(k) is not str or (fix and not k.isascii()):
            break
    else:
        if _all_clean(m.values(), fix):
            return m
    return {_key(k, fix): clean_value(v, fix) for k, v in m.items()}


def clean_list(items: list[Any], fix: bool) -> list[Any]:
    """The list itself when every item is already JSON-safe, else a cleaned copy."""
    if _all_clean(items, fix):
        return items
    return [clean_value(x, fix) for x in items]


def _all_clean(values: Iterable[Any], fix: bool) -> bool:
    """Every value JSON-safe all the way down, without building anything."""
    for v in values:
        t = type(v)
        if t is str:
            if fix and not v.isascii():
                return False
        elif t is dict:
            if clean_map(v, fix) is not v:
                return False
        elif t is list:
            if not _all_clean(v, fix):
                return False
        elif t not in _PLAIN:
            return False
    return True


def event_time_ns(t: Any, now_ns: int) -> int | None:
    """Nanoseconds of an event time; ``now_ns`` for 0/nil; -1 when out of range; None when
    the value is not a time at all."""
    if type(t) is list and t:
        t = t[0]  # v1.5: [time, metadata]
    tt = type(t)
    if tt is EventTime:
        ns = t.ns
    elif tt is int:
        if t == 0:
            return now_ns
        ns = t * NS if 0 < t <= MAX_SECONDS else -1
    elif tt is float:
        if t != t or t < 0 or t > MAX_SECONDS:
            return -1
        sec = int(t)
        ns = sec * NS + round((t - sec) * NS)
    elif t is None:
        return now_ns
    elif tt is msgpack.Timestamp:
        ns = t.to_unix_nano()
    else:
        return None
    if ns == 0:
        return now_ns
    if not 0 < ns <= MAX_NS:
        return -1
    return ns


class EventConverter:
    """Makes records from one connection's requests; counts what it skips."""

    def __init__(self, tag: str | None, tag_prefix: str | None,
                 extra: dict[str, str], clock: Callable[[], int] = time.time_ns,
                 id_key: str | None = None) -> None:
        self._tag = tag
        self._id_key = id_key
        self._prefix = f"{tag_prefix}." if tag_prefix else ""
        self._extra = extra
        self._clock = clock
        self.skipped: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()

    def route_tag(self, client_tag: str) -> str:
        if self._tag is not None:
            return self._tag
        return self._prefix + sanitize_tag(client_tag)

    def batches(self, request: Request, max_records: int) -> Iterator[list[Record]]:
        """Records of ``request`` in lists of at most ``max_records``, decoded lazily."""
        signal = request.option.get("fluent_signal")
        if signal in (1, 2):
            # Metrics or traces (protocol v1.5): not log records; acknowledged, not stored.
            n = sum(1 for _ in request.entries)
            self.skipped["metrics_or_traces"] += n
            return
        tag = self.route_tag(request.tag)
        fix = not request.strings_checked
        prefix = None
        if request.chunk is not None:
            prefix = base64.urlsafe_b64encode(request.digest()).decode("ascii")
        extra = self._extra
        id_key = self._id_key
        now = self._clock()
        out: list[Record] = []
        for index, entry in enumerate(request.entries):
            if type(entry) is not list or len(entry) < 2:
                self.skipped["invalid_event"] += 1
                continue
            raw_time, body = entry[0], entry[1]
            if body is None:
                self.skipped["nil_record"] += 1
                continue
            if type(body) is not dict:
                self.skipped["invalid_event"] += 1
                continue
            # Inline for the EventTime every Fluent Bit and fluent-logger client sends.
            fast: int = raw_time.ns if type(raw_time) is EventTime else 0
            ns = fast if 0 < fast <= MAX_NS else event_time_ns(raw_time, now)
            if ns is None:
                self.skipped["invalid_event"] += 1
                continue
            if ns < 0:
                ns = now
                self.flagged["time_out_of_range"] += 1
            body = clean_map(body, fix)
            doc_id = None if prefix is None else f"{prefix}-{index:x}"
            if id_key is not None and id_key in body:
                carried = body.pop(id_key)
                if type(carried) is str and 0 < len(carried) <= MAX_ID_CHARS:
                    doc_id = carried
                else:
                    self.flagged["invalid_id"] += 1
            if extra:
                body.update(extra)
            out.append(Record(body, ns, tag, doc_id))
            if len(out) >= max_records:
                yield out
                out = []
        if out:
            yield out
