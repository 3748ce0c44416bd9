"""Which prefix of a file is safe: the acknowledged-prefix rule (design "Acknowledgements").

Every batch of one file covers the bytes after the previous batch; its entry records the
offset a checkpoint may take once it is safe (the batch's end, or the start of a partial
message still being assembled). Outputs may acknowledge batches out of order, so the
committed offset is the end of the LONGEST PREFIX of acknowledged entries: a later batch
being safe says nothing about an earlier one still in flight.

Each entry also carries the "time carried" at its safe end (``Decoder.carry_ns``: the time of
the last timestamped line before that offset), persisted with the committed offset so a
restart times lines without a timestamp of their own exactly as the first reading did.

Pure bookkeeping, no I/O and no clock: unit tested on its own.
"""

from __future__ import annotations

from collections import deque


class AckTracker:
    """Committed offset of one file incarnation, advanced only through acknowledged prefixes."""

    __slots__ = ("_done", "_entries", "_next", "carry", "committed")

    def __init__(self, committed: int, carry: int = 0) -> None:
        self.committed = committed
        self.carry = carry  # the time carried at ``committed``
        self._next = 0  # token of the next entry
        # (token, safe end, time carried there), oldest first
        self._entries: deque[tuple[int, int, int]] = deque()
        self._done: set[int] = set()  # acknowledged tokens not yet at the head of the queue

    @property
    def pending(self) -> int:
        """Entries not yet folded into ``committed``."""
        return len(self._entries)

    def add(self, end: int, carry: int = 0) -> int:
        """Register a batch whose safe end is ``end``; return the token to ``ack`` it with."""
        token = self._next
        self._next += 1
        self._entries.append((token, end, carry))
        return token

    def advance(self, end: int, carry: int = 0) -> bool:
        """Bytes consumed without records (skipped, or nothing to ship): safe right away."""
        return self.ack(self.add(end, carry))

    def ack(self, token: int) -> bool:
        """Mark a batch safe; return True when ``committed`` moved."""
        entries = self._entries
        if not entries or token < entries[0][0] or token >= self._next:
            return False  # unknown or already folded in
        self._done.add(token)
        moved = False
        while entries and entries[0][0] in self._done:
            head, end, carry = entries.popleft()
            self._done.discard(head)
            if end > self.committed:
                self.committed = end
                self.carry = carry
                moved = True
        return moved
