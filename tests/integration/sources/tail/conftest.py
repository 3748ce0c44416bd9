"""Helpers for tail integration tests: a fake emit, bounded waits, a running source."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.metrics import Metrics
from shipper.record import Batch, Record
from shipper.sources.tail import TailConfig, TailSource

CID = "0123456789abcdef" * 4
FAST = {"refresh_interval_secs": 0.2, "rotate_wait_secs": 0.3, "checkpoint_interval_secs": 0.05,
        "partial_flush_secs": 0.3}


def cri(i: int, stream: str = "stdout", tag: str = "F", text: str | None = None) -> str:
    """One CRI line (with LF) whose content names its sequence number."""
    content = f"line {i}" if text is None else text
    return f"2024-01-01T12:00:00.{i:09d}Z {stream} {tag} {content}\n"


def docker(i: int, stream: str = "stdout") -> str:
    body = {"log": f"line {i}\n", "stream": stream, "time": f"2024-01-01T12:00:00.{i:09d}Z"}
    return orjson.dumps(body).decode() + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


class Collector:
    """A fake ``emit``: keeps every batch; acknowledges at once unless told otherwise.

    ``gate`` (when cleared) makes ``emit`` block, exactly like full output buffers.
    """

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.batches: list[Batch] = []
        self.attempts = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch: Batch) -> None:
        self.attempts += 1
        await self.gate.wait()
        self.batches.append(batch)
        if self.auto_ack:
            self.ack(batch)

    @staticmethod
    def ack(batch: Batch) -> None:
        assert batch.ack is not None
        batch.ack.seal()

    @property
    def records(self) -> list[Record]:
        return [r for b in self.batches for r in b.records]

    def logs(self, tag_contains: str = "") -> list[str]:
        return [r.body["log"] for r in self.records if tag_contains in r.tag]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` every 20 ms; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def positions(state: Path, name: str = "tail") -> dict[str, Any]:
    path = state / name / "positions.json"
    return orjson.loads(path.read_bytes())["files"] if path.exists() else {}


class Tail:
    """Builds and runs TailSources over one temporary node layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.containers = root / "var" / "log" / "containers"
        self.pods = root / "var" / "log" / "pods"
        self.containers.mkdir(parents=True)
        self.pods.mkdir(parents=True)
        self.metrics = Metrics()
        self.source: TailSource | None = None

    def config(self, **overrides: Any) -> TailConfig:
        settings = {"include": [str(self.containers / "*.log")], **FAST, **overrides}
        return TailConfig(**settings)

    def pod_file(self, pod: str = "web", ns: str = "default", container: str = "nginx",
                 cid: str = CID) -> tuple[Path, Path]:
        """kubelet layout: the real file under pods/ and its symlink under containers/."""
        directory = self.pods / f"{ns}_{pod}_5f2b7c1e-0000-4a57-9d52-0c3f1e2d9b11" / container
        directory.mkdir(parents=True, exist_ok=True)
        real = directory / "0.log"
        real.touch()
        link = self.containers / f"{pod}_{ns}_{container}-{cid}.log"
        link.symlink_to(real)
        return real, link

    @contextlib.asynccontextmanager
    async def running(self, collector: Collector, **overrides: Any) -> AsyncIterator[TailSource]:
        self.source = TailSource("tail", self.config(**overrides), self.state, self.metrics)
        task = asyncio.create_task(self.source.run(collector))
        try:
            yield self.source
        finally:
            await asyncio.wait_for(self.source.stop(), 5)
            collector.gate.set()  # let a blocked emit return so run() can finish
            await asyncio.wait_for(task, 5)


@pytest.fixture
def tail(tmp_path: Path) -> Tail:
    return Tail(tmp_path)


def rotate(real: Path, stamp: str) -> Path:
    """kubelet's rename rotation: ``0.log`` -> ``0.log.<stamp>``, a new empty ``0.log``."""
    rotated = real.with_name(f"{real.name}.{stamp}")
    os.rename(real, rotated)
    real.touch()
    return rotated


def compress(path: Path) -> Path:
    """kubelet's compression of an older rotation: ``.tmp``, rename to ``.gz``, delete."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(path.read_bytes()))
    gz = path.with_name(path.name + ".gz")
    os.rename(tmp, gz)
    path.unlink()
    return gz


def lines_of(records: list[Record]) -> list[str]:
    return [r.body["log"] for r in records]
