"""Helpers for the logzio output tests: outputs wired to the local listener, records, and a
delivery harness with real dead letters, metrics and health."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from outputs.logzio import LogzioOutput
from outputs.logzio.config import LogzioConfig
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import Chunk, MemoryBuffer
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.record import Record
from shipper.retry import Backoff
from tests.logzio_listener import LogzioListener

TOKEN = "tokSECRETvalue1234567890abcdefgh"
T0 = 1_795_305_600 * 1_000_000_000  # 2026-11-22T00:00:00Z
FAST_BUFFER = BufferConfig(retry_initial_secs=0.01, retry_max_secs=0.05)


def make_output(listener: LogzioListener, metrics: Metrics | None = None, **settings: Any,
                ) -> LogzioOutput:
    """An output for ``listener``: its CA, the token it accepts, fast retries."""
    if "token_file" not in settings:
        settings.setdefault("token", TOKEN)
    settings.setdefault("buffer", FAST_BUFFER)
    config = LogzioConfig(listener=listener.url, ca_file=listener.ca_file, **settings)
    return LogzioOutput("lz", config, metrics)


def records(n: int, size: int = 0, prefix: str = "line") -> list[Record]:
    """``n`` pod records with unique messages, each padded to about ``size`` bytes."""
    out = []
    for i in range(n):
        text = f"{prefix}-{i:05d}"
        if size:
            text += " " + "x" * max(0, size - len(text) - 1)
        out.append(Record({"log": text, "stream": "stdout",
                           "kubernetes": {"namespace_name": "default", "pod_name": "web-1"}},
                          T0 + i * 1_000_000, "kube.web", f"doc-{i}"))
    return out


class Harness:
    """Delivery (the real retry loop) of chunks to one output, with dead letters on disk,
    metrics and the health that ``/readyz`` reads."""

    def __init__(self, listener: LogzioListener, state: Path, **settings: Any) -> None:
        self.metrics = Metrics()
        self.output = make_output(listener, self.metrics, **settings)
        config = self.output.config.buffer
        self.dead_letters = DeadLetterStore(state / "dead-letter", self.metrics)
        self.health = OutputHealth("lz", 300.0, has_backlog=lambda: True)
        self.buffer = MemoryBuffer("lz", config, self.metrics)
        self.delivery = Delivery(self.output, self.buffer, self.dead_letters, self.metrics,
                                 config, self.health,
                                 Backoff(config.retry_initial_secs, config.retry_max_secs))
        self._ids = 0

    def chunk(self, payloads: list[bytes]) -> Chunk:
        self._ids += 1
        chunk = Chunk(self._ids, time.monotonic())
        chunk.payloads.extend(payloads)
        chunk.nbytes = sum(map(len, payloads))
        return chunk

    async def deliver(self, recs: list[Record], timeout_secs: float = 30.0) -> None:
        """Encode and deliver until every record is delivered or dead-lettered."""
        chunk = self.chunk(self.output.encode(recs))
        await asyncio.wait_for(self.delivery.deliver(chunk), timeout_secs)

    def value(self, name: str, **labels: str) -> float:
        sample = self.metrics.registry.get_sample_value(name, {"output": "lz", **labels})
        return 0.0 if sample is None else sample

    def dead_letter_lines(self) -> list[str]:
        directory = self.dead_letters.directory
        if not directory.exists():
            return []
        return [line for path in sorted(directory.glob("*.ndjson"))
                for line in path.read_text().splitlines()]
