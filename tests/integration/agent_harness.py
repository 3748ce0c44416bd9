"""Helpers for tests that run the whole agent against a real Elasticsearch API."""

from __future__ import annotations

import asyncio
import time
import urllib.request
import uuid
from pathlib import Path

from shipper.app import Agent, parse_agent_config
from shipper.config.model import AgentConfig
from shipper.demo.manifest import Manifest

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.5
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{chunk_limit_records: 500, flush_interval_secs: 0.2, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:{telemetry}"}}
shutdown_deadline_secs: 10
"""


class HeldBackFiles:
    """The second half of a generated node's log files, kept out of the tailed directory.

    A test that restarts or kills an agent "in the middle of the stream" releases them after
    the restart, so the second run has work however quickly the first one finished.
    """

    def __init__(self, root: Path, manifest: Manifest, held: Path):
        later = manifest.files[len(manifest.files) // 2:]
        self.tailed = root / Path(later[0].symlink).parent
        self.held = held
        held.mkdir()
        for entry in later:
            (root / entry.symlink).rename(held / Path(entry.symlink).name)
        #: Records in the files the first run can see.
        self.first_part = manifest.total_records - sum(entry.records for entry in later)

    def release(self) -> None:
        for link in self.held.iterdir():
            link.rename(self.tailed / link.name)


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


def config_text(state: Path, logs: Path, url: str, prefix: str, telemetry: int = 0) -> str:
    return CONFIG.format(state=state, logs=logs, url=url, prefix=prefix, telemetry=telemetry)


def load(text: str) -> AgentConfig:
    return parse_agent_config(text, file="test.yaml")


def settled(agent: Agent, output: str = "es") -> float:
    return agent.settled_records(output)


async def run_until_settled(agent: Agent, expected: int, timeout_secs: float = 120.0) -> None:
    """Run the agent until ``expected`` records are settled, then stop it (SIGTERM path)."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    deadline = time.monotonic() + timeout_secs
    try:
        while settled(agent) < expected:
            if task.done():
                task.result()
                raise AssertionError("agent stopped before every record was settled")
            if time.monotonic() > deadline:
                raise AssertionError(f"only {settled(agent)}/{expected} settled in time")
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def metrics_value(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))
