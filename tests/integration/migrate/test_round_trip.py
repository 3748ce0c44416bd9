"""Each Fluentd fixture, converted by ``migrate-fluentd``, ships a generated node's logs into
the real Elasticsearch API of the test suite (and Logz.io's listener stand-in)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

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

FORWARDED = 25


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("node")
    manifest = generate_node_logs(root, seed=23, lines=400)
    return root / "var" / "log" / "containers", manifest


def search(es_url: str, prefix: str) -> SearchClient:
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    return es


async def forward_events(agent: Agent) -> None:
    """Send FORWARDED events to the converted forward source, as a fluent-logger app would."""
    source = next(s for s in agent.sources if isinstance(s, ForwardSource))
    await asyncio.wait_for(source.ready.wait(), 10)

    def send() -> None:
        client = sender.FluentSender("app", host="127.0.0.1", port=source.port)
        try:
            for i in range(FORWARDED):
                assert client.emit("events", {"message": f"forwarded {i}"}), client.last_error
        finally:
            client.close()

    await asyncio.to_thread(send)


async def test_efk_configmap_ships_tailed_and_forwarded_records(node, es_url, tmp_path):
    logs, manifest = node
    config = converted(FIXTURES / "efk" / "fluentd-es-configmap.yaml")
    prefix = unique_prefix()
    with kubernetes_api(manifest) as k8s_url:
        localize(config, tmp_path, logs, k8s_url)
        es_output = config["outputs"]["elasticsearch"]
        assert es_output["buffer"]["total_limit_bytes"] == "16MiB"  # 8 x 2M, v0.12 spellings
        es_output.update(hosts=[es_url], logstash_prefix=prefix, template_name=prefix)
        speed_up(es_output)
        agent = Agent(load(config))
        expected = manifest.total_records + FORWARDED
        await run_until(agent, lambda: agent.settled_records("elasticsearch") >= expected,
                        while_running=forward_events)

    assert agent.settled_records("elasticsearch") == expected  # each line once
    es = search(es_url, prefix)
    assert es.count(f"{prefix}-*") == expected
    assert es.terms(f"{prefix}-*", "kubernetes.namespace_name") == \
        manifest.records_by_namespace
    # The tag lost its "raw." prefix like detect_exceptions' remove_tag_prefix did, so the
    # kubernetes.** filter enriched the records with what the API knows (labels).
    hits = es.request("POST", f"/{prefix}-*/_search", {
        "query": {"term": {"kubernetes.container_name": "productpage"}}, "size": 1})
    doc = hits["hits"]["hits"][0]["_source"]
    assert doc["tag"].startswith("kubernetes.")
    assert doc["kubernetes"]["labels"]["app"] == "productpage"
    assert es.count(f"{prefix}-*", {"match_phrase": {"message": "forwarded"}}) == FORWARDED


async def test_daemonset_files_ship_with_their_environment(node, es_url, tmp_path):
    logs, manifest = node
    config = converted(FIXTURES / "daemonset" / "fluent.conf")
    prefix = unique_prefix()
    url = urlsplit(es_url)
    environ = {  # what the DaemonSet's pod spec sets
        "FLUENT_ELASTICSEARCH_HOST": url.hostname or "",
        "FLUENT_ELASTICSEARCH_PORT": str(url.port),
        "FLUENT_ELASTICSEARCH_SCHEME": url.scheme,
        "FLUENT_ELASTICSEARCH_LOGSTASH_PREFIX": prefix,
        "FLUENT_CONTAINER_TAIL_PATH": f"{logs}/*.log",
    }
    with kubernetes_api(manifest) as k8s_url:
        localize(config, tmp_path, logs, k8s_url)
        sources = config["sources"]
        sources["in_tail_container_logs"]["include"] = \
            ["${FLUENT_CONTAINER_TAIL_PATH:-/var/log/containers/*.log}"]  # as converted
        es_output = config["outputs"]["out_es"]
        es_output["template_name"] = prefix
        speed_up(es_output)
        agent = Agent(load(config, environ))
        kept = {ns: n for ns, n in manifest.records_by_namespace.items() if ns != "shop"}
        expected = sum(kept.values())
        await run_until(agent, lambda: agent.settled_records("out_es") >= expected)

    assert agent.settled_records("out_es") == expected  # each line once
    es = search(es_url, prefix)
    assert es.terms(f"{prefix}-*", "kubernetes.namespace_name") == kept  # grep <exclude>
    # The parser filter became json_merge: the pino JSON lines of ratings are merged.
    hits = es.request("POST", f"/{prefix}-*/_search", {"query": {"bool": {"filter": [
        {"term": {"kubernetes.container_name": "ratings"}},
        {"match_phrase": {"log": "request completed"}}]}}, "size": 1})
    doc = hits["hits"]["hits"][0]["_source"]
    assert doc["msg"] == "request completed"
    assert doc["kubernetes"]["labels"]["app"] == "ratings"


async def test_logzio_config_ships_to_the_listener_and_elasticsearch(node, es_url, tmp_path):
    logs, manifest = node
    config = converted(FIXTURES / "logzio" / "fluent.conf")
    prefix = unique_prefix()
    with LogzioListener({TOKEN}) as listener, kubernetes_api(manifest) as k8s_url:
        localize(config, tmp_path, logs, k8s_url)
        logzio = config["outputs"]["out_logzio"]
        assert logzio["token"] == "${LOGZIO_TOKEN}" and logzio["buffer"]["type"] == "disk"
        del logzio["region"]
        logzio.update(listener=listener.url, ca_file=listener.ca_file)
        speed_up(logzio)
        config["outputs"]["es"] = {"type": "elasticsearch", "hosts": [es_url],
                                   "logstash_prefix": prefix, "template_name": prefix}
        speed_up(config["outputs"]["es"])
        agent = Agent(load(config, {"LOGZIO_TOKEN": TOKEN}))
        total = manifest.total_records
        await run_until(agent, lambda: agent.settled_records("out_logzio") >= total
                        and agent.settled_records("es") >= total)
        stored = list(listener.stored)

    assert len(stored) == total
    assert {r["type"] for r in stored} == {"k8s"}  # log_type from endpoint_url's type=k8s
    assert all(r["fluentd_tags"].startswith("logzio.kubernetes.") for r in stored)
    assert {r["kubernetes"]["namespace_name"] for r in stored} == \
        set(manifest.records_by_namespace)
    es = search(es_url, prefix)
    assert es.count(f"{prefix}-*") == total

