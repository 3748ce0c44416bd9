"""The contracts between sources, filters, buffers and outputs (design.md, "The shape").

Outputs make exactly one attempt per ``send`` and report a status per payload; only
``shipper.delivery`` sleeps and retries. Outputs encode records once, when they enter the
output's buffer, so the buffer can measure exact bytes and the disk buffer can persist them
as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from shipper.record import Batch, Record

Emit = Callable[[Batch], Awaitable[None]]


class Source(Protocol):
    name: str

    async def run(self, emit: Emit) -> None:
        """Read until ``stop`` is called; ``await emit(batch)`` blocks while buffers are full."""

    async def stop(self) -> None:
        """Stop reading new data; persist progress already acknowledged."""

    async def close(self) -> None:
        """After the outputs drained: persist the progress acknowledged since ``stop``."""


@runtime_checkable
class MultilineHints(Protocol):
    """Per-pod multiline choices, asked by the tail source when it opens a file.

    The pod annotations are watched by a filter (kubernetes_metadata), but joining happens
    in the tail, per file, before records reach any filter; so the agent hands a filter that
    can answer to the tail sources through this protocol (sources and filters never import
    each other). Called on the event loop only, like the filter's cache it reads.
    """

    def multiline_hint(self, namespace: str, pod: str, container: str) -> str | None:
        """The preset named by the pod's annotation for this container (the per-container
        key wins), None when the pod is unknown or has no such annotation."""


class Filter(Protocol):
    """A filter may also define ``async start()`` and ``async close()`` (optional, so not
    part of this protocol): the agent awaits ``start`` before any source reads and ``close``
    after the sources stopped, for background work such as the Kubernetes metadata watch."""

    def process(self, records: list[Record]) -> list[Record]:
        """Synchronous, no I/O. Must never drop a record by failing."""


class Status(enum.IntEnum):
    DELIVERED = 0
    RETRY = 1
    REJECTED = 2


@dataclass(slots=True)
class ItemError:
    """Why one payload was not delivered: HTTP-like status, error type and reason."""

    status: int
    type: str
    reason: str


@dataclass(slots=True)
class Outcome:
    """Result of one attempt: ``statuses[i]`` belongs to ``payloads[i]`` of that attempt."""

    statuses: list[Status]
    errors: dict[int, ItemError] = field(default_factory=dict)
    retry_after: float | None = None
    duplicates: int = 0
    http_status: int | None = None

    @classmethod
    def all(cls, n: int, status: Status, error: ItemError | None = None,
            retry_after: float | None = None, http_status: int | None = None) -> Outcome:
        errors = {i: error for i in range(n)} if error is not None else {}
        return cls([status] * n, errors, retry_after, 0, http_status)


class Output(Protocol):
    name: str

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        """Serialize records for this output, one payload per record, in order."""

    async def start(self) -> None:
        """Connect, detect the server, install templates. Raises OutputError."""

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        """One attempt to deliver these payloads."""

    def describe(self, payload: bytes) -> dict[str, Any]:
        """Decode a payload for the dead-letter store: the original record and its target."""

    async def close(self) -> None: ...
