"""Batch decoders for container log files: CRI (containerd, CRI-O) and Docker ``json-file``.

The rules both formats share (record shape, flags, partial messages, multiline, NUL runs,
byte order marks) live in ``decoding.Decoder``; this module holds the two formats.

Performance: this is the hot path (target < 2 µs per line). Each ``decode`` loop handles the
common line inline (one split or one ``orjson.loads``, cached time parsing, one dict, one
Record) and sends everything unusual to ``_line``, which implements the full rules; the
fast path is only a shortcut through the same rules.

When the compiled extension is there (``shipper.speedups``), ``decode`` runs its copy of the
fast path and hands each line it does not take, alone, to the Python loop (``_decode_py``),
so the Python code below remains the definition of the behaviour.
"""

from __future__ import annotations

from typing import Any

from orjson import JSONDecodeError, loads

from shipper.record import Record
from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.decoding import (
    BOM,
    INVALID_UTF8,
    MALFORMED,
    STREAM_NAMES,
    STREAMS,
    TRUNCATED,
    Decoder,
    detect_format,
    skip_nul,
)
from shipper.sources.tail.timestamps import HEAD_NS, head_ns, parse_time
from shipper.speedups import speedups

_decode_cri = speedups.decode_cri if speedups is not None else None
_decode_docker = speedups.decode_docker if speedups is not None else None

__all__ = ["BOM", "INVALID_UTF8", "MALFORMED", "TRUNCATED", "CriDecoder", "Decoder",
           "DockerDecoder", "detect_format", "make_decoder"]


class CriDecoder(Decoder):
    """``<RFC3339Nano> <stream> <P|F>[:tags] <content>`` (containerd, CRI-O)."""

    format = "cri"

    def decode(self, lines: list[bytes], offset: int) -> tuple[list[Record], int]:
        if self.multiline is not None:
            return super().decode(lines, offset)
        if _decode_cri is not None:
            return _decode_cri(self, lines, offset, self._decode_py)
        return self._decode_py(lines, offset)

    def _decode_py(self, lines: list[bytes], offset: int) -> tuple[list[Record], int]:
        """The pure-Python loop: the reference, and the compiled loop's fallback."""
        records: list[Record] = []
        append = records.append
        new_body, tag, ident, max_bytes = self.template.copy, self.tag, self.identity, \
            self.max_bytes
        partials, streams, heads, slow = self.partials.groups, STREAMS, HEAD_NS, self._line
        end = offset
        carry = None  # time of the last line if it took the fast path (see ``carry_ns``)
        for line in lines:
            start = end
            end += len(line) + 1
            # Fast path: "<30-byte UTC nanos ts> <stream> F <content>", the containerd norm.
            parts = line.split(b" ", 3)
            if len(parts) == 4 and parts[2] == b"F":
                ts, stream_name, _, content = parts
                if (len(ts) == 30 and ts[29] == 90 and ts[19] == 46  # ...SS.nnnnnnnnnZ
                        and len(content) <= max_bytes and content[-1:] != b"\r"):
                    base = heads.get(ts[:19])
                    if base is None:
                        base = head_ns(ts[:19])
                    frac = ts[20:29]
                    stream = streams.get(stream_name)
                    if (base is not None and stream is not None and frac.isdigit()
                            and stream not in partials):
                        try:
                            text = content.decode()
                        except UnicodeDecodeError:
                            pass
                        else:
                            body = new_body()
                            body["log"] = text
                            body["stream"] = stream
                            body["time"] = ts.decode("latin-1")
                            carry = base + int(frac)
                            append(Record(body, carry, tag, f"{ident}-{start:x}"))
                            continue
            if carry is not None:
                self.carry_ns, self.initial, carry = carry, False, None
            record = slow(line, start)
            if record is not None:
                append(record)
        if carry is not None:
            self.carry_ns, self.initial = carry, False
        return records, end

    def _line(self, line: bytes, offset: int, length: int | None = None) -> Record | None:
        if line[:1] == b"\0":
            line, length = skip_nul(line, length)
            if not line:
                return None
        if length is None:
            if line[-1:] == b"\r":  # CRLF file: the CR belongs to the line end
                line = line[:-1]
            missing = 0
        else:
            missing = length - len(line)
        parts = line.split(b" ", 3)
        if len(parts) != 4:
            return self._malformed(line, offset, length)
        ts, stream_name, tags, content = parts
        stream = STREAMS.get(stream_name)
        parsed = parse_time(ts.decode("latin-1"))
        if stream is None or parsed is None:
            return self._malformed(line, offset, length)
        # Kubelet reads only the first ':'-separated tag: P is partial, anything else is full.
        partial = tags.split(b":", 1)[0] == b"P"
        record = self._content(stream, offset, parsed[0], parsed[1], content,
                               len(content) + missing, partial)
        self.carry_ns, self.initial = parsed[0], False
        return record


class DockerDecoder(Decoder):
    """``{"log":"...\\n","stream":"stdout","time":"..."}`` (moby json-file)."""

    format = "docker"
    _strip_cr = True  # a 16 KiB split can fall between the \r and the \n of a CRLF

    def decode(self, lines: list[bytes], offset: int) -> tuple[list[Record], int]:
        if self.multiline is not None:
            return super().decode(lines, offset)
        if _decode_docker is not None:
            return _decode_docker(self, lines, offset, self._decode_py)
        return self._decode_py(lines, offset)

    def _decode_py(self, lines: list[bytes], offset: int) -> tuple[list[Record], int]:
        """The pure-Python loop: the reference, and the compiled loop's fallback."""
        records: list[Record] = []
        append = records.append
        new_body, tag, ident, max_bytes = self.template.copy, self.tag, self.identity, \
            self.max_bytes
        partials, names, heads, slow = self.partials.groups, STREAM_NAMES, HEAD_NS, self._line
        end = offset
        carry = None  # time of the last line if it took the fast path (see ``carry_ns``)
        for line in lines:
            start = end
            end += len(line) + 1
            # Anything odd (not a dict, a non-str field, attrs, a split piece) raises or
            # fails a test here and takes the slow path, which applies the full rules.
            try:
                obj = loads(line)
                log = obj["log"]
                stream = obj["stream"]
                ts = obj["time"]
                if (log[-1:] == "\n" and log[-2:-1] != "\r" and stream in names
                        and stream not in partials and len(obj) == 3
                        and len(line) <= max_bytes):
                    time_ns = None
                    if len(ts) == 30 and ts[29] == "Z" and ts[19] == ".":
                        base = heads.get(ts[:19])
                        if base is None:
                            base = head_ns(ts[:19])
                        frac = ts[20:29]
                        if base is not None and frac.isdecimal():
                            time_ns = base + int(frac)
                    if time_ns is None:
                        parsed = parse_time(ts)  # fraction with trailing zeros trimmed
                        if parsed is not None:
                            time_ns, ts = parsed
                    if time_ns is not None:
                        body = new_body()
                        body["log"] = log[:-1]
                        body["stream"] = stream
                        body["time"] = ts
                        append(Record(body, time_ns, tag, f"{ident}-{start:x}"))
                        carry = time_ns
                        continue
            except (JSONDecodeError, KeyError, TypeError, AttributeError):
                pass
            if carry is not None:
                self.carry_ns, self.initial, carry = carry, False, None
            record = slow(line, start)
            if record is not None:
                append(record)
        if carry is not None:
            self.carry_ns, self.initial = carry, False
        return records, end

    def _line(self, line: bytes, offset: int, length: int | None = None) -> Record | None:
        if line[:1] == b"\0":
            line, length = skip_nul(line, length)
            if not line:
                return None
        if length is not None and length > len(line):
            return self._malformed(line, offset, length)  # cut JSON cannot be parsed
        flags: list[str] = []
        try:
            obj = loads(line)
        except JSONDecodeError:
            try:
                line.decode()
            except UnicodeDecodeError:
                try:
                    obj = loads(line.decode("utf-8", "replace"))
                except JSONDecodeError:
                    return self._malformed(line, offset, length)
                flags.append(INVALID_UTF8)
            else:
                return self._malformed(line, offset, length)
        if not isinstance(obj, dict):
            return self._malformed(line, offset, length, flags)
        log, stream, ts = obj.get("log"), obj.get("stream"), obj.get("time")
        parsed = parse_time(ts) if isinstance(ts, str) else None
        if (not isinstance(stream, str) or stream not in STREAM_NAMES or parsed is None
                or not isinstance(log, str | None)):
            return self._malformed(line, offset, length, flags)
        text = log or ""
        # Docker omits an empty "log"; such a record is a complete empty message.
        partial = log is not None and text[-1:] != "\n"
        if not partial and text:
            text = text[:-1]
        content = text.encode("utf-8", "surrogatepass")
        record = self._content(stream, offset, parsed[0], parsed[1], content, len(content),
                               partial, flags, obj.get("attrs"))
        self.carry_ns, self.initial = parsed[0], False
        return record


def make_decoder(fmt: str, identity: str, static: dict[str, Any], max_line_bytes: int,
                 multiline: MultilineConfig | None = None, carry_ns: int = 0) -> Decoder:
    """Decoder for a detected format (``carry_ns``: see ``Decoder``)."""
    cls = DockerDecoder if fmt == "docker" else CriDecoder
    return cls(identity, static, max_line_bytes, multiline, carry_ns)
