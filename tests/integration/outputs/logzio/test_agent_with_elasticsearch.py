"""Elasticsearch and Logz.io configured together: each output has its own buffer, so a
Logz.io outage does not hold back Elasticsearch, and nothing is lost or doubled once the
listener comes back. Elasticsearch is the real API of the session fixture ``es_url``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import trustme

from shipper.app import Agent, parse_agent_config
from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import settled, unique_prefix
from tests.integration.outputs.logzio.support import TOKEN
from tests.logzio_listener import LogzioListener, write_ca

LINES = 300
CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.2
outputs:
  es:
    type: elasticsearch
    hosts: ["{es_url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{chunk_limit_records: 100, flush_interval_secs: 0.2, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
  logzio:
    type: logzio
    listener: https://127.0.0.1:{port}
    token_file: {token_file}
    ca_file: {ca_file}
    request_timeout_secs: 5
    buffer: {{chunk_limit_records: 100, flush_interval_secs: 0.2, retry_initial_secs: 0.05,
              retry_max_secs: 0.3}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""


def write_pod_log(logs: Path, n: int) -> None:
    """A CRI log file of one container, as the kubelet writes it."""
    logs.mkdir(parents=True)
    name = "web-1_default_web-" + "a" * 64 + ".log"
    with open(logs / name, "w") as fh:
        for i in range(n):
            fh.write(f"2026-11-22T00:00:{i % 60:02d}.{i:09d}Z stdout F request {i:05d}\n")


async def wait_for(condition: Callable[[], bool], what: str, timeout_secs: float = 60.0,
                   ) -> None:
    deadline = time.monotonic() + timeout_secs
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_logzio_down_does_not_stop_elasticsearch_and_catches_up_without_duplicates(
        es_url: str, tmp_path: Path) -> None:
    prefix = unique_prefix()
    port = free_loopback_port()  # nothing listens here yet: the listener is down
    ca = trustme.CA()
    ca_file = write_ca(ca, tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    write_pod_log(tmp_path / "logs", LINES)
    config = parse_agent_config(CONFIG.format(
        state=tmp_path / "state", logs=tmp_path / "logs", es_url=es_url, prefix=prefix,
        port=port, token_file=token_file, ca_file=ca_file), file="shipper.yaml")
    agent = Agent(config)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    listener: LogzioListener | None = None
    try:
        await wait_for(lambda: settled(agent, "es") >= LINES or task.done(),
                       "Elasticsearch to get every line while Logz.io is down")
        assert not task.done()
        logzio = agent.units["logzio"]
        assert settled(agent, "logzio") == 0
        assert not logzio.buffer.empty  # kept, waiting for the listener
        retried = agent.metrics.registry.get_sample_value(
            "shipper_records_retried_total", {"output": "logzio", "reason": "connection"})
        assert retried is not None and retried > 0
        es = SearchClient(es_url)
        es.refresh(f"{prefix}-*")
        assert es.count(f"{prefix}-*") == LINES

        listener = LogzioListener({TOKEN}, port=port, ca=ca).start()  # Logz.io is back
        await wait_for(lambda: settled(agent, "logzio") >= LINES or task.done(),
                       "Logz.io to catch up")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        if listener is not None:
            listener.stop()
    assert listener is not None
    messages = listener.messages()
    assert sorted(messages) == [f"request {i:05d}" for i in range(LINES)]  # once each
    first = listener.stored[0]
    assert first["stream"] == "stdout"
    assert first["fluentd_tags"].startswith("kube.")
    assert {r["type"] for r in listener.stored} == {"k8s"}
    assert not any("log" in r for r in listener.stored)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == LINES  # and no duplicates in Elasticsearch either
