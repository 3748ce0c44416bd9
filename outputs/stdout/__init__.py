"""The ``stdout`` output: records as JSON lines on standard output, for debugging.

Each payload is the record body serialized once, newline included, so a send is a single
write. Writing may block when stdout is a full pipe, so it runs in a worker thread; a write
that fails (closed pipe) is reported as RETRY like any unreachable destination.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

from outputs.stdout.config import StdoutConfig
from shipper.metrics import Metrics
from shipper.payloads import describe_json, json_lines
from shipper.protocols import ItemError, Outcome, Status
from shipper.record import Record

__all__ = ["StdoutConfig", "StdoutOutput"]


class StdoutOutput:
    """Implements ``shipper.protocols.Output`` by printing."""

    def __init__(self, name: str, config: StdoutConfig, metrics: Metrics | None = None,
                 *, stream: BinaryIO | None = None) -> None:
        self.name = name
        self.config = config
        self._metrics = metrics
        self._stream = stream

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        return json_lines(records, newline=True)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        if not payloads:
            return Outcome([])
        data = b"".join(payloads)
        try:
            await asyncio.to_thread(self._write, data)
        except (OSError, ValueError) as exc:  # closed pipe or stream
            return Outcome.all(len(payloads), Status.RETRY,
                               ItemError(0, "write_error", str(exc)))
        return Outcome.all(len(payloads), Status.DELIVERED)

    def _write(self, data: bytes) -> None:
        stream = self._stream if self._stream is not None else sys.stdout.buffer
        stream.write(data)
        stream.flush()

    def describe(self, payload: bytes) -> dict[str, Any]:
        return describe_json(payload)

    async def close(self) -> None:
        """Nothing to release; stdout belongs to the process."""
