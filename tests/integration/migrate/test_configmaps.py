"""Manifests in the shapes of logzio-k8s, the fluent and bitnami charts and Istio's logging
stack, and a CRI node's file, converted by ``migrate-fluentd`` and run: every generated line
or forwarded event arrives exactly once (a doubled source would ship it twice, a missed
ConfigMap not at all)."""

from __future__ import annotations

import asyncio
import re

import pytest
from fluent import sender

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from shipper.sources.forward import ForwardSource
from tests.integration.agent_harness import unique_prefix
from tests.integration.migrate.support import (
    FIXTURES,
    converted,
    kubernetes_api,
    load,
    localize,
    run_until,
    speed_up,
)
from tests.integration.outputs.logzio.support import TOKEN
from tests.logzio_listener import LogzioListener

FORWARDED = 40


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("node")
    manifest = generate_node_logs(root, seed=31, lines=300)
    return root / "var" / "log" / "containers", manifest


def forwarding(tag: str):
    """Send FORWARDED events with ``tag`` to the agent's only forward source."""
    async def send_all(agent: Agent) -> None:
        (source,) = [s for s in agent.sources if isinstance(s, ForwardSource)]
        await asyncio.wait_for(source.ready.wait(), 10)
        prefix, _, label = tag.partition(".")

        def send() -> None:
            client = sender.FluentSender(prefix, host="127.0.0.1", port=source.port)
            try:
                for i in range(FORWARDED):
                    assert client.emit(label, {"message": f"event {i}"}), client.last_error
            finally:
                client.close()

        await asyncio.to_thread(send)
    return send_all


def es_output(config: dict, name: str, es_url: str, prefix: str) -> None:
    output = config["outputs"][name]
    output.update(hosts=[es_url], logstash_prefix=prefix, template_name=prefix)
    speed_up(output)


async def test_logzio_k8s_configmap_ships_each_line_once(node, tmp_path):
    logs, manifest = node
    config = converted(FIXTURES / "logzio-k8s" / "configmap.yaml")
    assert list(config["sources"]) == ["in_tail_container_logs"]
    with LogzioListener({TOKEN}) as listener, kubernetes_api(manifest) as k8s_url:
        localize(config, tmp_path, logs, k8s_url)
        logzio = config["outputs"]["out_logzio"]
        logzio["ca_file"] = listener.ca_file
        speed_up(logzio)
        agent = Agent(load(config, {"LOGZIO_TOKEN": TOKEN, "LOGZIO_LISTENER": listener.url}))
        total = manifest.total_records
        await run_until(agent, lambda: agent.settled_records("out_logzio") >= total)
        stored = list(listener.stored)
    assert len(stored) == total
    assert {r["kubernetes"]["namespace_name"] for r in stored} == \
        set(manifest.records_by_namespace)


async def test_fluent_chart_manifest_ships_each_line_once(node, es_url, tmp_path):
    logs, manifest = node
    config = converted(FIXTURES / "fluent-chart" / "rendered.yaml")
    prefix = unique_prefix()
    with kubernetes_api(manifest) as k8s_url:
        localize(config, tmp_path, logs, k8s_url)
        es_output(config, "elasticsearch", es_url, prefix)
        agent = Agent(load(config))
        total = manifest.total_records
        await run_until(agent, lambda: agent.settled_records("elasticsearch") >= total)
    # Elasticsearch keeps one document per derived _id, so count what the agent delivered.
    assert agent.settled_records("elasticsearch") == total
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == total
    assert es.terms(f"{prefix}-*", "kubernetes.namespace_name") == \
        manifest.records_by_namespace


async def test_bitnami_aggregator_receives_each_event_once(es_url, tmp_path):
    config = converted(FIXTURES / "bitnami" / "aggregator.yaml")
    prefix = unique_prefix()
    localize(config, tmp_path, tmp_path, None)
    es_output(config, "out_es", es_url, prefix)
    agent = Agent(load(config))
    await run_until(agent, lambda: agent.settled_records("out_es") >= FORWARDED,
                    while_running=forwarding("app.events"))
    assert agent.settled_records("out_es") == FORWARDED
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == FORWARDED


async def test_istio_logging_stack_receives_each_event_once_with_its_tag(es_url, tmp_path):
    """include_tag_key on the output becomes tag_key on the forward source: the tag is kept."""
    config = converted(FIXTURES / "istio" / "logging-stack.yaml")
    prefix = unique_prefix()
    localize(config, tmp_path, tmp_path, None)
    es_output(config, "elasticsearch", es_url, prefix)
    agent = Agent(load(config))
    await run_until(agent, lambda: agent.settled_records("elasticsearch") >= FORWARDED,
                    while_running=forwarding("accesslog.logentry.istio-system"))
    assert agent.settled_records("elasticsearch") == FORWARDED
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == FORWARDED
    tagged = {"term": {"tag": "accesslog.logentry.istio-system"}}
    assert es.count(f"{prefix}-*", tagged) == FORWARDED


async def test_cri_node_config_joins_partials_merges_json_and_writes_dated_indices(
        es_url, tmp_path):
    root = tmp_path / "node"
    manifest = generate_node_logs(root, seed=37, lines=300, log_format="cri",
                                  long_line_every=50)
    logs = root / "var" / "log" / "containers"
    config = converted(FIXTURES / "cri-json" / "fluent.conf")
    prefix = unique_prefix()
    localize(config, tmp_path, logs, None)
    output = config["outputs"]["out_es"]
    output.update(hosts=[es_url], logstash_prefix=prefix, template_name=prefix)
    speed_up(output)
    environ = {"FLUENT_ELASTICSEARCH_BUFFER_CHUNK_LIMIT_SIZE": "2MiB"}  # as the warning says
    agent = Agent(load(config, environ))
    total = manifest.total_records
    await run_until(agent, lambda: agent.settled_records("out_es") >= total)
    assert agent.settled_records("out_es") == total  # partial lines joined: one record each
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    assert es.count(f"{prefix}-*") == total
    indices = es.request("GET", f"/_cat/indices/{prefix}-*?format=json")
    assert indices and all(re.fullmatch(rf"{prefix}-\d{{4}}\.\d{{2}}\.\d{{2}}", i["index"])
                           for i in indices)
    merged = es.request("POST", f"/{prefix}-*/_search", {"query": {"bool": {"filter": [
        {"term": {"kubernetes.container_name": "ratings"}},
        {"match_phrase": {"log": "request completed"}}]}}, "size": 1})
    assert merged["hits"]["hits"][0]["_source"]["msg"] == "request completed"
