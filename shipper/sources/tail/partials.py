"""Reassembly of messages split by the runtime into several physical lines (spec §2.2, §2.3).

containerd/CRI-O write a long line as ``P`` pieces closed by an ``F`` piece; Docker writes
16 KiB pieces whose ``log`` lacks the trailing LF. stdout and stderr interleave in one file,
so there is one open group per stream. A group keeps the offset and timestamp of its FIRST
piece: the record's doc id and time then do not depend on how the message was split.

Memory is bounded: a group stores at most ``max_bytes`` of content and only counts the rest,
so a runaway line costs ``max_bytes``, not its length; the finished record is cut at a UTF-8
boundary and flagged.

The start offset of the oldest open group is the furthest a checkpoint may go: a restart
must re-read the whole group, never resume in its middle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """Cut ``data`` to at most ``limit`` bytes and drop a character left incomplete by the cut.

    Also right when ``data`` was already cut at ``limit`` elsewhere (pieces stored up to the
    cap): the tail is checked even when ``len(data) == limit``. Invalid sequences elsewhere
    are left alone; decoding flags them.
    """
    cut = data[:limit]
    lead = len(cut) - 1
    while lead >= 0 and len(cut) - lead < 4 and (cut[lead] & 0xC0) == 0x80:
        lead -= 1
    if lead >= 0 and cut[lead] >= 0xC0:
        need = 2 if cut[lead] < 0xE0 else 3 if cut[lead] < 0xF0 else 4
        if len(cut) - lead < need:
            return cut[:lead]
    return cut


@dataclass(slots=True)
class Group:
    """One message being reassembled.

    ``offset`` names the message (doc id) in the file of ``identity`` (None: the decoder's
    own file). A group handed over from a rotated file to its successor keeps both and
    carries the ``handoffs`` to acknowledge once it is shipped; ``local`` is where its first
    piece in the CURRENT file starts (None: no piece here yet), the furthest a checkpoint
    of this file may go while the group is open. ``flags`` collects per-piece problems
    (``invalid_utf8`` of one Docker piece) so joining never loses them.
    """

    offset: int
    time_ns: int
    time_str: str
    pieces: list[bytes] = field(default_factory=list)
    stored: int = 0
    total: int = 0
    flags: list[str] | None = None
    identity: str | None = None
    handoffs: list[Any] | None = None
    local: int | None = -1  # -1: same as ``offset``
    # The decoder's carried time before the first piece (``carry``), and before the first
    # piece in the current file (``local_carry``): a checkpoint held here stores it.
    carry: int = 0
    local_carry: int = 0

    def add(self, piece: bytes, length: int, max_bytes: int) -> None:
        """Append a piece; ``length`` is its real size (it may arrive already cut)."""
        self.total += length
        room = max_bytes - self.stored
        if room > 0:
            kept = piece if len(piece) <= room else piece[:room]
            self.pieces.append(kept)
            self.stored += len(kept)

    def content(self, max_bytes: int) -> tuple[bytes, bool]:
        """Joined content and whether it was cut to ``max_bytes``."""
        joined = b"".join(self.pieces)
        if self.total > max_bytes:
            return truncate_utf8(joined, max_bytes), True
        return joined, False


class Partials:
    """Open groups, one per stream."""

    __slots__ = ("groups", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.groups: dict[str, Group] = {}  # stream -> open group (read it, don't edit it)

    def __bool__(self) -> bool:
        return bool(self.groups)

    def __contains__(self, stream: str) -> bool:
        return stream in self.groups

    def add(self, stream: str, offset: int, time_ns: int, time_str: str, piece: bytes,
            length: int | None = None, flags: list[str] | None = None,
            carry: int = 0) -> None:
        """Add a non-final piece, opening the stream's group if needed (``carry``: the
        decoder's carried time before this piece)."""
        group = self.groups.get(stream)
        if group is None:
            group = self.groups[stream] = Group(offset, time_ns, time_str, carry=carry)
        elif group.local is None:  # handed over: its first piece in this file
            group.local = offset
            group.local_carry = carry
        group.add(piece, len(piece) if length is None else length, self.max_bytes)
        if flags:
            known = group.flags or []
            group.flags = known + [flag for flag in flags if flag not in known]

    def finish(self, stream: str, piece: bytes, length: int | None = None) -> Group:
        """Close the stream's group with its final piece and return it (it must exist)."""
        group = self.groups.pop(stream)
        group.add(piece, len(piece) if length is None else length, self.max_bytes)
        return group

    def drain(self) -> list[tuple[str, Group]]:
        """Remove and return every open group, oldest first (file closed or idle too long)."""
        groups = sorted(self.groups.items(), key=lambda item: item[1].offset)
        self.groups.clear()
        return groups

    def safe_offset(self, end: int) -> int:
        """How far a checkpoint may go when everything before ``end`` has been consumed."""
        if not self.groups:
            return end
        return min(end, *(g.offset if g.local == -1 else end if g.local is None else g.local
                          for g in self.groups.values()))

    def adopt(self, stream: str, group: Group) -> None:
        """Take over a group of the previous generation of this file (see ``Group``)."""
        group.local = None
        self.groups[stream] = group
