"""Who holds one of the ``max_open_files`` descriptors (reliability T17: 3,000 files, a
ulimit of 1,024, fair progress).

A file without a descriptor keeps everything else in memory (offset, incomplete line, open
groups) and is watched with ``stat`` by path; it *wants* a descriptor when it has unread
bytes, has not been identified yet, or was rotated away (it must be read to its end before
the kubelet compresses it). Policy, applied every path check (about once a second):

1. Free descriptors go to wanting files: rotated ones first, then in the order they started
   waiting (FIFO, so none waits for ever).
2. If files still wait, descriptors are taken back from current files, first those idle at
   their end (longest idle first), then, for busy files, those that held theirs for at least
   ``SLICE_SECS`` (longest held first): busy files take turns, every file makes progress.

Never taken back: rotated or deleted files (a deleted file cannot be reopened; their number
is bounded by the rotation rate and ``deleted_file_timeout_secs``) and the file the read
loop is working on. Pure: no I/O, no clock; unit tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

SLICE_SECS = 1.0


class Holder(Protocol):
    """What the policy reads of a reader."""

    @property
    def attached(self) -> bool: ...

    closed: bool
    given_up: bool
    busy: bool
    eof: bool
    offset: int
    size_seen: int
    identity: str | None
    draining_since: float | None
    wanted_since: float | None
    last_data: float
    opened_at: float


def wants(reader: Holder) -> bool:
    """A reader without a descriptor that has something to do."""
    if reader.attached or reader.closed or reader.given_up:
        return False
    return (reader.identity is None or reader.draining_since is not None
            or reader.size_seen != reader.offset)


H = TypeVar("H", bound=Holder)


def plan(readers: Sequence[H], cap: int, now: float) -> tuple[list[H], list[H]]:
    """``(to_detach, to_attach)``: descriptors to take back, readers to give one to."""
    waiting = sorted((r for r in readers if wants(r)),
                     key=lambda r: (r.draining_since is None,
                                    r.wanted_since if r.wanted_since is not None else now))
    if not waiting:
        return [], []
    attached = [r for r in readers if r.attached and not r.closed]
    free = max(cap - len(attached), 0)
    short = len(waiting) - free
    detach: list[H] = []
    if short > 0:
        movable = [r for r in attached if r.draining_since is None and not r.busy]
        idle = sorted((r for r in movable if r.eof), key=lambda r: r.last_data)
        busy = sorted((r for r in movable if not r.eof and now - r.opened_at >= SLICE_SECS),
                      key=lambda r: r.opened_at)
        detach = (idle + busy)[:short]
    return detach, waiting[:free + len(detach)]
