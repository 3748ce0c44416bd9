"""Two agents chained: node agent (tail → forward) → aggregator (forward → Elasticsearch).

The aggregator is restarted while the node agent is sending. Unacknowledged chunks are
resent; the aggregator maps a resent chunk to the same document ids, so Elasticsearch ends
up with every record exactly once. Half of the log files appear only after the restart, so
the second aggregator has work however fast the first one was.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from shipper.app import Agent
from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from tests.integration.agent_harness import HeldBackFiles, load, unique_prefix

NODE = """\
state_dir: {state}
sources:
  containers: {{type: tail, include: ["{logs}/*.log"], refresh_interval_secs: 0.5}}
outputs:
  aggregator:
    type: forward
    servers: [{{host: 127.0.0.1, port: {port}}}]
    shared_key: chain-key
    self_hostname: node-agent
    compress: gzip
    ack_response_timeout_secs: 3
    connect_timeout_secs: 2
    heartbeat_interval_secs: 0.2
    recover_wait_secs: 0.3
    buffer: {{chunk_limit_records: 100, flush_interval_secs: 0.1, retry_initial_secs: 0.05,
              retry_max_secs: 0.3}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""

AGGREGATOR = """\
state_dir: {state}
sources:
  forward:
    type: forward
    listen: 127.0.0.1:{port}
    security: {{shared_key: chain-key, self_hostname: aggregator}}
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{chunk_limit_records: 150, flush_interval_secs: 0.1, retry_initial_secs: 0.05,
              retry_max_secs: 0.3}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_aggregator_restart_loses_and_duplicates_nothing(es_url: str,
                                                               tmp_path: Path) -> None:
    manifest = generate_node_logs(tmp_path / "node", seed=5, lines=1500, mark=True)
    total = manifest.total_records
    logs = tmp_path / "node" / "var" / "log" / "containers"
    port = free_loopback_port()
    prefix = unique_prefix()

    def aggregator(n: int) -> Agent:
        return Agent(load(AGGREGATOR.format(state=tmp_path / f"agg{n}", port=port, url=es_url,
                                            prefix=prefix)))

    later = HeldBackFiles(tmp_path / "node", manifest, tmp_path / "held")

    node = Agent(load(NODE.format(state=tmp_path / "node-state", logs=logs, port=port)))
    first = aggregator(1)
    stops = [asyncio.Event() for _ in range(3)]
    first_task = asyncio.create_task(first.run(stops[0]))
    node_task = asyncio.create_task(node.run(stops[1]))
    second_task = None
    try:
        await until(lambda: first.settled_records("es") >= later.first_part // 2, 90, "first part")
        stops[0].set()  # restart the aggregator in the middle of the stream
        await asyncio.wait_for(first_task, 30)
        later.release()
        second = aggregator(2)
        second_task = asyncio.create_task(second.run(stops[2]))
        await until(lambda: node.settled_records("aggregator") >= total, 120,
                    "every record acknowledged by an aggregator")
        await until(lambda: second.units["es"].buffer.empty, 60, "aggregator drained")
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(node_task, 30)
        if second_task is not None:
            await asyncio.wait_for(second_task, 30)

    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == total
    assert es.terms(f"{prefix}-*", "kubernetes.namespace_name") == manifest.records_by_namespace
    # The restart really was mid-stream: each aggregator delivered a part. Their sum may
    # exceed the total (a chunk resent after a lost ack is delivered again, as a 409).
    assert first.settled_records("es") > 0 and second.settled_records("es") > 0
    assert first.settled_records("es") + second.settled_records("es") >= total
