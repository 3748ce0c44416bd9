"""The backbone end to end: generated node logs → agent → a real Elasticsearch API."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from shipper.app import Agent
from shipper.demo.embedded_es import free_loopback_port, wait_for_http
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from tests.integration.agent_harness import (
    HeldBackFiles,
    config_text,
    load,
    metrics_value,
    run_until_settled,
    unique_prefix,
)

DAY = "2026.11.22"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("node")
    manifest = generate_node_logs(root, seed=11, lines=4000, mark=True, long_line_every=400)
    return root, manifest


async def test_every_generated_line_is_indexed_exactly_once_with_fluentd_fields(
        node, es_url, tmp_path):
    root, manifest = node
    prefix = unique_prefix()
    logs = root / "var" / "log" / "containers"
    agent = Agent(load(config_text(tmp_path / "state", logs, es_url, prefix)))
    await run_until_settled(agent, manifest.total_records)

    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-{DAY}") == manifest.total_records
    assert es.count(f"{prefix}-*") == manifest.total_records
    assert es.terms(f"{prefix}-*", "kubernetes.namespace_name") == manifest.records_by_namespace
    assert es.terms(f"{prefix}-*", "kubernetes.container_name") == manifest.records_by_container

    rng = random.Random(3)
    for entry in rng.sample(manifest.files, 5):
        n = rng.randrange(entry.records)
        query = {"match_phrase": {"log": f"seq={entry.index}:{n}"}}
        hits = es.request("POST", f"/{prefix}-*/_search", {"query": query, "size": 3})
        docs = hits["hits"]["hits"]
        assert len(docs) == 1, (entry.symlink, n)
        doc = docs[0]["_source"]
        assert doc["kubernetes"]["namespace_name"] == entry.namespace
        assert doc["kubernetes"]["pod_name"] == entry.pod
        assert doc["kubernetes"]["container_name"] == entry.container
        assert doc["docker"]["container_id"] == entry.container_id
        # Fluentd's in_tail tag: prefix + the file's path with "/" turned into ".".
        assert doc["tag"] == "kube" + str(root / entry.symlink).replace("/", ".")
        assert doc["stream"] in ("stdout", "stderr")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", doc["time"])
        assert doc["@timestamp"].startswith("2026-11-22T")


async def test_the_kibana_searches_of_the_seed_answer(node, es_url, tmp_path):
    root, manifest = node
    prefix = unique_prefix()
    logs = root / "var" / "log" / "containers"
    agent = Agent(load(config_text(tmp_path / "state", logs, es_url, prefix)))
    await run_until_settled(agent, manifest.total_records)
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    istio = es.kibana_count(f"{prefix}-*", 'kubernetes.namespace_name : "istio-system"')
    assert istio == manifest.records_by_namespace["istio-system"]
    assert es.kibana_count(f"{prefix}-*", "envoy") > 0


async def test_a_record_elasticsearch_rejects_goes_to_the_dead_letter_store(es_url, tmp_path):
    prefix = unique_prefix()
    logs = tmp_path / "containers"
    logs.mkdir()
    cid = "a" * 64
    lines = [b"2026-11-21T12:00:00.5Z stdout F rejected line\n"]
    lines += [f"2026-11-22T00:00:0{i}.1Z stdout F good line {i}\n".encode() for i in range(5)]
    (logs / f"web-1_default_app-{cid}.log").write_bytes(b"".join(lines))
    es = SearchClient(es_url)
    # An index whose mapping cannot take the record: Elasticsearch answers 400 for it alone.
    es.request("PUT", f"/{prefix}-2026.11.21",
               {"mappings": {"properties": {"stream": {"type": "long"}}}})
    agent = Agent(load(config_text(tmp_path / "state", logs, es_url, prefix)))
    await run_until_settled(agent, 6)

    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-{DAY}") == 5
    [dead_file] = (tmp_path / "state" / "dead-letter").glob("*.ndjson")
    [dead] = [orjson.loads(x) for x in dead_file.read_bytes().splitlines()]
    assert dead["record"]["log"] == "rejected line"
    assert dead["index"] == f"{prefix}-2026.11.21"
    assert dead["error"]["status"] == 400
    assert dead["error"]["type"] in ("document_parsing_exception", "mapper_parsing_exception")
    assert "stream" in dead["error"]["reason"]
    value = agent.metrics.registry.get_sample_value(
        "shipper_records_dead_lettered_total",
        {"output": "es", "reason": dead["error"]["type"]})
    assert value == 1


def start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                            stderr=open(log, "ab"), stdout=subprocess.DEVNULL)


def test_a_killed_agent_restarts_without_losing_or_duplicating(es_url, tmp_path):
    root = tmp_path / "node"
    manifest = generate_node_logs(root, seed=5, lines=20_000, mark=True)
    later = HeldBackFiles(root, manifest, tmp_path / "held")
    prefix = unique_prefix()
    port = free_loopback_port()
    cfg = tmp_path / "shipper.yaml"
    logs = root / "var" / "log" / "containers"
    cfg.write_text(config_text(tmp_path / "state", logs, es_url, prefix, port))
    es = SearchClient(es_url)

    first = start_agent(cfg, tmp_path / "agent.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, first)
        deadline = time.monotonic() + 120
        while metrics_value(port, "shipper_records_delivered_total") < 3000:
            assert time.monotonic() < deadline, "first run made no progress"
            time.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    es.refresh(f"{prefix}-*")
    assert 0 < es.count(f"{prefix}-*") <= later.first_part

    later.release()
    second = start_agent(cfg, tmp_path / "agent.log")
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, second)
        deadline = time.monotonic() + 180
        while True:
            settled = (metrics_value(port, "shipper_records_delivered_total")
                       + metrics_value(port, "shipper_records_duplicate_total"))
            es.refresh(f"{prefix}-*")
            if es.count(f"{prefix}-*") >= manifest.total_records:
                break
            assert time.monotonic() < deadline, f"second run stalled at {settled}"
            time.sleep(1.0)
        time.sleep(1.0)  # anything still in flight would now show up as an extra document
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == manifest.total_records
    assert es.terms(f"{prefix}-*", "kubernetes.container_name") == manifest.records_by_container


def test_sigterm_drains_and_exits_zero(es_url, tmp_path):
    root = tmp_path / "node"
    manifest = generate_node_logs(root, seed=9, lines=2000)
    prefix = unique_prefix()
    port = free_loopback_port()
    cfg = tmp_path / "shipper.yaml"
    cfg.write_text(config_text(tmp_path / "state", root / "var/log/containers", es_url, prefix,
                               port))
    proc = start_agent(cfg, tmp_path / "agent.log")
    wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, proc)
    deadline = time.monotonic() + 60
    while metrics_value(port, "shipper_records_delivered_total") < manifest.total_records:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    positions = list((tmp_path / "state").rglob("positions*"))
    assert positions, "checkpoints were written on shutdown"
    log_lines = [orjson.loads(x) for x in (tmp_path / "agent.log").read_bytes().splitlines()
                 if x.startswith(b"{")]
    assert any(x.get("event") == "agent_stopped" for x in log_lines)


def test_check_reports_every_problem_with_file_line_and_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "state_dir: /tmp/x\n"
        "sources:\n"
        "  containers:\n"
        "    type: tail\n"
        "    includ: ['/var/log/containers/*.log']\n"
        "outputs:\n"
        "  es:\n"
        "    type: elasticsearch\n"
        "    hosts: ['http://127.0.0.1:9200']\n"
        "    buffer: {chunk_limit_bytes: 2MeB}\n"
        "    password: ${SHIPPER_TEST_UNSET_VARIABLE}\n")
    env = {k: v for k, v in os.environ.items() if k != "SHIPPER_TEST_UNSET_VARIABLE"}
    proc = subprocess.run([sys.executable, "-m", "shipper.cli", "check", "-c", str(cfg)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    err = proc.stderr.splitlines()
    assert any(line.startswith(f"{cfg}:5: sources.containers.includ: ") for line in err), err
    assert any(line.startswith(f"{cfg}:10: outputs.es.buffer.chunk_limit_bytes: ")
               for line in err), err
    assert any(line.startswith(f"{cfg}:11: outputs.es.password: ")
               and "SHIPPER_TEST_UNSET_VARIABLE" in line for line in err), err


def test_check_accepts_a_valid_config(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(config_text(tmp_path / "s", tmp_path, "http://127.0.0.1:9200", "x"))
    proc = subprocess.run([sys.executable, "-m", "shipper.cli", "check", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
