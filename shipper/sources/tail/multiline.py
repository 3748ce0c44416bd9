"""Joining multi-line events (stack traces) into one record, per file and per stream.

A message whose ``log`` matches the start pattern opens an event; following messages of the
same stream that do not match are appended with ``\\n``. An event is shipped when the next
start arrives, when it would exceed ``max_lines``/``max_bytes`` (the line then opens the next
event), or when the file was idle for ``flush_timeout_secs`` (the source calls ``flush``).
A message that arrives with no open event and does not match opens a head-less event, so the
continuation lines after it stay together (e.g. the start of a file whose first lines belong
to a trace begun in the previous generation, when that could not be handed over).

The event takes the first message's body, time and doc id: a re-read after a restart builds
the same record with the same id, wherever the flush happened. Flags of every joined message
are kept. Like a partial group, an open event holds the file's checkpoint at the offset where
its first message starts, so a restart re-reads the whole event.

Events are handed from a rotated file to its successor like partial groups (``adopt``), so a
trace split by rotation is still one record (beats#47336).

A rule with a ``preset`` instead of a start pattern uses ``PresetMultiline``: the preset's
state machine (``presets``) says which lines continue the open event; any other line ships
it and opens the next one, so ordinary lines stay one record each. Everything else (bounds,
flags, checkpoint, hand-over) is the same code.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from shipper.record import Record
from shipper.sources.tail.presets import LINE, PRESETS, Preset

if TYPE_CHECKING:
    from shipper.sources.tail.config import MultilineConfig


class Event:
    """One event being joined."""

    __slots__ = ("carry", "first", "handoffs", "lines", "local", "logs", "size", "state")

    def __init__(self, first: Record, offset: int, size: int, carry: int = 0) -> None:
        self.first = first
        self.local: int | None = offset  # checkpoint limit here (None: no line here yet)
        self.carry = carry  # the decoder's carried time at ``local`` (see ``decoding``)
        self.logs: list[str] = [first.body["log"]]
        self.size = size
        self.lines = 1
        self.handoffs: list[Any] = []
        self.state = LINE  # the preset's state (presets only)


def _flags(record: Record) -> list[str]:
    meta = record.body.get("shipper")
    return meta.get("flags", []) if isinstance(meta, dict) else []


def _append(event: Event, record: Record, text: str, size: int, offset: int,
            carry: int) -> None:
    event.logs.append(text)
    event.size += 1 + size
    event.lines += 1
    if event.local is None:
        event.local = offset
        event.carry = carry
    extra = _flags(record)
    if extra:
        meta = event.first.body.setdefault("shipper", {})
        known = meta.setdefault("flags", [])
        known.extend(flag for flag in extra if flag not in known)


def build(rule: MultilineConfig, done_handoffs: list[Any]) -> Multiline:
    """The joiner of one file for ``rule`` (a start pattern or a preset)."""
    if rule.preset:
        return PresetMultiline(PRESETS[rule.preset], rule.max_lines, rule.max_bytes,
                               done_handoffs)
    return Multiline(rule.start_pattern, rule.max_lines, rule.max_bytes, done_handoffs)


class Multiline:
    """Open events of one file, one per stream."""

    __slots__ = ("done_handoffs", "events", "max_bytes", "max_lines", "start")

    def __init__(self, start_pattern: str, max_lines: int, max_bytes: int,
                 done_handoffs: list[Any]) -> None:
        self.start = re.compile(start_pattern)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.events: dict[str | None, Event] = {}
        self.done_handoffs = done_handoffs  # the decoder's list: handoffs of shipped events

    def __bool__(self) -> bool:
        return bool(self.events)

    def add(self, record: Record, offset: int, carry: int = 0) -> Record | None:
        """Feed one complete message that starts at ``offset`` of this file (``carry``: the
        carried time there); return the event it finished, if any."""
        body = record.body
        text: str = body["log"]
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        stream = body.get("stream")
        event = self.events.get(stream)
        if (event is not None and self.start.match(text) is None
                and event.lines < self.max_lines and event.size + 1 + size <= self.max_bytes):
            _append(event, record, text, size, offset, carry)
            return None
        finished = self._finish(self.events.pop(stream)) if event is not None else None
        self.events[stream] = Event(record, offset, size, carry)
        return finished

    def _finish(self, event: Event) -> Record:
        record = event.first
        if event.lines > 1:
            record.body["log"] = "\n".join(event.logs)
        self.done_handoffs.extend(event.handoffs)
        return record

    def flush(self) -> list[Record]:
        """Ship every open event (file idle, closed or handed nothing to follow)."""
        events = sorted(self.events.values(), key=lambda e: e.first.time_ns)
        self.events.clear()
        return [self._finish(event) for event in events]

    def safe_offset(self, end: int) -> int:
        limits = [e.local for e in self.events.values() if e.local is not None]
        return min(end, *limits) if limits else end

    def take(self) -> dict[str | None, Event]:
        """Remove and return the open events (handed to the next generation)."""
        events, self.events = self.events, {}
        return events

    def adopt(self, stream: str | None, event: Event) -> None:
        """Continue an event of the previous generation of this file."""
        event.local = None
        self.events[stream] = event


class PresetMultiline(Multiline):
    """Joins with a preset's state machine: a line joins the open event of its stream only
    when the event's state has a rule for it (see ``presets``)."""

    __slots__ = ("preset",)

    def __init__(self, preset: Preset, max_lines: int, max_bytes: int,
                 done_handoffs: list[Any]) -> None:
        super().__init__("$^", max_lines, max_bytes, done_handoffs)
        self.preset = preset

    def add(self, record: Record, offset: int, carry: int = 0) -> Record | None:
        body = record.body
        text: str = body["log"]
        size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        stream = body.get("stream")
        event = self.events.get(stream)
        state: str | None = None
        if event is not None:
            state = self.preset.step(event.state, text)
            if (state is not None and event.lines < self.max_lines
                    and event.size + 1 + size <= self.max_bytes):
                _append(event, record, text, size, offset, carry)
                event.state = state
                return None
            finished: Record | None = self._finish(self.events.pop(stream))
        else:
            finished = None
        opened = Event(record, offset, size, carry)
        # Cut by a bound, the rest of the trace goes on in the state it had reached.
        opened.state = state if state is not None else self.preset.open(text)
        self.events[stream] = opened
        return finished
