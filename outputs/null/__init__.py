"""The ``null`` output: encode each record, then throw it away and report it delivered.

Encoding is not skipped on purpose. Records enter an output's buffer encoded (the buffer
counts exact bytes and the disk buffer persists them), so a ``null`` output that returned
empty payloads would make a pipeline look cheaper than any real destination: the benchmark's
"discard" row is meant to measure tail, parse, enrichment *and* encoding. Each payload is the
record body as JSON, with the same fallback as ``stdout`` for values JSON cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outputs.null.config import NullConfig
from shipper.metrics import Metrics
from shipper.payloads import describe_json, json_lines
from shipper.protocols import Outcome, Status
from shipper.record import Record

__all__ = ["NullConfig", "NullOutput"]


class NullOutput:
    """Implements ``shipper.protocols.Output`` by discarding; every send succeeds."""

    def __init__(self, name: str, config: NullConfig, metrics: Metrics | None = None) -> None:
        self.name = name
        self.config = config
        self._metrics = metrics
        self.discarded = 0  # payloads thrown away since start, for tests and debugging

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        return json_lines(records)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        self.discarded += len(payloads)
        return Outcome.all(len(payloads), Status.DELIVERED)

    def describe(self, payload: bytes) -> dict[str, Any]:
        """Never reached in practice (nothing is rejected), but kept total like every output."""
        return describe_json(payload)

    async def close(self) -> None:
        """Nothing to release."""
