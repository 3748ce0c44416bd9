"""Tail → kubernetes_metadata → a real Elasticsearch API, with pods from the local API server.

Dotted labels (``app`` on one pod, ``app.kubernetes.io/name`` on another) must index and stay
searchable both de-dotted (the default) and verbatim (the index template maps labels as
``flattened``); the exclude annotation drops and counts; a deleted pod's late lines keep their
metadata; and the demo's generated node ships with every field.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.demo.k8s_api import PODS, KubeApiServer
from shipper.demo.k8s_objects import demo_objects
from shipper.demo.loggen import generate_node_logs
from shipper.filters.kubernetes import KubernetesMetadataFilter
from tests.integration.agent_harness import load, run_until_settled, unique_prefix
from tests.integration.filters.kubernetes.conftest import NODE, cid, make_pod, metric

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    refresh_interval_secs: 0.2
filters:
  k8s:
    type: kubernetes_metadata
    kubernetes_url: "{api}"
    node_name: {node}
    de_dot: {de_dot}
    retry_initial_secs: 0.2
    retry_max_secs: 1
outputs:
  es:
    type: elasticsearch
    hosts: ["{es}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{flush_interval_secs: 0.2, retry_initial_secs: 0.05, retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""


def agent_for(tmp_path: Path, logs: Path, api: KubeApiServer, es_url: str, prefix: str,
              de_dot: bool = True) -> Agent:
    return Agent(load(CONFIG.format(state=tmp_path / "state", logs=logs, api=api.url,
                                    node=NODE, de_dot=str(de_dot).lower(), es=es_url,
                                    prefix=prefix)))


def containers_dir(tmp_path: Path) -> Path:
    logs = tmp_path / "var" / "log" / "containers"
    logs.mkdir(parents=True)
    return logs


def write_lines(logs: Path, pod: str, n: int, lines: list[str]) -> None:
    path = logs / f"{pod}_shop_app-{cid(n)}.log"
    with open(path, "a") as fh:
        for i, text in enumerate(lines):
            fh.write(f"2026-11-22T00:00:{i % 60:02d}.000000001Z stdout F {text}\n")


def search(es: SearchClient, prefix: str, query: dict[str, Any]) -> int:
    es.refresh(f"{prefix}-*")
    return es.count(f"{prefix}-*", query)


@pytest.mark.parametrize("de_dot", [True, False])
async def test_dotted_labels_on_different_pods_index_and_stay_searchable(
        api: KubeApiServer, es_url: str, tmp_path: Path, de_dot: bool) -> None:
    api.state.put(PODS, make_pod("web-1", "uid-web-1", 1, labels={
        "app": "web", "istio-mixer-type": "telemetry"}))
    api.state.put(PODS, make_pod("shop-api-1", "uid-api", 2, labels={
        "app.kubernetes.io/name": "web", "app.kubernetes.io/part-of": "shop"}))
    logs = containers_dir(tmp_path)
    write_lines(logs, "web-1", 1, ["a1", "a2", "a3"])
    write_lines(logs, "shop-api-1", 2, ["b1", "b2", "b3"])
    prefix = unique_prefix()
    agent = agent_for(tmp_path, logs, api, es_url, prefix, de_dot)
    await run_until_settled(agent, 6)

    es = SearchClient(es_url)
    assert search(es, prefix, {"match_all": {}}) == 6
    assert metric(agent.metrics, "shipper_records_dead_lettered_total", output="es") == 0
    # What Kibana sends for  kubernetes.labels.istio-mixer-type : "telemetry"
    kql = {"bool": {"should": [{"match_phrase": {
        "kubernetes.labels.istio-mixer-type": "telemetry"}}], "minimum_should_match": 1}}
    assert search(es, prefix, kql) == 3
    assert search(es, prefix, {"term": {"kubernetes.labels.app": "web"}}) == 3
    key = "app_kubernetes_io/name" if de_dot else "app.kubernetes.io/name"
    assert search(es, prefix, {"term": {f"kubernetes.labels.{key}": "web"}}) == 3
    assert search(es, prefix, {"term": {"kubernetes.pod_id": "uid-api"}}) == 3
    assert search(es, prefix, {"term": {"kubernetes.host": NODE}}) == 6


async def test_excluded_pods_are_dropped_and_counted_while_others_ship(
        api: KubeApiServer, es_url: str, tmp_path: Path) -> None:
    api.state.put(PODS, make_pod("chatty-1", "uid-chatty", 3,
                                 annotations={"shipper.io/exclude": "true"}))
    logs = containers_dir(tmp_path)
    write_lines(logs, "chatty-1", 3, [f"noise {i}" for i in range(4)])
    write_lines(logs, "web-1", 1, ["kept 1", "kept 2"])
    prefix = unique_prefix()
    agent = agent_for(tmp_path, logs, api, es_url, prefix)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        deadline = time.monotonic() + 60
        while not (agent.settled_records("es") >= 2 and metric(
                agent.metrics, "shipper_records_dropped_total", output="filter:k8s",
                reason="excluded") >= 4):
            assert not task.done() and time.monotonic() < deadline, "not settled in time"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    es = SearchClient(es_url)
    assert search(es, prefix, {"match_all": {}}) == 2
    assert search(es, prefix, {"term": {"kubernetes.pod_name": "chatty-1"}}) == 0
    assert metric(agent.metrics, "shipper_records_dropped_total", output="filter:k8s",
                  reason="excluded") == 4


async def test_a_deleted_pods_late_lines_keep_its_metadata(
        api: KubeApiServer, es_url: str, tmp_path: Path) -> None:
    logs = containers_dir(tmp_path)
    write_lines(logs, "web-1", 1, ["before 1", "before 2"])
    prefix = unique_prefix()
    agent = agent_for(tmp_path, logs, api, es_url, prefix)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        [f] = [x for x in agent.filters if isinstance(x, KubernetesMetadataFilter)]
        deadline = time.monotonic() + 60
        while agent.settled_records("es") < 2:
            assert not task.done() and time.monotonic() < deadline
            await asyncio.sleep(0.1)
        api.state.delete(PODS, "shop/web-1")
        while f.cache.counts() != (0, 1):
            assert time.monotonic() < deadline, "deletion not seen"
            await asyncio.sleep(0.05)
        write_lines(logs, "web-1", 1, ["after 1", "after 2"])  # the last lines of the pod
        while agent.settled_records("es") < 4:
            assert not task.done() and time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    es = SearchClient(es_url)
    assert search(es, prefix, {"term": {"kubernetes.pod_id": "uid-web-1"}}) == 4


async def test_the_demo_node_ships_with_every_metadata_field(es_url: str,
                                                             tmp_path: Path) -> None:
    root = tmp_path / "node"
    manifest = generate_node_logs(root, seed=21, lines=1500)
    server = KubeApiServer()
    server.state.load(*demo_objects(manifest, NODE))
    server.start()
    try:
        prefix = unique_prefix()
        logs = root / "var" / "log" / "containers"
        agent = agent_for(tmp_path, logs, server, es_url, prefix)
        await run_until_settled(agent, manifest.total_records)
    finally:
        server.stop()
    es = SearchClient(es_url)
    total = manifest.total_records
    assert search(es, prefix, {"match_all": {}}) == total
    for field in ("kubernetes.pod_id", "kubernetes.pod_ip", "kubernetes.host",
                  "kubernetes.container_image", "kubernetes.namespace_id",
                  "kubernetes.master_url", "kubernetes.labels", "docker.container_id"):
        assert search(es, prefix, {"exists": {"field": field}}) == total, field
    reviews = sum(f.records for f in manifest.files if f.pod.startswith("reviews-"))
    assert search(es, prefix, {"term": {"kubernetes.labels.app": "reviews"}}) == reviews
    # the catalog pods carry shipper.io/parser: json, so their JSON lines are merged
    assert search(es, prefix, {"exists": {"field": "level"}}) > 0
    assert search(es, prefix, {"bool": {"must": [{"exists": {"field": "level"}}], "must_not": [
        {"term": {"kubernetes.labels.app": "catalog"}}]}}) == 0
