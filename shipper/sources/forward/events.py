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
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from shipper.errors import InputProtocolError
from shipper.record import Record, format_rfc3339_nanos
from shipper.sources.forward.config import DEFAULT_MAX_NESTING_DEPTH, MAX_ID_CHARS
from shipper.sources.forward.decoder import FLUSH, EventTime, Request

NS = 1_000_000_000
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_NS = MAX_SECONDS * NS + NS - 1
MAX_TAG_CHARS = 512
MAX_DEPTH = DEFAULT_MAX_NESTING_DEPTH
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


def _too_deep() -> InputProtocolError:
    return InputProtocolError(
        "too_deep", "a record nests maps and arrays deeper than max_nesting_depth")


def _key(k: Any, fix: bool) -> str:
    """Map keys are scalars (msgpack refuses unhashable ones), so no depth to count here."""
    if type(k) is str:
        return _fix_str(k) if fix and not k.isascii() else k
    if isinstance(k, bytes):
        return k.decode("utf-8", "backslashreplace")
    return str(_scalar(k, fix))


def _scalar(v: Any, fix: bool) -> Any:
    """A JSON-safe form of a value that is not a map or a list."""
    t = type(v)
    if t is str:
        return _fix_str(v) if fix and not v.isascii() else v
    if t in _PLAIN:
        return v
    if t is bytes:
        return v.decode("utf-8", "backslashreplace")
    if t is EventTime:
        return v.ns // NS
    if t is msgpack.Timestamp:
        return format_rfc3339_nanos(v.to_unix_nano())
    if t is msgpack.ExtType:
        return {"ext_type": v.code, "data": base64.b64encode(v.data).decode("ascii")}
    return str(v)


def clean_value(v: Any, fix: bool, depth: int = MAX_DEPTH) -> Any:
    """A JSON-safe copy of ``v`` (the same object when it already is one); ``depth`` is how
    many levels of maps and lists may still open (``InputProtocolError`` beyond)."""
    t = type(v)
    if t is dict:
        return clean_map(v, fix, depth)
    if t is list:
        return clean_list(v, fix, depth)
    return _scalar(v, fix)


def clean_map(m: dict[Any, Any], fix: bool, depth: int = MAX_DEPTH) -> dict[str, Any]:
    """The record map itself when it is already JSON-safe (the common case), else a copy.

    One pass over the tree, each value visited once: nested maps and lists (Kubernetes
    metadata from a Fluent Bit forwarder, say) are returned as they are when clean, and a map
    is copied only from its first value that changed. ``depth`` bounds the nesting (and with
    it the recursion), so a hostile record costs time linear in its size and fails cleanly.
    """
    if depth <= 0:
        raise _too_deep()
    below = depth - 1
    for k in m:
        if type(k) is not str or (fix and not k.isascii()):
            return {_key(k, fix): clean_value(v, fix, below) for k, v in m.items()}
    for v in m.values():
        t = type(v)
        if t is str:
            if not fix or v.isascii():
                continue
            nv: Any = _fix_str(v)
        elif t in _PLAIN:
            continue
        elif t is dict:
            nv = clean_map(v, fix, below)
        elif t is list:
            nv = clean_list(v, fix, below)
        else:
            nv = _scalar(v, fix)
        if nv is v:
            continue
        # The first value that changed (the first occurrence of that object: an earlier
        # one would have changed too): keep the values before it, clean the rest once.
        out: dict[str, Any] = {}
        items = iter(m.items())
        for k, x in items:
            if x is v:
                out[k] = nv
                break
            out[k] = x
        for k, x in items:
            out[k] = clean_value(x, fix, below)
        return out
    return m


def clean_list(items: list[Any], fix: bool, depth: int = MAX_DEPTH) -> list[Any]:
    """The list itself when every item is already JSON-safe, else a cleaned copy (one pass,
    depth-bounded like ``clean_map``)."""
    if depth <= 0:
        raise _too_deep()
    below = depth - 1
    for i, v in enumerate(items):
        t = type(v)
        if t is str:
            if not fix or v.isascii():
                continue
            nv: Any = _fix_str(v)
        elif t in _PLAIN:
            continue
        elif t is dict:
            nv = clean_map(v, fix, below)
        elif t is list:
            nv = clean_list(v, fix, below)
        else:
            nv = _scalar(v, fix)
        if nv is v:
            continue
        return [*items[:i], nv, *(clean_value(x, fix, below) for x in items[i + 1:])]
    return items


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
                 id_key: str | None = None, max_depth: int = MAX_DEPTH,
                 tag_key: str | None = None) -> None:
        self._tag = tag
        self._tag_key = tag_key
        self._max_depth = max_depth
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
        """Records of ``request`` in lists of at most ``max_records``, decoded lazily; a list
        also ends at each ``FLUSH`` marker (and may then be empty)."""
        signal = request.option.get("fluent_signal")
        if signal in (1, 2):
            # Metrics or traces (protocol v1.5): not log records; acknowledged, not stored.
            n = sum(1 for e in request.entries if e is not FLUSH)
            self.skipped["metrics_or_traces"] += n
            return
        tag = self.route_tag(request.tag)
        fix = not request.strings_checked
        prefix = None
        if request.chunk is not None:
            prefix = base64.urlsafe_b64encode(request.digest()).decode("ascii")
        extra = self._extra
        tag_key = self._tag_key
        if tag_key:
            extra = {**extra, tag_key: tag}
        id_key = self._id_key
        depth = self._max_depth
        now = self._clock()
        out: list[Record] = []
        skew = 0
        for index, entry in enumerate(request.entries):
            if type(entry) is not list or len(entry) < 2:
                if entry is FLUSH:  # end the batch here: it holds enough decoded bytes
                    skew += 1  # markers take no document index
                    # yielded even when empty, so the caller can let the event loop run
                    # while a payload of skipped events is decoded
                    yield out
                    out = []
                    continue
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
            body = clean_map(body, fix, depth)
            doc_id = None if prefix is None else f"{prefix}-{index - skew:x}"
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
