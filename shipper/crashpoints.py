"""Named crash points: make the agent die at one exact step, so tests can prove recovery.

``SHIPPER_CRASHPOINT=<name>`` (or ``<name>:<n>`` for the n-th time the step is reached) makes
the process call ``os._exit(137)`` — the exit status of a SIGKILL — right there: no
``finally`` blocks, no flushing, no atexit handlers, exactly like a kill or an OOM kill at
that instant. The points sit between the steps whose order the delivery guarantee depends on
(write → fsync → acknowledge → checkpoint; send → settle → delete), so a test can kill the
agent in every window and check that nothing is lost and nothing is indexed twice.

Unset (production), ``crashpoint()`` is one global lookup and a comparison.
"""

from __future__ import annotations

import os

ENV = "SHIPPER_CRASHPOINT"
EXIT_STATUS = 137

#: Every point, with the window it opens. A name not listed here is a programming error.
POINTS: dict[str, str] = {
    "buffer_after_create": "a new disk buffer segment exists, its directory entry is not fsynced",
    "buffer_after_write": "records are written to the disk buffer, not yet fsynced",
    "buffer_after_fsync": "records are fsynced, their acknowledgements not yet released",
    "checkpoint_after_write": "the tail positions file was replaced (the checkpoint moved)",
    "delivery_after_send": "the output accepted a chunk, the buffer has not settled it",
    "buffer_before_delete": "a chunk is being settled, its segment file still exists",
    "buffer_after_delete": "a settled segment is unlinked, the directory not yet fsynced",
    "buffer_salvage_moved": "a damaged segment is in quarantine, its salvaged copy not in place",
}


def _parse(value: str | None) -> tuple[str, int] | None:
    """``name`` or ``name:n`` → (name, n); raises ValueError for an unknown name."""
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in POINTS:
        raise ValueError(f"{ENV}={value!r}: unknown crash point; known: {', '.join(POINTS)}")
    n = int(count) if count else 1
    if n < 1:
        raise ValueError(f"{ENV}={value!r}: the count must be at least 1")
    return name, n


_armed = _parse(os.environ.get(ENV))
_hits = 0


def arm(value: str | None) -> None:
    """Arm (or with None disarm) a crash point in this process; used by tests."""
    global _armed, _hits
    _armed = _parse(value)
    _hits = 0


def crashpoint(name: str) -> None:
    """Exit the process at once if ``name`` is the armed point (and its count is reached)."""
    global _hits
    armed = _armed
    if armed is None or armed[0] != name:
        return
    _hits += 1
    if _hits < armed[1]:
        return
    # One raw line on stderr so a test can tell the point was really reached.
    os.write(2, f'{{"event":"crashpoint","point":"{name}","hit":{_hits}}}\n'.encode())
    os._exit(EXIT_STATUS)
