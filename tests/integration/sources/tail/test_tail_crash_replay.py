"""A crash after Elasticsearch accepted a bulk, before the checkpoint: the replay is a 409.

The real agent, a memory buffer (acknowledged only once delivered, so the tail reads the
lines again after the crash) and time-based indices finer than the time a restart takes:
malformed lines, timed when read, used to land in another index on the replay and be
stored twice. Every line must be in the index exactly once.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from shipper.crashpoints import EXIT_STATUS
from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.esquery import SearchClient
from shipper.record import Batch
from tests.integration.agent_harness import unique_prefix
from tests.integration.buffer.agent_proc import kill, start, stop, wait_healthy
from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    positions,
    wait_until,
)

CID = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.5
    checkpoint_interval_secs: 0.2
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    logstash_dateformat: "%Y.%m.%d.%H.%M.%S"
    template_name: {prefix}
    buffer: {{type: memory, flush_interval_secs: 0.2}}
telemetry: {{listen: "127.0.0.1:{port}"}}
"""


def cri(second: int, text: str) -> str:
    """A CRI line of a fixed day (its second in the minute given)."""
    return f"2026-11-22T10:00:{second:02d}.000000000Z stdout F {text}\n"


@pytest.mark.slow
def test_malformed_lines_replayed_after_a_crash_past_the_bulk_are_not_indexed_twice(
        es_url: str, tmp_path: Path) -> None:
    logs = tmp_path / "containers"
    logs.mkdir()
    # Garbage between timestamped lines (timed by the line before it), and a file that
    # starts with garbage (timed by when the agent first saw it, kept in its checkpoint).
    (logs / f"web_default_app-{CID}.log").write_text(
        cri(1, "one") + "garbage a\n" + cri(2, "two") + "garbage b\ngarbage c\n" + cri(3, "x"))
    (logs / f"db_default_app-{OTHER}.log").write_text("no time here\n" + cri(4, "four"))
    lines = 8
    prefix, port = unique_prefix(), free_loopback_port()
    cfg = tmp_path / "shipper.yaml"
    cfg.write_text(CONFIG.format(state=tmp_path / "state", logs=logs, url=es_url,
                                 prefix=prefix, port=port))
    log = tmp_path / "agent.log"
    es = SearchClient(es_url)

    proc = start(cfg, log, "delivery_after_send:1")
    try:
        code = proc.wait(60)
    except subprocess.TimeoutExpired:
        kill(proc)
        raise AssertionError("the crash point was never reached") from None
    assert code == EXIT_STATUS, f"exit {code}, see {log}"
    es.refresh(f"{prefix}-*")
    first = es.count(f"{prefix}-*")
    assert first > 0, "the bulk before the crash was accepted"
    time.sleep(1.1)  # the replay reads in another second: read-time indices would differ

    proc = start(cfg, log)
    try:
        wait_healthy(proc, port)
        deadline = time.monotonic() + 60
        while True:
            es.refresh(f"{prefix}-*")
            count = es.count(f"{prefix}-*")
            if count >= lines:
                break
            assert time.monotonic() < deadline, f"only {count}/{lines} indexed"
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate still in flight would show up now
        es.refresh(f"{prefix}-*")
        assert es.count(f"{prefix}-*") == lines, "every line exactly once"
    finally:
        assert stop(proc) == 0
    hits = es.request("POST", f"/{prefix}-*/_search", {"size": 100})["hits"]["hits"]
    by_log = {hit["_source"]["log"]: hit["_index"] for hit in hits}
    assert by_log["garbage a"] == by_log["one"] == f"{prefix}-2026.11.22.10.00.01"
    assert by_log["garbage b"] == by_log["garbage c"] == by_log["two"]


async def test_a_first_seen_time_is_on_disk_before_a_record_timed_by_it_is_emitted(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, "no time here\n" + cri(1, "one"))
    on_disk: list[dict[str, Any]] = []

    class Checking(Collector):
        async def __call__(self, batch: Batch) -> None:
            on_disk.append(positions(tail.state))  # what a crash right now would leave
            await super().__call__(batch)

    collector = Checking()
    # No periodic save in the test's time: only the write before the emit can put it there.
    async with tail.running(collector, checkpoint_interval_secs=3600):
        await wait_until(lambda: len(collector.records) == 2)
    garbage = collector.records[0]
    assert garbage.body["shipper"] == {"flags": ["malformed"]}
    (entry,) = on_disk[0].values()
    assert entry["time_ns"] == garbage.time_ns and entry["offset"] == 0
