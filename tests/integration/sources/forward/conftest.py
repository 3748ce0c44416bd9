"""Helpers for forward server tests: a recording emit, a running source, certificates, and
the real Node.js client (``fluent-logger`` from npm) installed once per session."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trustme

from shipper.metrics import Metrics
from shipper.record import Batch, Record
from shipper.sources.forward import ForwardConfig, ForwardSource

REPO = Path(__file__).resolve().parents[4]
NPM_CACHE = REPO / ".cache" / "npm-fluent"
NPM_PACKAGE = "fluent-logger@3"


class Collector:
    """A fake ``emit`` that keeps every batch and decides when it becomes safe.

    With ``auto_ack`` a batch is safe as soon as it is emitted (what a fast output does),
    or ``ack_delay`` seconds later (what a real output does);
    otherwise ``ack_all`` resolves what arrived so far. ``gate`` cleared makes emit block, like
    full output buffers.
    """

    def __init__(self, auto_ack: bool = True, ack_delay: float = 0.0) -> None:
        self.auto_ack = auto_ack
        self.ack_delay = ack_delay
        self.batches: list[Batch] = []
        self.unacked: list[Batch] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch: Batch) -> None:
        await self.gate.wait()
        self.batches.append(batch)
        if batch.ack is not None:
            batch.ack.hold()  # the "buffer" holds it until it is safe
            batch.ack.seal()
            self.unacked.append(batch)
        if self.auto_ack and self.ack_delay:
            asyncio.get_running_loop().call_later(self.ack_delay, self.ack_all)
        elif self.auto_ack:
            self.ack_all()

    def ack_all(self) -> None:
        pending, self.unacked = self.unacked, []
        for batch in pending:
            assert batch.ack is not None
            batch.ack.release()

    @property
    def records(self) -> list[Record]:
        return [r for b in self.batches for r in b.records]


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0,
                   what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Running:
    source: ForwardSource
    collector: Collector
    metrics: Metrics
    task: asyncio.Task[None]  # the source's run(): must never end on its own

    @property
    def port(self) -> int:
        assert self.source.port is not None
        return self.source.port

    def counter(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"source": "fwd", **labels})
        return value or 0.0


@contextlib.asynccontextmanager
async def running(collector: Collector | None = None, **settings: Any,
                  ) -> AsyncIterator[Running]:
    """A forward source on a free loopback port, stopped and closed on exit."""
    settings.setdefault("listen", "127.0.0.1:0")
    metrics = Metrics()
    source = ForwardSource("fwd", ForwardConfig(**settings), metrics)
    collector = collector or Collector()
    task = asyncio.create_task(source.run(collector))
    try:
        async with asyncio.timeout(10):
            await source.ready.wait()
        yield Running(source, collector, metrics, task)
    finally:
        await source.stop()
        async with asyncio.timeout(10):
            await task
        await source.close()


async def read_replies(reader: asyncio.StreamReader, count: int,
                       timeout: float = 10.0) -> list[Any]:
    """The next ``count`` msgpack objects the server sends."""
    unpacker = msgpack.Unpacker(raw=False)
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            data = await reader.read(4096)
            if not data:
                break
            unpacker.feed(data)
            out.extend(unpacker)
    return out


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throwaway CA with a server certificate for localhost and a client certificate."""
    root = tmp_path_factory.mktemp("forward-tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client.example")
    paths = Certs(root / "ca.pem", root / "server.pem", root / "server.key",
                  root / "client.pem", root / "client.key")
    ca.cert_pem.write_to_path(str(paths.ca))
    server.cert_chain_pems[0].write_to_path(str(paths.server_cert))
    server.private_key_pem.write_to_path(str(paths.server_key))
    client.cert_chain_pems[0].write_to_path(str(paths.client_cert))
    client.private_key_pem.write_to_path(str(paths.client_key))
    return paths


@pytest.fixture(scope="session")
def node_fluent_logger() -> Iterator[Path]:
    """The directory holding ``node_modules/fluent-logger``, installed with the machine's npm
    into a cache inside the repository. Missing node or npm fails loudly: these tests exist
    to prove interoperability with a real client and must not pass without one."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are required for the fluent-logger (npm) interop tests; "
                    "install Node.js (apt-get install nodejs npm)")
    marker = NPM_CACHE / "node_modules" / "fluent-logger" / "package.json"
    if not marker.exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        (NPM_CACHE / "package.json").write_text(json.dumps({"private": True}))
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-save", NPM_PACKAGE],
            cwd=NPM_CACHE, capture_output=True, text=True, timeout=300,
            env={**os.environ, "npm_config_update_notifier": "false"}, check=False)
        if result.returncode != 0 or not marker.exists():
            pytest.fail(f"npm install {NPM_PACKAGE} failed:\n{result.stdout}\n{result.stderr}")
    yield NPM_CACHE


async def run_node(cache: Path, script: str, timeout: float = 60.0) -> str:
    """Run a Node.js script with the cached packages; returns stdout, fails on exit != 0."""
    proc = await asyncio.create_subprocess_exec(
        "node", "-e", script, cwd=cache, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(cache / "node_modules")})
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("node client did not finish in time") from None
    if proc.returncode != 0:
        raise AssertionError(f"node client failed ({proc.returncode}):\n{out.decode()}\n"
                             f"{err.decode()}")
    return out.decode()
