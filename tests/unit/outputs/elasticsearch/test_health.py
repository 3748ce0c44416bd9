"""Server detection, the template per product, and readiness state (spec §1.7, §1.9)."""

from __future__ import annotations

import orjson
import pytest

from outputs.elasticsearch.health import (
    TEMPLATE_PRIORITY,
    Health,
    ServerInfo,
    index_pattern,
    parse_root,
    template_request,
)
from shipper.protocols import ItemError, Outcome, Status

ES_8 = orjson.dumps({
    "name": "node-1", "cluster_name": "docker-cluster", "tagline": "You Know, for Search",
    "version": {"number": "8.15.3", "build_flavor": "default", "lucene_version": "9.11.1"}})
ES_7_OSS = orjson.dumps({"tagline": "You Know, for Search",
                         "version": {"number": "7.10.2", "build_flavor": "oss"}})
OPENSEARCH_2 = orjson.dumps({
    "tagline": "The OpenSearch Project: https://opensearch.org/",
    "version": {"distribution": "opensearch", "number": "2.16.0",
                "minimum_wire_compatibility_version": "7.10.0"}})
# compatibility.override_main_response_version: the number lies, the tagline does not.
OPENSEARCH_PRETENDING = orjson.dumps({
    "tagline": "The OpenSearch Project: https://opensearch.org/",
    "version": {"number": "7.10.2", "build_flavor": "default"}})


def es(version: str) -> ServerInfo:
    major, minor, patch = (int(p) for p in version.split("."))
    return ServerInfo("elasticsearch", (major, minor, patch), version)


def opensearch(version: str) -> ServerInfo:
    major, minor, patch = (int(p) for p in version.split("."))
    return ServerInfo("opensearch", (major, minor, patch), version)


def kubernetes_mapping(body: dict[str, object]) -> dict[str, dict[str, object]]:
    template = body.get("template", body)
    return template["mappings"]["properties"]["kubernetes"]["properties"]  # type: ignore[index,return-value]


def test_elasticsearch_is_recognized_with_its_version() -> None:
    info = parse_root(ES_8)
    assert (info.product, info.version, info.oss) == ("elasticsearch", (8, 15, 3), False)
    assert str(info) == "Elasticsearch 8.15.3"


def test_opensearch_is_recognized_by_distribution() -> None:
    info = parse_root(OPENSEARCH_2)
    assert (info.product, info.version) == ("opensearch", (2, 16, 0))


def test_opensearch_is_recognized_by_tagline_when_it_reports_an_es_version() -> None:
    assert parse_root(OPENSEARCH_PRETENDING).product == "opensearch"


def test_oss_builds_are_flagged() -> None:
    assert parse_root(ES_7_OSS).oss


def test_snapshot_versions_parse() -> None:
    body = orjson.dumps({"version": {"number": "9.1.0-SNAPSHOT"}})
    assert parse_root(body).version == (9, 1, 0)


@pytest.mark.parametrize("body", [b"<html>nginx</html>", b"{}", b'{"version": {}}',
                                  b'{"version": {"number": "x"}}'])
def test_anything_else_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_root(body)


@pytest.mark.parametrize(("info", "expected"), [
    (es("8.15.3"), "flattened"),
    (es("9.0.0"), "flattened"),
    (es("7.3.0"), "flattened"),
    (opensearch("2.7.0"), "flat_object"),
    (opensearch("3.0.0"), "flat_object"),
])
def test_labels_are_flattened_where_the_server_can(info: ServerInfo, expected: str) -> None:
    _, body = template_request(info, "t", "logstash-*")
    kubernetes = kubernetes_mapping(body)
    for key in ("labels", "annotations", "namespace_labels"):
        assert kubernetes[key]["type"] == expected


@pytest.mark.parametrize("info", [
    es("7.2.0"), opensearch("1.3.0"), opensearch("2.6.0"),
    ServerInfo("elasticsearch", (7, 10, 2), "7.10.2", oss=True)])
def test_labels_are_stored_unindexed_where_the_server_cannot(info: ServerInfo) -> None:
    _, body = template_request(info, "t", "logstash-*")
    assert kubernetes_mapping(body)["labels"] == {"type": "object", "enabled": False}


def test_the_composable_template_has_the_fluentd_field_types() -> None:
    path, body = template_request(es("8.15.3"), "shipper-logstash", "logstash-*")
    assert path == "/_index_template/shipper-logstash"
    assert body["index_patterns"] == ["logstash-*"]
    assert body["priority"] == TEMPLATE_PRIORITY > 100
    mappings = body["template"]["mappings"]
    assert mappings["date_detection"] is False
    props = mappings["properties"]
    assert props["@timestamp"] == {"type": "date"}
    assert props["time"] == {"type": "keyword"}
    assert props["log"] == props["message"] == {"type": "text"}
    assert props["stream"] == props["tag"] == {"type": "keyword"}
    assert props["docker"]["properties"]["container_id"] == {"type": "keyword"}
    kubernetes = props["kubernetes"]["properties"]
    for key in ("namespace_name", "pod_name", "container_name", "container_image", "host",
                "pod_id", "namespace_id"):
        assert kubernetes[key] == {"type": "keyword"}, key


def test_envoy_access_log_fields_are_numbers_keywords_and_a_date() -> None:
    _, body = template_request(es("8.15.3"), "shipper-logstash", "logstash-*")
    envoy = body["template"]["mappings"]["properties"]["envoy"]["properties"]
    assert envoy["response_code"] == {"type": "integer"}
    for key in ("bytes_received", "bytes_sent", "duration_ms", "upstream_service_time"):
        assert envoy[key] == {"type": "long"}, key
    assert envoy["start_time"] == {"type": "date"}
    assert envoy["path"]["type"] == "keyword"
    assert envoy["path"]["fields"] == {"text": {"type": "text"}}
    # A multi-kilobyte path must not get the document rejected (Lucene's 32766-byte term cap).
    assert envoy["path"]["ignore_above"] <= 8191
    assert envoy["upstream_cluster"]["type"] == envoy["direction"]["type"] == "keyword"


def test_servers_older_than_7_8_get_a_legacy_template() -> None:
    path, body = template_request(es("7.7.1"), "shipper-logstash", "logstash-*")
    assert path == "/_template/shipper-logstash"
    assert body["index_patterns"] == ["logstash-*"]
    assert "template" not in body
    assert body["mappings"]["properties"]["log"] == {"type": "text"}


def test_opensearch_1_uses_composable_templates() -> None:
    path, _ = template_request(opensearch("1.3.0"), "t", "logstash-*")
    assert path == "/_index_template/t"


def test_the_ilm_policy_is_only_sent_to_elasticsearch() -> None:
    _, es_body = template_request(es("8.15.3"), "t", "logstash-*", ilm_policy="logs-7d")
    _, os_body = template_request(opensearch("2.16.0"), "t", "logstash-*", ilm_policy="logs-7d")
    assert es_body["template"]["settings"] == {"index.lifecycle.name": "logs-7d"}
    assert "index.lifecycle.name" not in orjson.dumps(os_body).decode()


def test_the_pattern_covers_the_daily_indices_or_the_fixed_index() -> None:
    assert index_pattern(True, "K8s", "-", None) == "k8s-*"
    assert index_pattern(False, "logstash", "-", "Cluster-Logs") == "cluster-logs"
    with pytest.raises(ValueError):
        index_pattern(False, "logstash", "-", None)


def test_health_is_ready_once_started_and_records_the_last_success() -> None:
    health = Health(_clock=lambda: 1234.5)
    assert not health.ready
    health.started = True
    health.observe(Outcome([Status.DELIVERED], http_status=200))
    assert health.ready
    assert health.last_success == 1234.5


def test_rejected_credentials_make_health_say_so_until_a_request_succeeds() -> None:
    health = Health(started=True, _clock=lambda: 1.0)
    health.observe(Outcome.all(2, Status.RETRY, ItemError(401, "security_exception", "bad"),
                               http_status=401))
    assert health.credentials_rejected
    assert not health.ready
    assert health.snapshot()["last_error"] == "401 security_exception: bad"
    health.observe(Outcome([Status.DELIVERED], http_status=200))
    assert not health.credentials_rejected
    assert health.ready


def test_connection_errors_do_not_touch_the_credentials_flag() -> None:
    health = Health(started=True, credentials_rejected=True)
    health.observe(Outcome.all(1, Status.RETRY, ItemError(0, "connection_error", "refused")))
    assert health.credentials_rejected
    assert health.last_error == "0 connection_error: refused"
    assert health.last_success is None
