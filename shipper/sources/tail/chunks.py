"""What a reader hands out: chunks of records, handoffs between generations, read outcomes.

Shared by ``reader`` (which makes them), ``readloop`` (which emits and acknowledges them)
and ``files`` (which reacts to truncations).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipper.record import Record
from shipper.sources.tail.multiline import Event
from shipper.sources.tail.partials import Group
from shipper.sources.tail.progress import AckTracker

if TYPE_CHECKING:
    from shipper.sources.tail.reader import FileReader


class Identified(enum.Enum):
    NOT_YET = 0  # first line incomplete: try again later
    READY = 1
    TRUNCATED = 2  # ready, but the saved offset was past the end: restarted at 0


class Truncated(Exception):
    """The file shrank below the read offset, or its head changed (truncated in place)."""


@dataclass(slots=True, eq=False)
class Handoff:
    """Open messages a rotated file handed to its successor: once all ``remaining`` are
    shipped and safe, the rotated file's ``token`` is acknowledged."""

    reader: FileReader
    tracker: AckTracker
    token: int
    remaining: int


@dataclass(slots=True)
class Chunk:
    """Output of one read: records to emit, the offset safe once they are acknowledged and
    the carried time there (``Decoder.safe_point``)."""

    records: list[Record]
    safe_offset: int
    handoffs: list[Handoff] = field(default_factory=list)
    carry: int = 0


@dataclass(slots=True)
class Inherited:
    """Messages handed over before this reader had a decoder (first line not complete)."""

    groups: dict[str, Group]
    events: dict[str | None, Event]
    handoff: Handoff
