"""The envoy_access_log filter: which records it parses, what it adds, what it counts."""

from __future__ import annotations

from typing import Any

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError
from shipper.filters import parsers
from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.filters.merge import Merger, MergeRules
from shipper.metrics import Metrics
from shipper.record import Record
from tests.unit.filters.envoy.test_parse import JSON_OUTBOUND_503, TEXT_INBOUND_503

AGENT_LOG = "2024-10-25T07:40:31.916469Z\tinfo\txdsproxy\tconnected to delta upstream XDS server"


def record(line: str, kubernetes: dict[str, Any] | None) -> Record:
    body: dict[str, Any] = {"log": line, "stream": "stdout"}
    if kubernetes is not None:
        body["kubernetes"] = kubernetes
    return Record(body, 0, "kubernetes.var.log.containers.x.log")


def counts(metrics: Metrics, name: str = "envoy") -> dict[str, float]:
    out = {}
    for family in metrics.filter_records.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["filter"] == name:
                out[sample.labels["result"]] = sample.value
    return {k: v for k, v in out.items() if v}


def make(**overrides: Any) -> tuple[EnvoyAccessLogFilter, Metrics]:
    metrics = Metrics()
    return EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(**overrides), metrics), metrics


def test_sidecar_access_logs_get_envoy_fields_and_other_lines_pass_counted() -> None:
    f, metrics = make()
    proxy = {"namespace_name": "shop", "pod_name": "orders-1", "container_name": "istio-proxy"}
    records = [record(TEXT_INBOUND_503, proxy), record(AGENT_LOG, proxy),
               record(JSON_OUTBOUND_503, proxy)]
    out = f.process(records)
    assert out == records
    assert out[0].body["envoy"]["response_code"] == 503
    assert out[0].body["envoy"]["direction"] == "inbound"
    assert out[0].body["log"] == TEXT_INBOUND_503
    assert "envoy" not in out[1].body
    assert out[1].body == {"log": AGENT_LOG, "stream": "stdout", "kubernetes": proxy}
    assert out[2].body["envoy"]["response_flags"] == "UH"
    assert counts(metrics) == {"parsed": 2, "not_parsed": 1}


def test_application_containers_are_not_touched_even_when_their_lines_look_alike() -> None:
    f, metrics = make()
    app = {"namespace_name": "shop", "pod_name": "orders-1", "container_name": "orders"}
    r = record(TEXT_INBOUND_503, app)
    f.process([r])
    assert "envoy" not in r.body
    assert counts(metrics) == {}


def test_the_shared_kubernetes_dict_is_only_read() -> None:
    f, _ = make(keep_log=False)
    shared = {"namespace_name": "shop", "container_name": "istio-proxy",
              "labels": {"app": "orders"}}
    snapshot = {**shared, "labels": dict(shared["labels"])}
    records = [record(TEXT_INBOUND_503, shared), record(JSON_OUTBOUND_503, shared)]
    f.process(records)
    assert shared == snapshot
    assert all(r.body["kubernetes"] is shared for r in records)
    assert all("log" not in r.body and "envoy" in r.body for r in records)


@pytest.mark.parametrize("labels", [
    {"istio": "ingressgateway"},
    {"istio": "egressgateway", "app": "istio-egressgateway"},
    {"gateway.networking.k8s.io/gateway-name": "shop"},
    {"gateway_networking_k8s_io/gateway-name": "shop"},
    {"gateway_networking_k8s_io_gateway-name": "shop"},
])
def test_gateway_pods_are_selected_by_label_whatever_their_container(labels: dict[str, str],
                                                                      ) -> None:
    f, _ = make(pod_labels=["istio=ingressgateway", "istio=egressgateway",
                            "gateway.networking.k8s.io/gateway-name"])
    r = record(TEXT_INBOUND_503, {"container_name": "envoy", "labels": labels})
    f.process([r])
    assert r.body["envoy"]["method"] == "POST"


def test_a_label_with_another_value_does_not_select() -> None:
    f, _ = make()
    r = record(TEXT_INBOUND_503, {"container_name": "envoy", "labels": {"istio": "pilot"}})
    f.process([r])
    assert "envoy" not in r.body


def test_records_without_kubernetes_metadata_are_parsed_only_with_every_record() -> None:
    f, _ = make()
    g, _ = make(every_record=True)
    r1, r2 = record(TEXT_INBOUND_503, None), record(TEXT_INBOUND_503, None)
    f.process([r1])
    g.process([r2])
    assert "envoy" not in r1.body
    assert r2.body["envoy"]["upstream_cluster"] == "inbound|8080||"


def test_records_already_parsed_through_the_annotation_are_left_alone() -> None:
    f, metrics = make()
    r = record(TEXT_INBOUND_503, {"container_name": "istio-proxy"})
    r.body["envoy"] = {"method": "GET"}
    f.process([r])
    assert r.body["envoy"] == {"method": "GET"}
    assert counts(metrics) == {}


def test_a_non_string_log_field_is_counted_not_parsed() -> None:
    f, metrics = make()
    r = Record({"log": {"already": "parsed"}, "kubernetes": {"container_name": "istio-proxy"}},
               0, "t")
    f.process([r])
    assert counts(metrics) == {"not_parsed": 1}


def test_the_envoy_parser_is_in_the_registry_for_the_pod_annotation() -> None:
    parser = parsers.get("envoy")
    assert parser is not None
    parsed = parser(TEXT_INBOUND_503)
    assert parsed is not None and parsed["envoy"]["route_name"] == "default"


def test_the_filter_is_configured_by_type_in_the_filters_section() -> None:
    config = parse_agent_config("""
sources: {c: {type: tail, include: ["/var/log/containers/*.log"]}}
outputs: {o: {type: stdout}}
filters:
  envoy:
    type: envoy_access_log
    match: "kubernetes.**"
    pod_labels: ["istio=ingressgateway", "app"]
    keep_log: false
""")
    cfg = config.filters["envoy"]
    assert isinstance(cfg, EnvoyAccessLogConfig)
    assert cfg.container_names == ["istio-proxy"]
    assert cfg.keep_log is False


@pytest.mark.parametrize(("snippet", "message"), [
    ("container_names: []\n    pod_labels: []", "parses nothing"),
    ('pod_labels: ["=x"]', "key=value"),
    ('container_names: [" istio-proxy"]', "container names"),
    ("key_name: _source", "field name"),
])
def test_bad_settings_are_refused_with_the_key_path(snippet: str, message: str) -> None:
    text = ("sources: {c: {type: tail, include: [\"/x/*.log\"]}}\n"
            "outputs: {o: {type: stdout}}\n"
            f"filters:\n  envoy:\n    type: envoy_access_log\n    {snippet}\n")
    with pytest.raises(ConfigError) as err:
        parse_agent_config(text)
    assert "filters.envoy" in str(err.value)
    assert message in str(err.value)


def test_the_annotation_path_merges_the_same_fields_under_envoy() -> None:
    parser = parsers.get("envoy")
    assert parser is not None
    body: dict[str, Any] = {"log": TEXT_INBOUND_503, "kubernetes": {"container_name": "app"}}
    parsed = parser(TEXT_INBOUND_503)
    assert parsed is not None
    Merger(MergeRules()).merge(body, parsed)
    f, _ = make(every_record=True)
    direct = record(TEXT_INBOUND_503, None)
    f.process([direct])
    assert body["envoy"] == direct.body["envoy"]
    assert body["log"] == TEXT_INBOUND_503
