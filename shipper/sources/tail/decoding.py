"""The decoder base: rules shared by the CRI and Docker formats (``formats``).

A decoder turns a list of complete physical lines (LF removed) of ONE file into records with
Fluentd's body shape (spec §2.2, §2.3; design "Records")::

    {"log": str, "stream": "stdout"|"stderr", "time": "...123456789Z", "tag": ...,
     "kubernetes": {...}, "docker": {...}}

Choices (the same for both formats, so Kibana sees one shape):

* ``log`` never ends with the line's LF (CRI content has none; for Docker one trailing
  ``\\n`` is stripped, and a ``\\r`` before it). A JSON-looking ``log`` stays a string.
* Nothing is ever dropped. A message longer than ``max_line_bytes`` is cut at a UTF-8
  boundary and flagged ``truncated`` with ``original_bytes``; invalid UTF-8 is replaced and
  flagged ``invalid_utf8``; a line that is not valid CRI / Docker JSON (or whose time does
  not parse) ships raw as ``log``, without ``stream``, flagged ``malformed``. Flags live in
  ``body["shipper"]["flags"]`` and are counted in ``self.flags``.
* A malformed line has no time of its own. It takes the **carried time** (``carry_ns``): the
  time of the last line before it in the same file that had a valid timestamp, or, before
  the file's first such line, the wall-clock time the agent first saw the file. Never the
  read time: the index name comes from the record's time, and a line re-read after a crash
  must land in the same index as the first time, or ``create`` cannot answer 409. The
  carried time at a checkpoint's offset is stored with it (``safe_point``; ``AckTracker``,
  ``checkpoints.Entry.time_ns``), so a restart carries exactly what the first read did.
* Split messages (CRI ``P``...``F``, Docker pieces without LF) are joined per stream and
  take the offset and timestamp of their first piece (see ``partials``); a flag of any piece
  is kept on the joined record. Open messages can be handed to the file's next generation
  (``take_pending`` / ``adopt_pending``), so a rotation does not split them.
* A run of NUL bytes at the start of a line (the hole a writer without ``O_APPEND`` leaves
  after a copytruncate) is skipped; NUL bytes inside a line are data. A UTF-8 byte order
  mark at the start of a file is skipped by the reader and ignored by ``detect_format``.
* With a multiline rule, complete messages go through ``multiline.Multiline`` (the
  subclasses' fast paths are bypassed: joining needs every message anyway).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from shipper.record import Record
from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.identity import doc_id
from shipper.sources.tail.multiline import Event, Multiline
from shipper.sources.tail.multiline import build as build_multiline
from shipper.sources.tail.partials import Group, Partials
from shipper.sources.tail.timestamps import format_time

STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
STREAM_NAMES = frozenset(("stdout", "stderr"))
MALFORMED = "malformed"
TRUNCATED = "truncated"
INVALID_UTF8 = "invalid_utf8"


BOM = b"\xef\xbb\xbf"


def detect_format(first_line: bytes) -> str:
    """``"docker"`` when the first line is a JSON object, else ``"cri"`` (spec §2.5 item 7)."""
    return "docker" if first_line.removeprefix(BOM).lstrip()[:1] == b"{" else "cri"


def skip_nul(line: bytes, length: int | None) -> tuple[bytes, int | None]:
    """Drop a leading run of NUL bytes (and count it out of ``length``)."""
    stripped = line.lstrip(b"\0")
    if length is not None:
        length -= len(line) - len(stripped)
    return stripped, length


class Decoder(ABC):
    """Shared state and slow paths of both formats; one instance per file incarnation."""

    format = ""
    _strip_cr = False

    def __init__(self, identity: str, static: dict[str, Any], max_line_bytes: int,
                 multiline: MultilineConfig | None = None, carry_ns: int = 0) -> None:
        """``carry_ns``: the carried time where decoding starts (from the checkpoint)."""
        self.identity = identity
        self.carry_ns = carry_ns
        # True while ``carry_ns`` is still the checkpoint's, not a line's own; then
        # ``used_initial`` says a malformed line was timed with it (the entry must be on
        # disk before that record ships: see ``ReadLoop.emit``).
        self.initial = True
        self.used_initial = False
        self.static = static  # tag / kubernetes / docker: shared by all records, never mutated
        self.tag: str = static["tag"]
        # The fast paths copy this and set the three per-line fields: half the cost of
        # building ``{"log": ..., "stream": ..., "time": ..., **static}`` per line.
        self.template: dict[str, Any] = {"log": "", "stream": "", "time": "", **static}
        self.max_bytes = max_line_bytes
        self.partials = Partials(max_line_bytes)
        self.flags: dict[str, int] = {}  # flag -> count since the owner last collected them
        # Handoffs (see ``reader.Handoff``) of messages shipped since the owner last took them.
        self.done_handoffs: list[Any] = []
        self.multiline: Multiline | None = None
        if multiline is not None:
            self.multiline = build_multiline(multiline, self.done_handoffs)

    def decode(self, lines: list[bytes], offset: int) -> tuple[list[Record], int]:
        """Decode complete lines starting at byte ``offset``; return records and end offset."""
        records = []
        end = offset
        for line in lines:
            record = self._line(line, end)
            end += len(line) + 1
            if record is not None:
                records.append(record)
        return records, end

    def decode_long(self, head: bytes, length: int, offset: int) -> list[Record]:
        """One physical line of ``length`` bytes of which only ``head`` was kept (too long)."""
        record = self._line(head, offset, length)
        return [] if record is None else [record]

    def flush_partials(self) -> list[Record]:
        """Ship every open partial group as is (idle with a dangling piece)."""
        out = []
        for stream, group in self.partials.drain():
            record = self._from_group(stream, group)
            if record is not None:
                out.append(record)
        return out

    def flush_events(self) -> list[Record]:
        """Ship every open multiline event (idle longer than the rule's flush timeout)."""
        return self.multiline.flush() if self.multiline is not None else []

    def flush(self) -> list[Record]:
        """Ship everything still open (file closed, or truncated under our feet)."""
        return self.flush_partials() + self.flush_events()

    @property
    def pending(self) -> bool:
        return bool(self.partials) or bool(self.multiline)

    def safe_offset(self, end: int) -> int:
        """Checkpoint limit once lines up to ``end`` are consumed: never inside a group."""
        return self.safe_point(end)[0]

    def safe_point(self, end: int) -> tuple[int, int]:
        """``safe_offset`` and the carried time there: where a restart from it would start
        (the first line of the oldest open group or event), it is the time carried before
        that line, kept by the group or event when it opened."""
        best, carry = end, self.carry_ns
        for group in self.partials.groups.values():
            local = group.local
            if local == -1:
                if group.offset < best:
                    best, carry = group.offset, group.carry
            elif local is not None and local < best:
                best, carry = local, group.local_carry
        if self.multiline is not None:
            for event in self.multiline.events.values():
                if event.local is not None and event.local < best:
                    best, carry = event.local, event.carry
        return best, carry

    # -- handing open messages to the next generation of the file ---------------------------

    def take_pending(self) -> tuple[dict[str, Group], dict[str | None, Event]]:
        """Remove and return the open groups and events (they continue in the successor)."""
        groups, self.partials.groups = self.partials.groups, {}
        for group in groups.values():
            if group.identity is None:
                group.identity = self.identity
        events = self.multiline.take() if self.multiline is not None else {}
        return groups, events

    def adopt_pending(self, groups: dict[str, Group], events: dict[str | None, Event],
                      handoff: Any) -> list[Record]:
        """Continue the predecessor's open messages here; ``handoff`` is acknowledged when
        all of them are shipped. Returns events this decoder cannot continue (no rule)."""
        for stream, group in groups.items():
            group.handoffs = [*(group.handoffs or ()), handoff]
            self.partials.adopt(stream, group)
        finished: list[Record] = []
        for key, event in events.items():
            event.handoffs.append(handoff)
            if self.multiline is not None:
                self.multiline.adopt(key, event)
            else:
                finished.append(event.first)
                event.first.body["log"] = "\n".join(event.logs)
                self.done_handoffs.extend(event.handoffs)
        return finished

    # -- slow paths -----------------------------------------------------------------------

    @abstractmethod
    def _line(self, line: bytes, offset: int, length: int | None = None) -> Record | None:
        """Decode one physical line with every rule; None when it only continued a group.
        A line with a valid time makes it the carried time (after its own group/event
        opened with the previous one)."""

    def _malformed(self, line: bytes, offset: int, length: int | None,
                   flags: list[str] | None = None) -> Record | None:
        if length is None and line[-1:] == b"\r":
            line = line[:-1]
        time_ns = self.carry_ns
        if self.initial:
            self.used_initial = True
        group = Group(offset, time_ns, format_time(time_ns), carry=time_ns)
        group.add(line, len(line) if length is None else length, self.max_bytes)
        return self._from_group(None, group, [MALFORMED, *(flags or ())])

    def _from_group(self, stream: str | None, group: Group, flags: list[str] | None = None,
                    attrs: Any = None) -> Record | None:
        """Build the record of a finished message, applying every flag rule; with a
        multiline rule, return the event this message finished instead (if any)."""
        content, truncated = group.content(self.max_bytes)
        if self._strip_cr and not truncated and content[-1:] == b"\r":
            content = content[:-1]
        flags = list(flags) if flags else []
        if group.flags:
            flags += [flag for flag in group.flags if flag not in flags]
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
        record = Record(body, group.time_ns, self.tag,
                        doc_id(group.identity or self.identity, group.offset))
        multiline = self.multiline
        if multiline is None:
            if group.handoffs:
                self.done_handoffs.extend(group.handoffs)
            return record
        if group.local == -1 or group.local is None:
            finished = multiline.add(record, group.offset, group.carry)
        else:
            finished = multiline.add(record, group.local, group.local_carry)
        if group.handoffs:  # the event now holding this message ships them
            multiline.events[stream].handoffs.extend(group.handoffs)
        return finished

    def _content(self, stream: str, offset: int, time_ns: int, time_str: str, content: bytes,
                 length: int, partial: bool, flags: list[str] | None = None,
                 attrs: Any = None) -> Record | None:
        """Route one parsed piece through the stream's partial group."""
        partials = self.partials
        if partial:
            partials.add(stream, offset, time_ns, time_str, content, length, flags,
                         self.carry_ns)
            return None
        if stream in partials:
            group = partials.finish(stream, content, length)
            if group.local is None:
                group.local = offset
                group.local_carry = self.carry_ns
        else:
            group = Group(offset, time_ns, time_str, carry=self.carry_ns)
            group.add(content, length, self.max_bytes)
        return self._from_group(stream, group, flags, attrs)
