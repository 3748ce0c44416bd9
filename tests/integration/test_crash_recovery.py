"""SIGKILL at every crash point and at random times: 0 missing, 0 duplicates in the index.

The agent runs as a real process with a disk buffer against the real Elasticsearch API of
the test session, shipping sequence-numbered lines. Each run is killed at a named step
(``SHIPPER_CRASHPOINT``) or by SIGKILL at a random moment and restarted on the same state;
a last run drains and stops with SIGTERM. The index must then hold every line exactly once.

The buffer limit is kept small (256 KiB) so the tail keeps reading while the agent is
killed again and again: every window — written not fsynced, fsynced not acknowledged,
checkpointed not delivered, delivered not settled, settled not deleted — meets live data.
Elasticsearch is reached through a fault proxy that holds every answer back a little: the
server keeps up with less than the tail reads, so the buffer stays full while the agent is
killed. That the buffer, not the tail, carries acknowledged records across a kill is shown
on its own: with Elasticsearch down the tail checkpoints every line once it is fsynced into
the buffer, the agent is killed, and after the restart every line arrives although the tail
reads none of them again.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shipper.crashpoints import EXIT_STATUS, POINTS
from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from tests.faultproxy import FaultProxy
from tests.integration.agent_harness import unique_prefix
from tests.integration.buffer.agent_proc import (
    DAY,
    crash_lines,
    expected_markers,
    indexed_markers,
    kill,
    metric,
    start,
    stop,
    wait_for_count,
    wait_healthy,
    write_config,
)

#: One pass through every crash point, each after a few hits so data is in flight. The
#: salvage point needs a damaged segment; the test tears one before that run.
SEQUENCE = [
    "buffer_after_create:3",
    "buffer_after_write:4",
    "buffer_salvage_moved:1",
    "buffer_after_fsync:3",
    "checkpoint_after_write:3",
    "delivery_after_send:3",
    "buffer_before_delete:2",
    "buffer_after_delete:2",
]
#: Answers held back this long: slower than the tail reads, so the buffer stays full.
SLOW = "slow:0.1"


class Node:
    """Generated logs, one agent config and its state, and the index they fill."""

    def __init__(self, root: Path, es_url: str, proxy: FaultProxy, lines: int, seed: int,
                 fsync: str, limit: str = "256KiB", deadline: float = 10) -> None:
        self.root = root
        self.manifest = generate_node_logs(root / "node", seed=seed, lines=lines, mark=True)
        self.prefix = unique_prefix()
        self.port = free_loopback_port()
        self.state = root / "state"
        self.log = root / "agent.log"
        self.proxy = proxy
        self.cfg = write_config(root / "shipper.yaml", state=self.state,
                                logs=root / "node" / "var" / "log" / "containers",
                                url=proxy.url, prefix=self.prefix, port=self.port, fsync=fsync,
                                limit=limit, deadline=deadline)
        self.es = SearchClient(es_url)

    @property
    def buffer_dir(self) -> Path:
        return self.state / "buffers" / "es"

    def crash_at(self, point: str, timeout_secs: float = 90) -> None:
        self.proxy.set_mode(SLOW)
        before = len(crash_lines(self.log)) if self.log.exists() else 0
        proc = start(self.cfg, self.log, point)
        try:
            code = proc.wait(timeout_secs)
        except subprocess.TimeoutExpired:
            kill(proc)
            raise AssertionError(f"crash point {point} was never reached") from None
        assert code == EXIT_STATUS, f"{point}: exit {code}, see {self.log}"
        lines = crash_lines(self.log)
        assert len(lines) == before + 1 and point.split(":")[0] in lines[-1]

    def kill_at_random(self, rng: random.Random) -> None:
        self.proxy.set_mode(rng.choice([SLOW, "refuse"]))
        proc = start(self.cfg, self.log)
        try:
            wait_healthy(proc, self.port)
            time.sleep(rng.uniform(0.05, 1.5))
        finally:
            kill(proc)

    def tear_newest_segment(self) -> None:
        segments = sorted(self.buffer_dir.glob("*.seg"))
        assert segments, "a crash after a buffer write leaves its segment behind"
        with open(segments[-1], "ab") as fh:
            fh.write(b"\x40\x00\x00\x00torn")  # a record header promising 64 bytes, cut off

    def checkpointed_bytes(self) -> int:
        path = self.state / "containers" / "positions.json"
        if not path.exists():
            return 0
        return sum(e["offset"] for e in json.loads(path.read_bytes())["files"].values())

    def finish_and_check(self, reread: int | None = None) -> None:
        """Run until every line is indexed, stop with SIGTERM, compare the index with the
        generated lines; ``reread``: how many records this last run may read from files."""
        total = self.manifest.total_records
        self.proxy.set_mode("pass")
        proc = start(self.cfg, self.log)
        try:
            wait_healthy(proc, self.port)
            wait_for_count(self.es, f"{self.prefix}-*", total, proc, 180)
            time.sleep(1.0)  # anything still in flight would now show up as an extra
            if reread is not None:
                assert metric(self.port, "shipper_records_read_total") == reread
        finally:
            assert stop(proc) == 0
        assert indexed_markers(self.es, f"{self.prefix}-{DAY}") == expected_markers(
            self.manifest), "every line exactly once"
        self.es.refresh(f"{self.prefix}-*")
        assert self.es.count(f"{self.prefix}-*") == total
        assert not list(self.buffer_dir.glob("*.seg")), "the buffer drained"


@pytest.fixture
def proxy(es_url):
    parts = urlsplit(es_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as p:
        yield p


def test_every_crash_point_in_sequence_then_random_kills_lose_and_duplicate_nothing(
        es_url, proxy, tmp_path):
    assert {p.split(":")[0] for p in SEQUENCE} == set(POINTS)
    node = Node(tmp_path, es_url, proxy, lines=6000, seed=21, fsync="interval")
    for point in SEQUENCE:
        if point.startswith("buffer_salvage_moved"):
            node.tear_newest_segment()
        node.crash_at(point)
    rng = random.Random(7)
    for _ in range(3):
        node.kill_at_random(rng)
    node.finish_and_check()
    log = node.log.read_text()
    assert '"event":"buffer_replay"' in log
    assert "buffer_salvage_completed" in log, "the interrupted salvage was finished"


def test_lines_acknowledged_into_the_buffer_survive_a_kill_while_the_output_is_down(
        es_url, proxy, tmp_path):
    node = Node(tmp_path, es_url, proxy, lines=3000, seed=24, fsync="interval", limit="64MiB")
    size = sum(f.bytes for f in node.manifest.files)
    proxy.set_mode("refuse")
    proc = start(node.cfg, node.log)
    try:
        wait_healthy(proc, node.port)
        deadline = time.monotonic() + 60
        while node.checkpointed_bytes() < size:  # ack = safe: no delivery needed
            assert time.monotonic() < deadline, f"checkpoint at {node.checkpointed_bytes()}"
            time.sleep(0.1)
        assert metric(node.port, "shipper_records_delivered_total") == 0
    finally:
        kill(proc)
    node.finish_and_check(reread=0)


def test_sigterm_during_an_outage_persists_the_buffer_and_exits_zero(es_url, proxy, tmp_path):
    node = Node(tmp_path, es_url, proxy, lines=2000, seed=25, fsync="interval", limit="64MiB",
                deadline=2)
    proxy.set_mode("refuse")
    proc = start(node.cfg, node.log)
    try:
        wait_healthy(proc, node.port)
        deadline = time.monotonic() + 60
        while metric(node.port, "shipper_records_read_total") < node.manifest.total_records:
            assert time.monotonic() < deadline, "the lines were not read"
            time.sleep(0.1)
    finally:
        assert stop(proc) == 0, "SIGTERM during an outage still exits 0"
    log = node.log.read_text()
    assert '"event":"buffer_persisted"' in log and '"event":"agent_stopped"' in log
    assert sorted(node.buffer_dir.glob("*.seg")), "the undelivered rest is on disk"
    assert node.checkpointed_bytes() == sum(f.bytes for f in node.manifest.files)
    node.finish_and_check(reread=0)


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["always", "interval"])
@pytest.mark.parametrize("point", sorted(POINTS))
def test_a_crash_at_one_point_loses_and_duplicates_nothing(es_url, proxy, tmp_path, point,
                                                          fsync):
    node = Node(tmp_path, es_url, proxy, lines=4000, seed=22, fsync=fsync)
    if point == "buffer_salvage_moved":
        node.crash_at("buffer_after_write:3")
        node.tear_newest_segment()
    node.crash_at(f"{point}:2" if point != "buffer_salvage_moved" else point)
    node.finish_and_check()


@pytest.mark.slow
def test_many_random_kills_lose_and_duplicate_nothing(es_url, proxy, tmp_path):
    node = Node(tmp_path, es_url, proxy, lines=30_000, seed=23, fsync="interval")
    rng = random.Random(11)
    for _ in range(15):
        node.kill_at_random(rng)
    node.finish_and_check()
