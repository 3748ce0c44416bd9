"""Decoding forward requests (Message, Forward, PackedForward, CompressedPackedForward).

Framing (``shipper.sources.forward.framing``) and decoding are separate on purpose. The
``MsgpackFramer`` finds where each request ends with ``Unpacker.skip``, which builds no
objects, and only a *complete* frame is then decoded.
Decoding a partial stream would let a client park many nested container headers in the
unpacker (each preallocates its declared length) and hold tens of MiB per connection with a
few KiB sent; a complete frame can declare no more elements than it has bytes. A frame grows
at most to ``max_frame_bytes``: that is the per-connection receive memory.

Frames are decoded with ``raw=False`` and ``surrogateescape``, so a PackedForward blob sent as
``str`` (Fluentd's out_forward does) is recovered byte for byte. PackedForward entries are
decoded lazily from the (decompressed) blob, with ``backslashreplace`` so that invalid UTF-8
in a record still becomes a JSON-safe string. Gzip payloads may hold several members and are
inflated with a streamed cap (``max_decompressed_bytes``), so a gzip bomb stops at the cap.

The JSON variant (first byte ``{`` or ``[``) is framed by ``framing.JsonFramer``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgpack

from shipper.compression import InflateError, gzip_inflater
from shipper.errors import InputProtocolError
from shipper.sources.forward.config import (
    DEFAULT_MAX_VALUES_PER_RECORD,
    DEFAULT_MAX_VALUES_PER_REQUEST,
)

UNPACK_ERRORS = (ValueError, TypeError, msgpack.UnpackException, OverflowError,
                  RecursionError, MemoryError)
# Explicit bounds on what one decoded container may declare (a complete frame can declare no
# more elements than it has bytes, so these only refuse the absurd early). Strings and binaries
# are bounded by the frame (max_frame_bytes) or the inflated payload (max_decompressed_bytes);
# nesting depth by the record walk in ``events`` (max_nesting_depth).
MAX_MAP_KEYS = 1 << 16
MAX_ARRAY_LEN = 1 << 20
# Chunk ids are echoed in acks; Fluentd's are 24 base64 characters.
MAX_CHUNK_CHARS = 1024
_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1
_EVENT_TIME = struct.Struct(">II")  # uint32 seconds, uint32 nanoseconds
READ_SIZE = 64 * 1024


class EventTime:
    """msgpack ext type 0: uint32 seconds and uint32 nanoseconds, big-endian (spec §1.4)."""

    __slots__ = ("ns",)

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __repr__(self) -> str:
        return f"EventTime({self.ns})"


def ext_hook(code: int, data: bytes) -> Any:
    """EventTime for ext 0 (fixext8 or ext8 of length 8); other ext types stay opaque."""
    if code == 0 and len(data) == 8:
        sec, nsec = _EVENT_TIME.unpack(data)
        return EventTime(sec * 1_000_000_000 + nsec)
    return msgpack.ExtType(code, data)


def malformed(message: str, exc: BaseException | None = None) -> InputProtocolError:
    detail = f": {exc}" if exc is not None else ""
    return InputProtocolError("malformed", f"{message}{detail}")


def gunzip(data: bytes, limit: int) -> bytes | bytearray:
    """Inflate one or more concatenated gzip members, never producing more than ``limit``
    (returned as it was built, not copied: it may be ``max_decompressed_bytes``)."""
    out = bytearray()
    rest = data
    while True:
        inflater = gzip_inflater()
        pending = rest
        while True:
            try:
                piece = inflater.decompress(pending, max(1, limit - len(out) + 1))
            except InflateError as exc:
                raise malformed("invalid gzip data", exc) from exc
            out += piece
            if len(out) > limit:
                raise InputProtocolError(
                    "decompressed_too_large",
                    f"decompressed entries exceed max_decompressed_bytes ({limit})")
            if inflater.eof:
                break
            pending = inflater.unconsumed_tail
            if not pending and not piece:
                raise malformed("truncated gzip data")
        rest = inflater.unused_data
        if not rest:
            return out


@dataclass(slots=True)
class Request:
    """One decoded request. ``entries`` yields raw ``[time, record]`` items lazily."""

    tag: str
    mode: str  # message | forward | packed | compressed
    entries: Iterator[Any]
    option: dict[Any, Any]
    raw: bytes
    strings_checked: bool  # True when record strings are known to be valid Unicode

    @property
    def chunk(self) -> Any:
        return self.option.get("chunk")

    def digest(self) -> bytes:
        """Identity of the request's bytes: a resend of the same chunk has the same one."""
        return hashlib.blake2b(self.raw, digest_size=15).digest()


def unpack_frame(frame: bytes, max_values: int = DEFAULT_MAX_VALUES_PER_REQUEST) -> Any:
    """Decode one complete msgpack frame (see the module docstring for the options).

    A frame of at most ``max_values`` bytes cannot hold more values than that and is decoded
    as it is; a larger one (a big Forward-mode request; a PackedForward frame is three
    values) is decoded with a value budget, so many tiny values are refused
    (``too_many_values``) instead of becoming gigabytes of Python objects."""
    if len(frame) > max_values:
        return _decode_bounded(frame, max_values, "surrogateescape", "a request")
    try:
        return msgpack.unpackb(frame, raw=False, unicode_errors="surrogateescape",
                               ext_hook=ext_hook, strict_map_key=False,
                               max_map_len=MAX_MAP_KEYS, max_array_len=MAX_ARRAY_LEN)
    except UNPACK_ERRORS as exc:
        raise malformed("undecodable msgpack", exc) from exc


class _ViewReader:
    """A file-like view of a payload for ``msgpack.Unpacker``: it reads the payload in
    ``READ_SIZE`` pieces, so its buffer holds about the largest entry instead of a second
    copy of the whole (inflated) payload."""

    __slots__ = ("_pos", "_view")

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def read(self, n: int) -> bytes:
        start = self._pos
        self._pos = min(start + n, len(self._view))
        return self._view[start:self._pos].tobytes()


class _TooMany(Exception):
    """A value budget ran out (raised by ``_Budget`` inside msgpack, turned into
    ``too_many_values``)."""


class _Budget:
    """Counts decoded values as msgpack closes each container (its ``object_hook`` and
    ``list_hook``) and stops the decode once ``left`` runs out: each array element and each
    map pair is one value. Only used where a decode could build many objects from few bytes,
    so the common small entry pays nothing."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def __call__(self, container: Any) -> Any:
        self.left -= len(container)
        if self.left < 0:
            raise _TooMany
        return container


def _too_many(what: str, limit: int) -> InputProtocolError:
    return InputProtocolError("too_many_values", f"{what} holds more than {limit} values")


def _decode_bounded(data: bytes | memoryview, limit: int, unicode_errors: str,
                    what: str) -> Any:
    """Decode ``data`` building at most about ``2 * limit`` objects: no single container
    may declare more than ``limit`` elements, and the values of closed containers are
    counted against ``limit``."""
    budget = _Budget(limit)
    try:
        return msgpack.unpackb(data, raw=False, unicode_errors=unicode_errors,
                               ext_hook=ext_hook, strict_map_key=False,
                               object_hook=budget, list_hook=budget,
                               max_map_len=min(MAX_MAP_KEYS, limit),
                               max_array_len=min(MAX_ARRAY_LEN, limit))
    except _TooMany:
        raise _too_many(what, limit) from None
    except ValueError as exc:
        if "exceeds max_" in str(exc):  # a container header above the bound
            raise _too_many(what, limit) from exc
        raise malformed("undecodable msgpack", exc) from exc
    except UNPACK_ERRORS as exc:
        raise malformed("undecodable msgpack", exc) from exc


FLUSH = object()
"""Yielded between entries by ``iter_packed`` every ``FLUSH_BYTES`` of entries: the
converter ends its batch there, so one batch never holds the objects of more than about
that many encoded bytes (plus one record), whatever the record count."""
FLUSH_BYTES = 512 * 1024


def iter_packed(blob: bytes | bytearray, max_values: int = DEFAULT_MAX_VALUES_PER_RECORD,
                max_event_bytes: int | None = None) -> Iterator[Any]:
    """Entries of a MessagePackEventStream, decoded lazily (see ``scan_packed``)."""
    return scan_packed(blob, max_values, max_event_bytes)


def scan_packed(blob: bytes | bytearray, max_values: int = DEFAULT_MAX_VALUES_PER_RECORD,
                max_event_bytes: int | None = None) -> Iterator[Any]:
    """Check the entries of a MessagePackEventStream now; return an iterator decoding them.

    One linear pass skips the entries (no objects built) to find where the last complete one
    ends and how long each is. An entry of at most ``max_values`` bytes cannot hold more
    values than that and is decoded as it is; a larger one (rare: a long log line, a big
    stack trace) is decoded with a value budget, where no container may declare more than
    ``max_values`` elements either, so an entry of many tiny values (an empty map is one
    byte on the wire, ~64 bytes as a Python object) is refused as ``too_many_values`` after
    building at most about ``2 * max_values`` objects. ``FLUSH`` markers are
    interleaved every ``FLUSH_BYTES`` of entries. An entry longer than ``max_event_bytes``
    (the connection passes ``max_frame_bytes``: no event of the other modes can be larger)
    is refused as ``event_too_large``, so one inflated payload cannot become one document of
    tens of MB. Entries before a malformed or refused one are still yielded, then the error
    is raised.
    """
    if not blob:
        return iter(())
    complete, events, error = _scan_entries(blob, max_values, max_event_bytes)
    if error is None and complete != len(blob):
        error = malformed("entries end in the middle of an event")
    return _decode_packed(blob, complete, events, max_values, error)


def _scan_entries(blob: bytes | bytearray | memoryview, max_values: int,
                  max_event_bytes: int | None, count: int = -1,
                  ) -> tuple[int, list[tuple[int, int, int]], InputProtocolError | None]:
    """The skip pass of ``scan_packed`` over at most ``count`` entries (all when -1): where
    the last complete entry ends, the decode events, and the error that stopped it."""
    framer = msgpack.Unpacker(_ViewReader(memoryview(blob)),
                              read_size=min(READ_SIZE, len(blob)),
                              max_buffer_size=len(blob))
    error: InputProtocolError | None = None
    complete = 0  # end of the last complete entry
    index = 0
    since_flush = 0
    # (entry index, start, end or -1 for a flush before that entry), in order
    events: list[tuple[int, int, int]] = []
    gate = max_values if max_event_bytes is None else min(max_values, max_event_bytes)
    while index != count:
        try:
            framer.skip()
        except msgpack.OutOfData:
            break
        except UNPACK_ERRORS as exc:
            error = malformed("undecodable entries", exc)
            break
        end = framer.tell()
        span = end - complete
        if since_flush + span > FLUSH_BYTES and since_flush:
            events.append((index, 0, -1))
            since_flush = 0
        since_flush += span
        if span > gate:
            if max_event_bytes is not None and span > max_event_bytes:
                error = InputProtocolError(
                    "event_too_large", f"an event is larger than {max_event_bytes} bytes")
                break
            if span > max_values:
                events.append((index, complete, end))
        complete = end
        index += 1
    return complete, events, error


def _decode_packed(blob: bytes | bytearray | memoryview, complete: int,
                   events: list[tuple[int, int, int]], max_values: int,
                   error: InputProtocolError | None) -> Iterator[Any]:
    if complete:
        entries = msgpack.Unpacker(_ViewReader(memoryview(blob)[:complete]),
                                   read_size=min(READ_SIZE, complete),
                                   raw=False, unicode_errors="backslashreplace",
                                   ext_hook=ext_hook, strict_map_key=False,
                                   max_map_len=MAX_MAP_KEYS, max_array_len=MAX_ARRAY_LEN,
                                   max_buffer_size=complete)
        try:
            if not events:
                yield from entries
            else:
                done = 0
                view = memoryview(blob)
                for index, start, end in events:
                    yield from islice(entries, index - done)  # at C speed between events
                    done = index
                    if end < 0:
                        yield FLUSH
                        continue
                    entries.skip()
                    done += 1
                    yield _decode_bounded(view[start:end], max_values, "backslashreplace",
                                          "an event")
                yield from entries
        except UNPACK_ERRORS as exc:
            raise malformed("undecodable entries", exc) from exc
    if error is not None:
        raise error


@dataclass(slots=True)
class LazyEntries:
    """The events of a large Forward-mode request, checked but not yet decoded."""

    entries: Iterator[Any]


def _array_header(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(length, offset after the header) of the array at ``pos``, else None."""
    b = buf[pos]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, pos + 1
    if b == 0xDC:
        return int.from_bytes(buf[pos + 1:pos + 3], "big"), pos + 3
    if b == 0xDD:
        return int.from_bytes(buf[pos + 1:pos + 5], "big"), pos + 5
    return None


def _string_end(buf: bytes, pos: int) -> int | None:
    """The offset just past the str or bin value at ``pos``, else None."""
    b = buf[pos]
    if 0xA0 <= b <= 0xBF:
        return pos + 1 + (b & 0x1F)
    width = {0xD9: 1, 0xC4: 1, 0xDA: 2, 0xC5: 2, 0xDB: 4, 0xC6: 4}.get(b)
    if width is None:
        return None
    return pos + 1 + width + int.from_bytes(buf[pos + 1:pos + 1 + width], "big")


def forward_shape(frame: bytes) -> tuple[int, int, int, int, int] | None:
    """For a complete frame ``[tag, [event, ...], ...]``: its length, where the tag starts
    and ends, the number of events and where they start; None for any other shape. Reads
    a few header bytes only."""
    head = _array_header(frame, 0)
    if head is None or not 2 <= head[0] <= 17:
        return None
    n, pos = head
    tag_end = _string_end(frame, pos)
    if tag_end is None or tag_end >= len(frame):
        return None
    array = _array_header(frame, tag_end)
    if array is None:
        return None
    return n, pos, tag_end, array[0], array[1]


def split_forward(frame: bytes, max_values: int, max_event_bytes: int,
                  max_request_values: int = DEFAULT_MAX_VALUES_PER_REQUEST) -> list[Any] | None:
    """A complete Forward-mode frame ``[tag, [event, ...], option...]`` as
    ``[tag, LazyEntries, option...]``: its events get the same skip pass and bounds as
    PackedForward ones (``max_values`` per event, ``max_event_bytes``, decoded lazily in
    slices), instead of the whole request being decoded at once: ``event_too_large`` is
    raised here, ``too_many_values`` when that event is reached. None when the frame has
    another shape (it is decoded whole)."""
    shape = forward_shape(frame)
    if shape is None:
        return None
    n, pos, tag_end, count, start = shape
    view = memoryview(frame)[start:]
    complete = 0
    events: list[tuple[int, int, int]] = []
    if count:
        complete, events, error = _scan_entries(view, max_values, max_event_bytes, count)
        if error is not None:
            raise error
    tag = unpack_frame(frame[pos:tag_end])
    rest = unpack_frame(bytes([0x90 + n - 2]) + frame[start + complete:], max_request_values)
    entries = _decode_packed(view, complete, events, max_values, None) if count else iter(())
    return [tag, LazyEntries(entries), *rest]


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    raise malformed(f"{what} must be a string, got {type(value).__name__}")


def parse_request(message: list[Any], raw: bytes, max_decompressed: int,
                  max_values: int = DEFAULT_MAX_VALUES_PER_RECORD,
                  max_event_bytes: int | None = None) -> Request:
    """Recognise the carrier mode by the type of the second element (the request's shape).

    PackedForward entries are inflated and checked here (``scan_packed``) and decoded
    lazily; ``max_values`` bounds the values of one event, ``max_event_bytes`` its size."""
    if len(message) < 2:
        raise malformed(f"a request needs a tag and events, got {len(message)} element(s)")
    tag = _text(message[0], "the tag")
    second = message[1]
    if isinstance(second, bytes | str):
        option = _option(message, 2)
        blob = second.encode("utf-8", "surrogateescape") if isinstance(second, str) else second
        compressed = option.get("compressed")
        if isinstance(compressed, bytes):
            compressed = compressed.decode("ascii", "replace")
        if compressed in (None, "text"):
            return Request(tag, "packed", scan_packed(blob, max_values, max_event_bytes),
                           option, raw, True)
        if compressed == "gzip":
            return Request(tag, "compressed",
                           scan_packed(gunzip(blob, max_decompressed), max_values,
                                       max_event_bytes),
                           option, raw, True)
        raise InputProtocolError("unsupported_compression",
                                 f"unsupported compression {compressed!r} (text or gzip)")
    if isinstance(second, list):
        return Request(tag, "forward", iter(second), _option(message, 2), raw, False)
    if type(second) is LazyEntries:
        return Request(tag, "forward", second.entries, _option(message, 2), raw, True)
    record = message[2] if len(message) > 2 else None
    return Request(tag, "message", iter([[second, record]]), _option(message, 3), raw, False)


def check_chunk(chunk: Any, json_mode: bool) -> None:
    """Refuse a chunk id the ack could not echo faithfully (``InputProtocolError``).

    The client matches its ack by comparing the echoed id with what it sent, so only ids that
    round-trip exactly are acknowledged: strings (invalid UTF-8 kept by ``surrogateescape``
    is echoed byte for byte in msgpack, but cannot be written as JSON), binaries (msgpack
    only) and 64-bit integers, of at most ``MAX_CHUNK_CHARS``. Anything else (maps, arrays,
    EventTime and other ext values, floats, booleans) closes the connection unacknowledged,
    before any of its events is emitted.
    """
    t = type(chunk)
    if t is str:
        if len(chunk) > MAX_CHUNK_CHARS:
            raise InputProtocolError("invalid_chunk", "the chunk id is too long")
        if json_mode and not chunk.isascii():
            try:
                chunk.encode("utf-8")
            except UnicodeEncodeError:
                raise InputProtocolError(
                    "invalid_chunk", "the chunk id is not valid Unicode") from None
        return
    if t is bytes and not json_mode:
        if len(chunk) > MAX_CHUNK_CHARS:
            raise InputProtocolError("invalid_chunk", "the chunk id is too long")
        return
    if t is int and _INT64_MIN <= chunk <= _UINT64_MAX:
        return
    raise InputProtocolError("invalid_chunk",
                             f"a chunk id must be a string, got {t.__name__}")


def _option(message: list[Any], index: int) -> dict[Any, Any]:
    option = message[index] if len(message) > index else None
    if option is None:
        return {}
    if not isinstance(option, dict):
        raise malformed(f"the option must be a map, got {type(option).__name__}")
    return option
