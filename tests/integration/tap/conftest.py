"""Agents with the tap on, shipping to the real Elasticsearch, and raw /tap clients.

The tap is live, not a replay: a test starts the agent on an empty log directory, connects
its subscribers, waits until the agent counts them, and only then links the log files in.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from shipper.app import Agent
from tests.integration.agent_harness import load, settled, unique_prefix

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.2
filters:
  envoy:
    type: envoy_access_log
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{chunk_limit_records: 500, flush_interval_secs: 0.2, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:0", tap: {{enabled: true, queue_records: {queue}}}}}
shutdown_deadline_secs: 10
"""


class RunningAgent:
    """An agent task on the test's loop, watching ``root/var/log/containers``."""

    def __init__(self, root: Path, es_url: str, queue_records: int) -> None:
        self.root = root
        self.logs = root / "var" / "log" / "containers"
        self.logs.mkdir(parents=True)
        self.prefix = unique_prefix()
        self.agent = Agent(load(CONFIG.format(state=root / "state", logs=self.logs, url=es_url,
                                              prefix=self.prefix, queue=queue_records)))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.agent.telemetry.port}"

    def sample(self, name: str, **labels: str) -> float:
        value = self.agent.metrics.registry.get_sample_value(name, labels or None)
        return 0.0 if value is None else value

    async def start(self) -> None:
        self._task = asyncio.create_task(self.agent.run(self._stop))
        await until(lambda: self.agent.telemetry.port != 0, "telemetry listening")

    async def wait_settled(self, expected: int, timeout_secs: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_secs
        while settled(self.agent) < expected:
            assert self._task is not None and not self._task.done(), "agent stopped"
            assert time.monotonic() < deadline, f"{settled(self.agent)}/{expected} settled"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)


async def until(condition: Callable[[], bool], what: str, timeout_secs: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def start_agent(tmp_path: Path, es_url: str,
                      ) -> AsyncIterator[Callable[..., Awaitable[RunningAgent]]]:
    agents: list[RunningAgent] = []

    async def start(name: str = "node", queue_records: int = 1000) -> RunningAgent:
        agent = RunningAgent(tmp_path / name, es_url, queue_records)
        await agent.start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        await agent.stop()


class StreamReader:
    """A /tap client in a thread that reads everything until the agent ends the stream."""

    def __init__(self, port: int, query: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(f"GET /tap?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        self.events: list[dict[str, Any]] = []
        self.clean_end = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        data = b""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        while body:
            size_text, _, rest = body.partition(b"\r\n")
            size = int(size_text, 16)
            if size == 0:
                self.clean_end = True
                break
            self.events += [orjson.loads(line) for line in rest[:size].splitlines()
                            if line.strip()]
            body = rest[size + 2:]

    def join(self) -> list[dict[str, Any]]:
        self._thread.join(30)
        assert not self._thread.is_alive(), "stream did not end"
        self.sock.close()
        return self.events


def link_tree(generated: Path, watched: Path) -> None:
    """Make the generated container logs appear in the watched directory."""
    for link in sorted((generated / "var" / "log" / "containers").iterdir()):
        (watched / link.name).symlink_to(link.resolve())
