"""Acknowledgement groups: progress moves only when data is safe.

A source creates one ``AckGroup`` per emitted batch. The pipeline holds the group once per
output the batch is routed to; each output's buffer releases its hold when the records are
safe there (fsynced into a disk buffer, or delivered / dead-lettered when the buffer is in
memory). When the last hold is released the source's callback runs, and only then may the
source advance its checkpoint or answer a forward ``ack``. Nothing else writes progress.
"""

from __future__ import annotations

from collections.abc import Callable


class AckGroup:
    """Counts outstanding holds on one batch and calls ``on_safe`` exactly once at zero."""

    __slots__ = ("_done", "_on_safe", "_pending", "dropped")

    def __init__(self, on_safe: Callable[[AckGroup], None] | None = None) -> None:
        # The creator holds one reference until ``seal`` so fan-out cannot resolve it early.
        self._pending = 1
        self._on_safe = on_safe
        self._done = False
        self.dropped = 0

    @property
    def done(self) -> bool:
        return self._done

    def hold(self, n: int = 1) -> None:
        if self._done:
            raise RuntimeError("AckGroup already resolved")
        self._pending += n

    def release(self, n: int = 1) -> None:
        self._pending -= n
        if self._pending < 0:
            raise RuntimeError("AckGroup released more often than held")
        if self._pending == 0 and not self._done:
            self._done = True
            if self._on_safe is not None:
                self._on_safe(self)

    def seal(self) -> None:
        """Drop the creator's hold: called by the pipeline after fan-out."""
        self.release(1)
