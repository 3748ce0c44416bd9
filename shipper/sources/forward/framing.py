"""Finding where each forward request ends in a connection's byte stream.

``MsgpackFramer`` uses ``Unpacker.skip``, which builds no objects, so only a complete frame
is ever decoded (``shipper.sources.forward.decoder``), and a frame grows at most to
``max_frame_bytes``: that is the per-connection receive memory. ``JsonFramer`` does the same
for the JSON variant, scanning each byte once.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgpack

from shipper.errors import InputProtocolError
from shipper.sources.forward.decoder import READ_SIZE, UNPACK_ERRORS, malformed

# An unpacker's buffer grows to the largest frame it saw and never shrinks; a framer with
# nothing pending starts a fresh one after this many bytes, so an idle connection that once
# sent a large request does not keep that much memory.
_FRESH_UNPACKER_AFTER = 1024 * 1024


def _stream_unpacker(max_frame: int) -> msgpack.Unpacker:
    """An unpacker for a connection's stream. Its buffer starts at ``READ_SIZE`` (msgpack's
    default is 1 MiB, allocated for every connection, even an idle one) and grows as a
    frame needs it, up to ``max_frame``."""
    return msgpack.Unpacker(max_buffer_size=max_frame, read_size=min(READ_SIZE, max_frame))


class MsgpackFramer:
    """Splits a msgpack stream into complete frames of at most ``max_frame`` bytes."""

    def __init__(self, max_frame: int) -> None:
        self._max = max_frame
        self._unpacker = _stream_unpacker(max_frame)
        self._raw = bytearray()  # bytes of the current, incomplete frame
        self._offset = 0  # stream offset of _raw[0]
        self.failed: InputProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a complete frame."""
        return len(self._raw)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every frame they complete, in order.

        Garbage after complete frames is reported by ``failed`` (check it once those frames
        are handled) so the requests before it are not lost.
        """
        if self.failed is not None:
            raise self.failed
        frames: list[bytes] = []
        view = memoryview(data)
        while view:
            room = self._max - len(self._raw)
            if room <= 0:
                raise InputProtocolError(
                    "frame_too_large", f"a request exceeds max_frame_bytes ({self._max})")
            piece, view = view[:room], view[room:]
            try:
                self._unpacker.feed(piece)
            except msgpack.BufferFull as exc:
                raise InputProtocolError(
                    "frame_too_large", f"a request exceeds max_frame_bytes ({self._max})") from exc
            self._raw += piece
            start = 0
            while True:
                try:
                    self._unpacker.skip()
                except msgpack.OutOfData:
                    break
                except UNPACK_ERRORS as exc:
                    if not frames:
                        raise malformed("undecodable msgpack", exc) from exc
                    # Hand out the requests that came before the garbage; fail next time.
                    self.failed = malformed("undecodable msgpack", exc)
                    return frames
                end = self._unpacker.tell() - self._offset
                frames.append(bytes(self._raw[start:end]))
                start = end
            if start:
                if start == len(self._raw):
                    self._raw = bytearray()
                else:
                    del self._raw[:start]
                self._offset += start
        if not self._raw and self._offset > _FRESH_UNPACKER_AFTER:
            self._unpacker = _stream_unpacker(self._max)
            self._offset = 0
        return frames


# Everything up to the next bracket or quote that is not inside a complete string, at C
# speed (possessive, so an unterminated string stops the run at its quote, no backtracking).
_JSON_RUN = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.S)
_JSON_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.S)
_JSON_SPACE = b" \t\r\n"
_JSON_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


class JsonFramer:
    """Splits the JSON variant (a stream of JSON values) into ``(value, raw bytes)`` pairs.

    A scan over each received byte once (brackets and strings, at C speed between them)
    finds where a top-level value ends, and only then is it parsed. Parsing the growing
    buffer on every read instead cost time quadratic in the request size: one 6 MB request
    in 64 KiB reads blocked the server for 4 s.
    """

    def __init__(self, max_frame: int) -> None:
        self._max = max_frame
        self._buf = bytearray()
        self._decoder = json.JSONDecoder()
        self._scan = 0  # bytes of _buf already scanned
        self._depth = 0  # open brackets at _scan
        self._in_string = False  # _scan is inside a string
        self.failed: InputProtocolError | None = None

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _value_end(self) -> int | None:
        """Scan on from where the last call stopped; the offset just past the closing
        bracket of the first complete top-level value, or None for "need more bytes"."""
        buf = self._buf
        n = len(buf)
        pos = self._scan
        while pos < n:
            if self._in_string:
                pos = _JSON_STRING_BODY.match(buf, pos).end()  # type: ignore[union-attr]
                if pos >= n:
                    break
                if buf[pos] == 0x5C:  # a backslash whose escaped byte has not arrived
                    break
                self._in_string = False  # the closing quote
                pos += 1
                continue
            pos = _JSON_RUN.match(buf, pos).end()  # type: ignore[union-attr]
            if pos >= n:
                break
            pos += 1
            char = buf[pos - 1]
            if char == 0x22:
                self._in_string = True
            elif char in b"[{":
                self._depth += 1
            else:
                self._depth -= 1
                if self._depth <= 0:
                    self._depth = 0
                    self._scan = pos
                    return pos
        self._scan = pos
        return None

    def feed(self, data: bytes) -> list[tuple[Any, bytes]]:
        """Like ``MsgpackFramer.feed``: values completed by ``data``; see ``failed``."""
        if self.failed is not None:
            raise self.failed
        self._buf += data
        out: list[tuple[Any, bytes]] = []
        while (end := self._value_end()) is not None:
            raw = bytes(self._buf[:end])
            text = raw.decode("utf-8", "surrogateescape")
            pos = 0
            try:
                while True:  # scalars before the array are values too, if odd ones
                    while pos < len(text) and text[pos] in " \t\r\n":
                        pos += 1
                    if pos >= len(text):
                        break
                    value, stop = self._decoder.raw_decode(text, pos)
                    out.append((value, raw if pos == 0 and stop == len(text)
                                else text[pos:stop].encode("utf-8", "surrogateescape")))
                    pos = stop
            except json.JSONDecodeError as exc:
                error = malformed("invalid JSON", exc)
            except RecursionError as exc:
                error = InputProtocolError("too_deep", f"JSON nested too deeply: {exc}")
            else:
                consumed = end
                while consumed < len(self._buf) and self._buf[consumed] in _JSON_SPACE:
                    consumed += 1
                del self._buf[:consumed]
                self._scan -= consumed
                continue
            if not out:
                raise error
            self.failed = error  # hand out the requests before the garbage first
            return out
        if self._buf and self._buf[0] in _JSON_SPACE:  # blank lines between values
            blank = _JSON_LEADING_SPACE.match(self._buf).end()  # type: ignore[union-attr]
            del self._buf[:blank]
            self._scan = max(0, self._scan - blank)
        if len(self._buf) > self._max:
            raise InputProtocolError(
                "frame_too_large", f"a request exceeds max_frame_bytes ({self._max})")
        return out
