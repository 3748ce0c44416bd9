"""Acknowledgement groups: progress moves only when data is safe.

A source creates one ``AckGroup`` per emitted batch. The pipeline holds the group once per
output the batch is routed to; each output's buffer releases its hold when the records are
safe there (fsynced into a disk buffer, or delivered / dead-lettered when the buffer is in
memory). When the last hold is released the source's callback runs, and only then may the
source advance its checkpoint or answer a forward ``ack``. Nothing else writes progress.

A batch ends in exactly one of two ways, decided in one place (``Pipeline.emit``): it reached
every buffer it was routed to, and the pipeline seals the group; or fan-out was cut
short (cancelled at the shutdown deadline while a full buffer blocked ``put``, or an
exception), and the pipeline abandons it. An abandoned group never becomes safe, even if
the buffers later release every hold they took: the part of the batch that never entered a
buffer would otherwise be acknowledged, and lost. Its records are read (or sent by the
client) again; what did reach a buffer comes back under the same ids and is answered 409.

A group is ``urgent`` when a client is blocked until it resolves (a forward request with a
``chunk`` option: the client sends nothing more until the ack). A buffer then makes it safe
as soon as it can instead of at its batching cadence: the memory buffer hands the open chunk
to the next free delivery worker, the disk buffer fsyncs soon. The guarantee does not
change (still "ack once safe"), only how long the records wait to become safe.
"""

from __future__ import annotations

from collections.abc import Callable


class AckGroup:
    """Counts outstanding holds on one batch and calls ``on_safe`` exactly once at zero."""

    __slots__ = ("_abandoned", "_done", "_on_safe", "_pending", "dropped", "urgent")

    def __init__(self, on_safe: Callable[[AckGroup], None] | None = None, *,
                 urgent: bool = False) -> None:
        # The creator holds one reference until ``seal`` so fan-out cannot resolve it early.
        self._pending = 1
        self._on_safe = on_safe
        self._done = False
        self._abandoned = False
        self.dropped = 0
        #: Someone waits for this group before sending more: buffers flush it promptly.
        self.urgent = urgent

    @property
    def done(self) -> bool:
        return self._done

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def hold(self, n: int = 1) -> None:
        if self._done:
            raise RuntimeError("AckGroup already resolved")
        self._pending += n

    def release(self, n: int = 1) -> None:
        self._pending -= n
        if self._pending < 0:
            raise RuntimeError("AckGroup released more often than held")
        if self._pending == 0 and not self._done and not self._abandoned:
            self._done = True
            if self._on_safe is not None:
                self._on_safe(self)

    def seal(self) -> None:
        """Drop the creator's hold: called by the pipeline after fan-out."""
        self.release(1)

    def abandon(self) -> None:
        """Fan-out was cut short: this group must never become safe (see the module doc).

        The creator's hold is kept, so later releases by the buffers cannot resolve it;
        abandoning a group that already resolved is a bug in the caller.
        """
        if self._done:
            raise RuntimeError("AckGroup already resolved")
        self._abandoned = True
