"""A short tap excerpt for ``shipper demo``: what ``shipper tap`` would have shown.

The demo ships a finished log tree, so records start flowing the moment the agent starts,
before any HTTP client could connect. The excerpt therefore subscribes in-process, before
the agent runs, through the same ``Tap.subscribe`` and filter that ``/tap`` uses, and prints
the lines with the CLI's text format afterwards.
"""

from __future__ import annotations

from typing import TextIO

from shipper.tap.hub import Subscriber, Tap
from shipper.tap.query import TapQuery
from shipper.tap.render import text_line


class TapExcerpt:
    """Collects what one tap subscriber receives during a run; prints the first lines."""

    def __init__(self, tap: Tap | None, query: TapQuery, command: str) -> None:
        """``command``: the ``shipper tap`` command line that applies the same filter."""
        self._command = command
        self._sub: Subscriber | None = tap.subscribe(query) if tap else None

    def lines(self, limit: int) -> tuple[list[str], int]:
        """The first ``limit`` lines, and how many records matched in all."""
        if self._sub is None:
            return [], 0
        events = self._sub.drain()
        return [text_line(e) for e in events[:limit]], len(events) + self._sub.dropped

    def write(self, out: TextIO, limit: int = 8) -> None:
        lines, total = self.lines(limit)
        if self._sub is None:
            return
        out.write(f"\nLive traffic tap: {total:,} requests matched `{self._command}`; "
                  f"the first {len(lines)}:\n")
        for line in lines:
            out.write(f"  {line}\n")
