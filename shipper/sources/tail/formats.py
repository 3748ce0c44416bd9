"""Batch decoders for container log files: CRI (containerd, CRI-O) and Docker ``json-file``.

A decoder turns a list of complete physical lines (LF removed) of ONE file into records with
Fluentd's body shape (spec §2.2, §2.3; design "Records")::

    {"log": str, "stream": "stdout"|"stderr", "time": "...123456789Z", "tag": ...,
     "kubernetes": {...}, "docker": {...}}

Choices (the same for both formats, so Kibana sees one shape):

* ``log`` never ends with the line's LF (CRI content has none; for Docker one trailing
  ``\\n`` is stripped, and a ``\\r`` before it). A JSON-looking ``log`` stays a string.
* Nothing is ever dropped. A message longer than ``max_line_bytes`` is cut at a UTF-8
  boundary and flagged ``truncated`` with ``original_bytes``; invalid UTF-8 is replaced and
  flagged ``invalid_utf8``; a line that is not valid CRI / Docker JSON ships raw as ``log``,
  without ``stream``, timed at read time and flagged ``malformed``. Flags live in
  ``body["shipper"]["flags"]`` and are counted in ``self.flags``.
* Split messages (CRI ``P``...``F``, Docker pieces without LF) are joined per stream and
  take the offset and timestamp of their first piece (see ``partials``).

Performance: this is the hot path (target < 2 µs per line). Each ``decode`` loop handles the
common line inline (one split or one ``orjson.loads``, cached time parsing, one dict, one
Record) and sends everything unusual to ``_line``, which implements the full rules; the
fast path is only a shortcut through the same rules.
"""

from __future__ import annotations

from typing import Any

from orjson import JSONDecodeError, loads

from shipper.record import Record
from shipper.sources.tail.identity import doc_id
from shipper.sources.tail.partials import Group, Partials
from shipper.sources.tail.timestamps import HEAD_NS, format_time, head_ns, parse_time

_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
_STREAM_NAMES = frozenset(("stdout", "stderr"))
MALFORMED = "malformed"
TRUNCATED = "truncated"
INVALID_UTF8 = "invalid_utf8"


def detect_format(first_line: bytes) -> str:
    """``"docker"`` when the first line is a JSON object, else ``"cri"`` (spec §2.5 item 7)."""
    return "docker" if first_line.lstrip()[:1] == b"{" else "cri"


class Decoder:
    """Shared state and slow paths of both formats; one instance per file incarnation."""

    format = ""
    _strip_cr = False

    def __init__(self, identity: str, static: dict[str, Any], max_line_bytes: int) -> None:
        self.identity = identity
        self.static = static  # tag / kubernetes / docker: shared by all records, never mutated
        self.tag: str = static["tag"]
        self.max_bytes = max_line_bytes
        self.partials = Partials(max_line_bytes)
        self.flags: dict[str, int] = {}  # flag -> count since the owner last collected them

    def decode(self, lines: list[bytes], offset: int, now_ns: int) -> tuple[list[Record], int]:
        """Decode complete lines starting at byte ``offset``; return records and end offset."""
        records = []
        end = offset
        for line in lines:
            record = self._line(line, end, now_ns)
            end += len(line) + 1
            if record is not None:
                records.append(record)
        return records, end

    def decode_long(self, head: bytes, length: int, offset: int, now_ns: int) -> list[Record]:
        """One physical line of ``length`` bytes of which only ``head`` was kept (too long)."""
        record = self._line(head, offset, now_ns, length)
        return [] if record is None else [record]

    def flush(self) -> list[Record]:
        """Ship every open partial group as is (file closed, or idle with a dangling piece)."""
        return [self._from_group(stream, group) for stream, group in self.partials.drain()]

    def safe_offset(self, end: int) -> int:
        """Checkpoint limit once lines up to ``end`` are consumed: never inside a group."""
        return self.partials.safe_offset(end)

    def _line(self, line: bytes, offset: int, now_ns: int,
              length: int | None = None) -> Record | None:
        raise NotImplementedError

    def _malformed(self, line: bytes, offset: int, now_ns: int, length: int | None,
                   flags: list[str] | None = None) -> Record:
        if length is None and line[-1:] == b"\r":
            line = line[:-1]
        group = Group(offset, now_ns, format_time(now_ns))
        group.add(line, len(line) if length is None else length, self.max_bytes)
        return self._from_group(None, group, [MALFORMED, *(flags or ())])

    def _from_group(self, stream: str | None, group: Group, flags: list[str] | None = None,
                    attrs: Any = None) -> Record:
        """Build the record of a finished message, applying every flag rule."""
        content, truncated = group.content(self.max_bytes)
        if self._strip_cr and not truncated and content[-1:] == b"\r":
            content = content[:-1]
        flags = list(flags) if flags else []
        try:
            text = content.decode()
        except UnicodeDecodeError:
            text = content.decode("utf-8", "replace")
            if INVALID_UTF8 not in flags:
                flags.append(INVALID_UTF8)
        body: dict[str, Any] = {"log": text}
        if stream is not None:
            body["stream"] = stream
        body["time"] = group.time_str
        body.update(self.static)
        if attrs is not None:
            body["attrs"] = attrs
        if truncated:
            flags.append(TRUNCATED)
        if flags:
            meta: dict[str, Any] = {"flags": flags}
            if truncated:
                meta["original_bytes"] = group.total
            body["shipper"] = meta
            counts = self.flags
            for flag in flags:
                counts[flag] = counts.get(flag, 0) + 1
        return Record(body, group.time_ns, self.tag, doc_id(self.identity, group.offset))

    def _content(self, stream: str, offset: int, time_ns: int, time_str: str, content: bytes,
                 length: int, partial: bool, flags: list[str] | None = None,
                 attrs: Any = None) -> Record | None:
        """Route one parsed piece through the stream's partial group."""
        partials = self.partials
        if partial:
            partials.add(stream, offset, time_ns, time_str, content, length)
            return None
        if stream in partials:
            group = partials.finish(stream, content, length)
        else:
            group = Group(offset, time_ns, time_str)
            group.add(content, length, self.max_bytes)
        return self._from_group(stream, group, flags, attrs)


class CriDecoder(Decoder):
    """``<RFC3339Nano> <stream> <P|F>[:tags] <content>`` (containerd, CRI-O)."""

    format = "cri"

    def decode(self, lines: list[bytes], offset: int, now_ns: int) -> tuple[list[Record], int]:
        records: list[Record] = []
        append = records.append
        static, tag, ident, max_bytes = self.static, self.tag, self.identity, self.max_bytes
        partials, streams, heads, slow = self.partials.groups, _STREAMS, HEAD_NS, self._line
        end = offset
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
                            append(Record({"log": text, "stream": stream,
                                           "time": ts.decode("latin-1"), **static},
                                          base + int(frac), tag, f"{ident}-{start:x}"))
                            continue
            record = slow(line, start, now_ns)
            if record is not None:
                append(record)
        return records, end

    def _line(self, line: bytes, offset: int, now_ns: int,
              length: int | None = None) -> Record | None:
        if length is None:
            if line[-1:] == b"\r":  # CRLF file: the CR belongs to the line end
                line = line[:-1]
            missing = 0
        else:
            missing = length - len(line)
        parts = line.split(b" ", 3)
        if len(parts) != 4:
            return self._malformed(line, offset, now_ns, length)
        ts, stream_name, tags, content = parts
        stream = _STREAMS.get(stream_name)
        parsed = parse_time(ts.decode("latin-1"))
        if stream is None or parsed is None:
            return self._malformed(line, offset, now_ns, length)
        # Kubelet reads only the first ':'-separated tag: P is partial, anything else is full.
        partial = tags.split(b":", 1)[0] == b"P"
        return self._content(stream, offset, parsed[0], parsed[1], content,
                             len(content) + missing, partial)


class DockerDecoder(Decoder):
    """``{"log":"...\\n","stream":"stdout","time":"..."}`` (moby json-file)."""

    format = "docker"
    _strip_cr = True  # a 16 KiB split can fall between the \r and the \n of a CRLF

    def decode(self, lines: list[bytes], offset: int, now_ns: int) -> tuple[list[Record], int]:
        records: list[Record] = []
        append = records.append
        static, tag, ident, max_bytes = self.static, self.tag, self.identity, self.max_bytes
        partials, names, heads, slow = self.partials.groups, _STREAM_NAMES, HEAD_NS, self._line
        end = offset
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
                    if len(ts) == 30 and ts[29] == "Z" and ts[19] == ".":
                        base = heads.get(ts[:19])
                        if base is None:
                            base = head_ns(ts[:19])
                        frac = ts[20:29]
                        if base is not None and frac.isdecimal():
                            append(Record({"log": log[:-1], "stream": stream, "time": ts,
                                           **static}, base + int(frac), tag,
                                          f"{ident}-{start:x}"))
                            continue
                    parsed = parse_time(ts)  # fraction with trailing zeros trimmed
                    if parsed is not None:
                        append(Record({"log": log[:-1], "stream": stream, "time": parsed[1],
                                       **static}, parsed[0], tag, f"{ident}-{start:x}"))
                        continue
            except (JSONDecodeError, KeyError, TypeError, AttributeError):
                pass
            record = slow(line, start, now_ns)
            if record is not None:
                append(record)
        return records, end

    def _line(self, line: bytes, offset: int, now_ns: int,
              length: int | None = None) -> Record | None:
        if length is not None and length > len(line):
            return self._malformed(line, offset, now_ns, length)  # cut JSON cannot be parsed
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
                    return self._malformed(line, offset, now_ns, length)
                flags.append(INVALID_UTF8)
            else:
                return self._malformed(line, offset, now_ns, length)
        if not isinstance(obj, dict):
            return self._malformed(line, offset, now_ns, length, flags)
        log, stream, ts = obj.get("log"), obj.get("stream"), obj.get("time")
        parsed = parse_time(ts) if isinstance(ts, str) else None
        if (not isinstance(stream, str) or stream not in _STREAM_NAMES or parsed is None
                or not isinstance(log, str | None)):
            return self._malformed(line, offset, now_ns, length, flags)
        text = log or ""
        # Docker omits an empty "log"; such a record is a complete empty message.
        partial = log is not None and text[-1:] != "\n"
        if not partial and text:
            text = text[:-1]
        content = text.encode("utf-8", "surrogatepass")
        return self._content(stream, offset, parsed[0], parsed[1], content, len(content),
                             partial, flags, obj.get("attrs"))


def make_decoder(fmt: str, identity: str, static: dict[str, Any],
                 max_line_bytes: int) -> Decoder:
    """Decoder for a detected format."""
    cls = DockerDecoder if fmt == "docker" else CriDecoder
    return cls(identity, static, max_line_bytes)
