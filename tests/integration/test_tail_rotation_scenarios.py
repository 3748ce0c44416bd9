"""Rotation scenarios end to end: kubelet-style rotations at 10k lines/s, SIGKILLed agents,
a real Elasticsearch API; every sequence-numbered line must be indexed exactly once.

The writer behaves like kubelet (spec §2.4): rename ``0.log`` to ``0.log.<timestamp>``,
compress every older rotation (``.tmp`` then ``.gz``), keep at most 5 files. The agent runs
as its own process (``python -m shipper.cli run``) and is killed with SIGKILL while kubelet
keeps writing and rotating; it is restarted at once, as a DaemonSet would. Before each kill
the test waits until the agent has caught up and saved its checkpoint: data rotated AND
compressed while an agent is down and behind is lost by nature (and counted; see
``tests/integration/sources/tail``), which is not what this scenario is about.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from shipper.demo.embedded_es import free_loopback_port, wait_for_http
from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import unique_prefix

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    refresh_interval_secs: 0.5
    rotate_wait_secs: 1
    checkpoint_interval_secs: 0.2
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_format: false
    index: {index}
    buffer: {{chunk_limit_records: 5000, flush_interval_secs: 0.3, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:{port}"}}
shutdown_deadline_secs: 10
"""
KEEP = 5  # kubelet containerLogMaxFiles
RATE = 10_000  # lines per second while writing
PAD = "x" * 48


class Kubelet:
    """Writes sequence-numbered CRI lines into one container's log and rotates it."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "var/log/pods/default_web-0_uid/app"
        self.dir.mkdir(parents=True)
        self.current = self.dir / "0.log"
        self.current.touch()
        self.links = root / "var/log/containers"
        self.links.mkdir(parents=True)
        (self.links / f"web-0_default_app-{'a' * 64}.log").symlink_to(self.current)
        self.seq = 0
        self.rotations = 0

    def write(self, count: int) -> None:
        """``count`` lines at RATE lines/s (1,000-line bursts, paced)."""
        started = time.monotonic()
        written = 0
        with open(self.current, "a") as handle:
            while written < count:
                burst = min(1000, count - written)
                handle.write("".join(
                    f"2024-01-01T00:00:{(self.seq + i) // 100_000 % 60:02d}."
                    f"{(self.seq + i) % 1_000_000_000:09d}Z stdout F seq={self.seq + i} {PAD}\n"
                    for i in range(burst)))
                handle.flush()
                self.seq += burst
                written += burst
                ahead = written / RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def rotate(self) -> None:
        """kubelet's containerLogManager.rotateLog, in its order."""
        rotated = sorted(p for p in self.dir.iterdir() if p.name.startswith("0.log."))
        while len(rotated) > KEEP - 2:
            rotated.pop(0).unlink()
        for path in rotated:
            if path.suffix != ".gz":
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
                os.rename(tmp, path.with_name(path.name + ".gz"))
                path.unlink()
        self.rotations += 1
        os.rename(self.current, self.dir / f"0.log.20240101-{self.rotations:06d}")
        self.current.touch()


class Agent:
    """The agent process, started and killed like a DaemonSet pod."""

    def __init__(self, tmp: Path, logs: Path, url: str) -> None:
        self.port = free_loopback_port()
        self.state = tmp / "state"
        self.config = tmp / "shipper.yaml"
        self.index = unique_prefix()
        self.config.write_text(CONFIG.format(state=self.state, logs=logs, url=url,
                                             index=self.index, port=self.port))
        self.log = tmp / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shipper.cli", "run", "-c", str(self.config)],
            stderr=open(self.log, "ab"), stdout=subprocess.DEVNULL)
        wait_for_http(f"http://127.0.0.1:{self.port}/healthz", 60, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0

    def events(self, name: str) -> list[dict[str, object]]:
        lines = self.log.read_bytes().splitlines() if self.log.exists() else []
        return [doc for doc in (orjson.loads(x) for x in lines if x.startswith(b"{"))
                if doc.get("event") == name]


def indexed(es: SearchClient, index: str) -> int:
    es.refresh(index)
    return es.count(index)


def caught_up(es: SearchClient, agent: Agent, kubelet: Kubelet, timeout: float = 120) -> None:
    """Every line written so far is indexed and the current file's checkpoint is saved."""
    deadline = time.monotonic() + timeout
    size = kubelet.current.stat().st_size
    inode = kubelet.current.stat().st_ino
    while True:
        positions = agent.state / "containers" / "positions.json"
        saved = orjson.loads(positions.read_bytes())["files"] if positions.exists() else {}
        if (indexed(es, agent.index) >= kubelet.seq
                and any(e["ino"] == inode and e["offset"] == size for e in saved.values())):
            return
        assert time.monotonic() < deadline, f"agent did not catch up: {indexed(es, agent.index)}"
        time.sleep(0.2)


def every_sequence_number(es: SearchClient, index: str) -> list[int]:
    es.refresh(index)
    page = es.request("POST", f"/{index}/_search?scroll=1m",
                      {"size": 10_000, "sort": ["_doc"], "_source": ["log"]})
    seqs: list[int] = []
    while page["hits"]["hits"]:
        seqs += [int(h["_source"]["log"].split()[0][4:]) for h in page["hits"]["hits"]]
        page = es.request("POST", "/_search/scroll",
                          {"scroll": "1m", "scroll_id": page["_scroll_id"]})
    return sorted(seqs)


def run_scenario(tmp: Path, url: str, per_file: int, kills: int) -> None:
    kubelet = Kubelet(tmp / "node")
    agent = Agent(tmp, kubelet.links, url)
    es = SearchClient(url)
    agent.start()
    try:
        for _ in range(2):  # 2 rotations under load while the agent runs
            kubelet.write(per_file)
            kubelet.rotate()
        kubelet.write(per_file // 2)
        for _ in range(kills):
            caught_up(es, agent, kubelet)
            agent.kill()
            kubelet.write(per_file // 2)  # the agent is down: kubelet writes and rotates
            kubelet.rotate()
            kubelet.write(per_file // 4)
            agent.start()  # the DaemonSet restarts it at once
            kubelet.write(per_file // 4)
        while kubelet.rotations < 5:
            kubelet.rotate()
            kubelet.write(per_file // 4)
        caught_up(es, agent, kubelet)
    finally:
        agent.stop()
    assert every_sequence_number(es, agent.index) == list(range(kubelet.seq))
    assert kubelet.rotations >= 5
    assert agent.events("tail_bytes_lost") == []


def test_five_rotations_at_10k_lines_per_second_with_two_sigkills_index_every_line_once(
        es_url: str, tmp_path: Path) -> None:
    run_scenario(tmp_path, es_url, per_file=5000, kills=2)


@pytest.mark.slow
def test_long_rotation_storm_with_repeated_sigkills(es_url: str, tmp_path: Path) -> None:
    run_scenario(tmp_path, es_url, per_file=40_000, kills=6)
