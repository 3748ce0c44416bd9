"""Every metric the operations guide lists, checked for its value after a known workload.

The agent runs in-process on a generated Istio node (tail), a forward client, a file rotated
mid-run and a few records Elasticsearch must reject, with the Kubernetes metadata filter on a
local API server; the real Elasticsearch receives everything. Values are read from the real
``/metrics`` endpoint, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
from urllib.parse import urlsplit

import msgpack
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.demo.k8s_api import KubeApiServer
from shipper.demo.k8s_objects import demo_objects
from shipper.demo.loggen import generate_node_logs
from shipper.sources.forward import ForwardSource
from tests.faultproxy import FaultProxy
from tests.integration.agent_harness import load, settled, unique_prefix

NODE = "metrics-node"
DAY = "2026.11.22"
CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.1
    rotate_wait_secs: 60
  fwd:
    type: forward
    listen: "127.0.0.1:0"
filters:
  k8s:
    type: kubernetes_metadata
    match: "kube.**"
    kubernetes_url: "{k8s}"
    node_name: {node}
  json:
    type: json_merge
    match: "**.jsonapp-*.log"
  envoy:
    type: envoy_access_log
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{chunk_limit_records: 500, flush_interval_secs: 0.1, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""
JSON_POD = "jsonapp-x2x5z_metrics_app-" + "c" * 64 + ".log"
ROTATING_POD = "rotating-7d4b9c5f8-x2x5z_metrics_app-" + "d" * 64 + ".log"


def docker_lines(texts: list[str], second: int = 0) -> bytes:
    return b"".join(orjson.dumps({"log": t + "\n", "stream": "stdout",
                                  "time": f"2026-11-22T01:00:{second:02d}.{i:06d}000Z"}) + b"\n"
                    for i, t in enumerate(texts))


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items()
               if n == name and all((k, w) in lab for k, w in labels.items()))


@pytest.fixture
def k8s_api(tmp_path):
    server = KubeApiServer()
    yield server
    server.stop()


async def test_metric_values_after_a_known_workload(tmp_path, es_url, k8s_api):
    root = tmp_path / "node"
    manifest = generate_node_logs(root, seed=21, lines=3000)
    k8s_api.state.load(*demo_objects(manifest, NODE))
    k8s_url = k8s_api.start()
    logs = root / "var" / "log" / "containers"
    pods = root / "var" / "log" / "pods"
    # Four records Elasticsearch must refuse: the index maps n as a number.
    prefix = unique_prefix()
    SearchClient(es_url).request("PUT", f"/{prefix}-{DAY}",
                                 {"mappings": {"properties": {"n": {"type": "long"}}}})
    json_lines = docker_lines(['{"n": 1}', '{"n": "one"}', '{"n": "two"}', '{"n": 2}',
                               '{"n": "three"}', '{"n": {"deep": 4}}'])
    (logs / JSON_POD).write_bytes(json_lines)
    rotating = pods / "metrics_rotating" / "app" / "0.log"
    rotating.parent.mkdir(parents=True)
    first = docker_lines([f"before rotation {i}" for i in range(50)])
    rotating.write_bytes(first)
    (logs / ROTATING_POD).symlink_to(rotating)
    generated = manifest.total_records + 6 + 50

    agent = Agent(load(CONFIG.format(state=tmp_path / "state", logs=logs, url=es_url,
                                     prefix=prefix, k8s=k8s_url, node=NODE)))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(120):
            await wait(lambda: settled(agent) >= generated, task)
            # kubelet-style rotation: rename, new file at the same path, more lines.
            os.rename(rotating, rotating.with_name("0.log.20261122-010000"))
            second = docker_lines([f"after rotation {i}" for i in range(30)], second=5)
            rotating.write_bytes(second)
            generated += 30
            await wait(lambda: settled(agent) >= generated, task)
            forward = next(s for s in agent.sources if isinstance(s, ForwardSource))
            acks = await send_forward(forward.port, 25)
            generated += 25
            await wait(lambda: settled(agent) >= generated, task)
            samples = await asyncio.to_thread(scrape, agent.telemetry.port)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    tailed = manifest.total_records + 6 + 50 + 30
    tailed_bytes = manifest.total_bytes + len(json_lines) + len(first) + len(second)
    src = {"source": "containers"}
    assert value(samples, "shipper_records_read_total", **src) == tailed
    assert value(samples, "shipper_bytes_read_total", **src) == tailed_bytes
    assert value(samples, "shipper_records_read_total", source="fwd") == 25
    assert acks == ["chunk-1"]
    assert value(samples, "shipper_forward_acks_total", source="fwd") == 1
    assert value(samples, "shipper_forward_connections", source="fwd") == 0  # it hung up
    # Every file, plus the renamed generation kept open for late writes (rotate_wait_secs).
    assert value(samples, "shipper_files_open", **src) == len(manifest.files) + 2 + 1
    assert value(samples, "shipper_files_rotated_total", kind="renamed", **src) == 1
    assert total(samples, "shipper_files_rotated_total") == 1
    assert total(samples, "shipper_lost_bytes_total") == 0

    es = {"output": "es"}
    dead = total(samples, "shipper_records_dead_lettered_total", **es)
    assert dead == 4
    # Every reason is exported from the start; only mapping errors have counted anything.
    assert {dict(lab)["reason"] for (n, lab), v in samples.items()
            if n == "shipper_records_dead_lettered_total" and v > 0} <= {
        "document_parsing_exception", "mapper_parsing_exception"}
    assert value(samples, "shipper_records_retried_total", reason="connection", **es) == 0
    assert value(samples, "shipper_lost_bytes_total", reason="deleted_unread", **src) == 0
    assert value(samples, "shipper_output_start_attempts_total", result="ok", **es) == 1
    assert total(samples, "shipper_output_start_attempts_total", **es) == 1
    assert value(samples, "shipper_records_delivered_total", **es) == tailed + 25 - 4
    assert total(samples, "shipper_records_duplicate_total") == 0
    assert total(samples, "shipper_records_retried_total") == 0
    assert total(samples, "shipper_records_dropped_total") == 0
    requests = total(samples, "shipper_output_requests_total", **es)
    assert requests == value(samples, "shipper_output_requests_total", status="ok", **es)
    # One request per chunk (no retries), and every chunk's latency was observed once.
    assert value(samples, "shipper_delivery_latency_seconds_count", **es) == requests
    assert value(samples, "shipper_delivery_latency_seconds_sum", **es) > 0
    assert value(samples, "shipper_buffer_bytes", **es) == 0
    assert value(samples, "shipper_buffer_chunks", **es) == 0
    assert value(samples, "shipper_oldest_unacked_age_seconds", **es) == 0
    assert value(samples, "shipper_output_last_success_timestamp_seconds", **es) > 1.7e9
    assert value(samples, "shipper_output_ready", **es) == 1

    assert value(samples, "shipper_filter_records_total", filter="json", result="merged") == 6
    assert value(samples, "shipper_filter_records_total", filter="envoy", result="parsed") > 0
    assert value(samples, "shipper_filter_records_total", filter="k8s",
                 result="enriched") == manifest.total_records
    for resource in ("pods", "namespaces"):
        assert value(samples, "shipper_kubernetes_api_requests_total", filter="k8s",
                     resource=resource, outcome="ok") >= 1
        assert value(samples, "shipper_kubernetes_watch_up", filter="k8s",
                     resource=resource) == 1
    assert value(samples, "shipper_tap_subscribers") == 0


async def wait(condition, task: asyncio.Task[None]) -> None:
    while not condition():
        if task.done():
            task.result()
            raise AssertionError("the agent stopped")
        await asyncio.sleep(0.05)


async def send_forward(port: int, n: int) -> list[str]:
    """One Forward-mode request with an ack request, as fluent-bit sends; the acks back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    entries = [[1_795_309_200 + i, {"message": f"forwarded {i}"}] for i in range(n)]
    writer.write(msgpack.packb(["app.forwarded", entries, {"chunk": "chunk-1"}]))
    await writer.drain()
    unpacker = msgpack.Unpacker(raw=False)
    acks: list[str] = []
    while not acks:
        data = await reader.read(4096)
        assert data, "connection closed before the ack"
        unpacker.feed(data)
        acks += [reply["ack"] for reply in unpacker]
    writer.close()
    await writer.wait_closed()
    return acks


START_CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.1
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{flush_interval_secs: 0.1, retry_initial_secs: 0.05, retry_max_secs: 0.2}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""


async def test_alerting_counters_exist_at_zero_and_start_attempts_count_an_outage(
        tmp_path, es_url):
    """Elasticsearch is unreachable when the agent starts: no record was sent, so only the
    start-attempt counter can show it; every counter an alert watches is already exported
    (at zero), so the first retry or dead letter is an increase Prometheus can see."""
    parts = urlsplit(es_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / ("web-1_default_web-" + "e" * 64 + ".log")).write_bytes(
        docker_lines([f"line {i}" for i in range(20)]))
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as proxy:
        proxy.set_mode("refuse")
        agent = Agent(load(START_CONFIG.format(state=tmp_path / "state", logs=logs,
                                               url=proxy.url, prefix=unique_prefix())))
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        attempts = "shipper_output_start_attempts_total"
        try:
            async with asyncio.timeout(60):
                await wait(lambda: agent.telemetry.port and sample_of(
                    agent, attempts, output="es", result="unavailable") >= 3, task)
                down = await asyncio.to_thread(scrape, agent.telemetry.port)
                proxy.set_mode("pass")
                await wait(lambda: settled(agent) >= 20, task)
                up = await asyncio.to_thread(scrape, agent.telemetry.port)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)

    es = {"output": "es"}
    assert value(down, attempts, result="unavailable", **es) >= 3
    assert value(down, attempts, result="ok", **es) == 0
    for reason in ("connection", "tls", "429", "4xx", "5xx"):
        assert value(down, "shipper_records_retried_total", reason=reason, **es) == 0
    for reason in ("mapper_parsing_exception", "document_parsing_exception", "rejected"):
        assert value(down, "shipper_records_dead_lettered_total", reason=reason, **es) == 0
    for reason in ("buffer_full", "dead_letter_full"):
        assert value(down, "shipper_records_dropped_total", reason=reason, **es) == 0
    for status in ("connection_error", "503", "401"):
        assert value(down, "shipper_output_requests_total", status=status, **es) == 0
    for reason in ("deleted_unread", "truncated_unread", "compressed_unread"):
        assert value(down, "shipper_lost_bytes_total", source="containers",
                     reason=reason) == 0
    assert value(up, attempts, result="ok", **es) == 1
    assert value(up, attempts, result="unavailable", **es) >= value(
        down, attempts, result="unavailable", **es)
    assert value(up, "shipper_records_delivered_total", **es) == 20
    assert value(up, "shipper_output_ready", **es) == 1


def sample_of(agent: Agent, name: str, **labels: str) -> float:
    found = agent.metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found
