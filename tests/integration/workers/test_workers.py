"""``workers: 2`` as real processes against the test session's Elasticsearch.

A generated node log tree (a few thousand sequence-numbered lines in 10 files) is shipped by
a supervisor and its two workers. The index must then hold every line exactly once: each
file is read by one worker only, and ids are deterministic, so a worker killed mid-run and
restarted re-sends what it had not acknowledged as 409s, never as new documents. The
supervisor's /metrics carries both workers' samples, labelled, and their records read add up
to the lines; SIGTERM stops everything with exit 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from shipper.demo.manifest import Manifest
from shipper.workers.shard import shard_of
from tests.integration.agent_harness import config_text, unique_prefix
from tests.integration.buffer.agent_proc import (
    DAY,
    expected_markers,
    indexed_markers,
    metric,
    wait_for_count,
    wait_healthy,
)


class Node:
    """A generated node, the agent's config and state for it, and its index."""

    def __init__(self, root: Path, es_url: str, seed: int) -> None:
        self.manifest = generate_node_logs(root / "node", seed=seed, lines=3000, files=10,
                                           mark=True)
        self.logs = root / "node" / "var" / "log" / "containers"
        self.state = root / "state"
        self.prefix = unique_prefix()
        self.port = free_loopback_port()
        self.cfg = root / "shipper.yaml"
        self.cfg.write_text("workers: 2\n" + config_text(self.state, self.logs, es_url,
                                                          self.prefix, self.port))
        self.log = root / "agent.log"
        self.es = SearchClient(es_url)

    def start(self) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "SHIPPER_WORKER"}
        proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c",
                                 str(self.cfg)], stderr=open(self.log, "ab"),
                                stdout=subprocess.DEVNULL, env=env)
        wait_healthy(proc, self.port)
        return proc

    def worker_pid(self, index: int) -> int:
        doc = json.loads((self.state / f"worker-{index}" / "telemetry.json").read_text())
        return int(doc["pid"])

    def wait_all_indexed(self, proc: subprocess.Popen[bytes]) -> None:
        wait_for_count(self.es, f"{self.prefix}-*", self.manifest.total_records, proc, 60)

    def check_exactly_once(self) -> None:
        assert indexed_markers(self.es, f"{self.prefix}-{DAY}") == expected_markers(
            self.manifest), "every line exactly once"


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(30)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and ") Z " not in Path(
        f"/proc/{pid}/stat").read_text()


def files_per_worker(manifest: Manifest, logs: Path) -> list[int]:
    counts = [0, 0]
    for path in logs.glob("*.log"):
        counts[shard_of(os.path.realpath(path), 2)] += 1
    assert sum(counts) == len(manifest.files)
    return counts


def test_two_workers_ship_every_line_once_and_stop_cleanly(es_url, tmp_path):
    node = Node(tmp_path, es_url, seed=31)
    assert all(files_per_worker(node.manifest, node.logs)), "both workers have files"
    proc = node.start()
    try:
        node.wait_all_indexed(proc)
        total = node.manifest.total_records
        deadline = time.monotonic() + 30
        while metric(node.port, "shipper_records_read_total") < total:
            assert time.monotonic() < deadline, "records read never added up"
            time.sleep(0.2)
        assert metric(node.port, "shipper_records_read_total") == total
        for index in (0, 1):
            assert metric(node.port, "shipper_records_read_total", f'worker="{index}"') > 0
        assert metric(node.port, "shipper_worker_up") == 2
        pids = [node.worker_pid(0), node.worker_pid(1)]
    finally:
        assert stop(proc) == 0
    assert not any(alive(pid) for pid in pids), "the workers stopped with the supervisor"
    node.check_exactly_once()
    for index in (0, 1):
        assert (node.state / f"worker-{index}" / "containers" / "positions.json").exists()
    assert not (node.state / "containers").exists(), "nothing in the shared state dir"
    log = node.log.read_text()
    assert '"event":"workers_stopped"' in log and '"worker":1' in log


def test_a_killed_worker_is_restarted_and_nothing_is_lost_or_duplicated(es_url, tmp_path):
    node = Node(tmp_path, es_url, seed=32)
    proc = node.start()
    try:
        victim = node.worker_pid(1)
        deadline = time.monotonic() + 30
        while metric(node.port, "shipper_records_read_total", 'worker="1"') <= 0:
            assert time.monotonic() < deadline, "worker 1 read nothing"
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)  # its lines are being shipped
        deadline = time.monotonic() + 30
        while metric(node.port, "shipper_worker_restarts_total", 'worker="1"') < 1:
            assert time.monotonic() < deadline, "worker 1 was not restarted"
            assert proc.poll() is None, "the supervisor exited"
            time.sleep(0.2)
        wait_healthy(proc, node.port)
        assert node.worker_pid(1) != victim
        node.wait_all_indexed(proc)
        time.sleep(1.0)  # anything still in flight would now show up as an extra
    finally:
        assert stop(proc) == 0
    node.check_exactly_once()
    log = node.log.read_text()
    assert '"event":"worker_exited"' in log and '"event":"worker_restarting"' in log
