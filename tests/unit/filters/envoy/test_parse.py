"""Envoy / Istio access-log lines become ``envoy.*`` fields (spec §4.1-4.5)."""

from __future__ import annotations

from typing import Any

import pytest

from shipper.filters.envoy.parse import direction, parse_for_registry, parse_line

# Spec §4.5, text, outbound 200 from the client pod.
TEXT_OUTBOUND_200 = (
    '[2026-11-22T01:02:03.456Z] "GET /api/v1/items?limit=20 HTTP/1.1" 200 - via_upstream - "-" '
    '0 1834 12 11 "-" "python-requests/2.32.3" "6c1a0f8e-3b7d-9c4e-a1f2-8d0e5b7c9a31" '
    '"catalog.shop.svc.cluster.local:8080" "10.244.2.17:8080" '
    "outbound|8080||catalog.shop.svc.cluster.local 10.244.1.9:47810 10.96.143.22:8080 "
    "10.244.1.9:52344 - default")
# Spec §4.5, text, inbound 503 UC on the orders pod.
TEXT_INBOUND_503 = (
    '[2026-11-22T01:02:04.801Z] "POST /api/v1/orders HTTP/1.1" 503 UC '
    'upstream_reset_before_response_started{connection_termination} - "-" 512 95 3 - "-" '
    '"Go-http-client/2.0" "0e7b5d42-91a3-9f7c-b6d1-3c2e4a5f6b70" '
    '"orders.shop.svc.cluster.local:8080" "10.244.3.21:8080" inbound|8080|| 127.0.0.6:39551 '
    "10.244.3.21:8080 10.244.1.9:53718 outbound_.8080_._.orders.shop.svc.cluster.local default")
# Spec §4.5, JSON, inbound 200.
JSON_INBOUND_200 = (
    '{"start_time":"2026-11-22T01:02:03.458Z","method":"GET","path":"/api/v1/items?limit=20",'
    '"protocol":"HTTP/1.1","response_code":200,"response_flags":"-",'
    '"response_code_details":"via_upstream","connection_termination_details":null,'
    '"upstream_transport_failure_reason":null,"bytes_received":0,"bytes_sent":1834,'
    '"duration":9,"upstream_service_time":"8","x_forwarded_for":null,'
    '"user_agent":"python-requests/2.32.3","request_id":"6c1a0f8e-3b7d-9c4e-a1f2-8d0e5b7c9a31",'
    '"authority":"catalog.shop.svc.cluster.local:8080","upstream_host":"10.244.2.17:8080",'
    '"upstream_cluster":"inbound|8080||","upstream_local_address":"127.0.0.6:51201",'
    '"downstream_local_address":"10.244.2.17:8080","downstream_remote_address":"10.244.1.9:47810",'
    '"requested_server_name":"outbound_.8080_._.catalog.shop.svc.cluster.local",'
    '"route_name":"default"}')
# Spec §4.5, JSON, outbound 503 UH (no healthy endpoints).
JSON_OUTBOUND_503 = (
    '{"start_time":"2026-11-22T01:02:05.120Z","method":"POST","path":"/api/v1/orders",'
    '"protocol":"HTTP/1.1","response_code":503,"response_flags":"UH",'
    '"response_code_details":"no_healthy_upstream","connection_termination_details":null,'
    '"upstream_transport_failure_reason":null,"bytes_received":512,"bytes_sent":19,'
    '"duration":0,"upstream_service_time":null,"x_forwarded_for":null,'
    '"user_agent":"Go-http-client/1.1","request_id":"a3f9c2d1-7e4b-9d8a-b5c6-1f2e3d4c5b6a",'
    '"authority":"orders.shop.svc.cluster.local:8080","upstream_host":null,'
    '"upstream_cluster":"outbound|8080||orders.shop.svc.cluster.local",'
    '"upstream_local_address":null,"downstream_local_address":"10.96.201.7:8080",'
    '"downstream_remote_address":"10.244.1.9:40126","requested_server_name":null,'
    '"route_name":"default"}')
# Istio PR #27903: a TCP connection refused for want of a filter chain.
TEXT_TCP_NR = (
    '[2020-10-29T03:23:33.415Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" '
    '"-" "-" - - 172.17.0.7:80 172.17.0.6:59800 - -')
TEXT_IPV6 = (
    '[2026-11-22T01:02:06.000Z] "GET /healthz HTTP/2" 200 - via_upstream - "-" 0 2 1 1 '
    '"2001:db8::10" "curl/8.5.0" "id-1" "[fd00:10:96::a]:8080" "[fd00:10:244:1::17]:8080" '
    "outbound|8080||web.default.svc.cluster.local [fd00:10:244:1::9]:47810 "
    "[fd00:10:96::a]:8080 [fd00:10:244:1::9]:52344 - default")
TEXT_QUOTED_UA = (
    '[2026-11-22T01:02:07.000Z] "GET /search?q=x HTTP/1.1" 200 - via_upstream - "-" 0 10 4 3 '
    '"-" "Mozilla/5.0 (compatible; "quoted" bot) v1" "id-2" "shop.example.com" '
    '"10.244.2.17:8080" outbound|8080||web.default.svc.cluster.local 10.244.1.9:1 '
    "10.96.0.10:8080 10.244.1.9:2 - default")
TEXT_UPSTREAM_FAILURE = (
    '[2026-11-22T01:02:08.000Z] "GET /api HTTP/1.1" 503 UF,URX '
    'upstream_reset_before_response_started{connection_failure} - "delayed connect error: 111" '
    '0 91 30 - "-" "okhttp/4.12.0" "id-3" "catalog:8080" "10.244.2.17:8080" '
    "outbound|8080|v2|catalog.shop.svc.cluster.local - 10.96.0.11:8080 10.244.1.9:3 - default")
ENVOY_DEFAULT = (
    '[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 '
    '"10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" '
    '"tcp://10.0.2.1:80"')

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("text outbound 200", TEXT_OUTBOUND_200, {
        "start_time": "2026-11-22T01:02:03.456Z", "method": "GET",
        "path": "/api/v1/items?limit=20", "protocol": "HTTP/1.1", "response_code": 200,
        "response_code_details": "via_upstream", "bytes_received": 0, "bytes_sent": 1834,
        "duration_ms": 12, "upstream_service_time": 11, "user_agent": "python-requests/2.32.3",
        "request_id": "6c1a0f8e-3b7d-9c4e-a1f2-8d0e5b7c9a31",
        "authority": "catalog.shop.svc.cluster.local:8080", "upstream_host": "10.244.2.17:8080",
        "upstream_cluster": "outbound|8080||catalog.shop.svc.cluster.local",
        "upstream_local_address": "10.244.1.9:47810",
        "downstream_local_address": "10.96.143.22:8080",
        "downstream_remote_address": "10.244.1.9:52344", "route_name": "default",
        "direction": "outbound"}),
    ("text inbound 503 UC", TEXT_INBOUND_503, {
        "start_time": "2026-11-22T01:02:04.801Z", "method": "POST", "path": "/api/v1/orders",
        "protocol": "HTTP/1.1", "response_code": 503, "response_flags": "UC",
        "response_code_details": "upstream_reset_before_response_started{connection_termination}",
        "bytes_received": 512, "bytes_sent": 95, "duration_ms": 3,
        "user_agent": "Go-http-client/2.0", "request_id": "0e7b5d42-91a3-9f7c-b6d1-3c2e4a5f6b70",
        "authority": "orders.shop.svc.cluster.local:8080", "upstream_host": "10.244.3.21:8080",
        "upstream_cluster": "inbound|8080||", "upstream_local_address": "127.0.0.6:39551",
        "downstream_local_address": "10.244.3.21:8080",
        "downstream_remote_address": "10.244.1.9:53718",
        "requested_server_name": "outbound_.8080_._.orders.shop.svc.cluster.local",
        "route_name": "default", "direction": "inbound"}),
    ("json inbound 200", JSON_INBOUND_200, {
        "start_time": "2026-11-22T01:02:03.458Z", "method": "GET",
        "path": "/api/v1/items?limit=20", "protocol": "HTTP/1.1", "response_code": 200,
        "response_code_details": "via_upstream", "bytes_received": 0, "bytes_sent": 1834,
        "duration_ms": 9, "upstream_service_time": 8, "user_agent": "python-requests/2.32.3",
        "request_id": "6c1a0f8e-3b7d-9c4e-a1f2-8d0e5b7c9a31",
        "authority": "catalog.shop.svc.cluster.local:8080", "upstream_host": "10.244.2.17:8080",
        "upstream_cluster": "inbound|8080||", "upstream_local_address": "127.0.0.6:51201",
        "downstream_local_address": "10.244.2.17:8080",
        "downstream_remote_address": "10.244.1.9:47810",
        "requested_server_name": "outbound_.8080_._.catalog.shop.svc.cluster.local",
        "route_name": "default", "direction": "inbound"}),
    ("json outbound 503 UH", JSON_OUTBOUND_503, {
        "start_time": "2026-11-22T01:02:05.120Z", "method": "POST", "path": "/api/v1/orders",
        "protocol": "HTTP/1.1", "response_code": 503, "response_flags": "UH",
        "response_code_details": "no_healthy_upstream", "bytes_received": 512, "bytes_sent": 19,
        "duration_ms": 0, "user_agent": "Go-http-client/1.1",
        "request_id": "a3f9c2d1-7e4b-9d8a-b5c6-1f2e3d4c5b6a",
        "authority": "orders.shop.svc.cluster.local:8080",
        "upstream_cluster": "outbound|8080||orders.shop.svc.cluster.local",
        "downstream_local_address": "10.96.201.7:8080",
        "downstream_remote_address": "10.244.1.9:40126", "route_name": "default",
        "direction": "outbound"}),
    ("tcp placeholders", TEXT_TCP_NR, {
        "start_time": "2020-10-29T03:23:33.415Z", "response_code": 0, "response_flags": "NR",
        "response_code_details": "filter_chain_not_found", "bytes_received": 0,
        "bytes_sent": 0, "duration_ms": 0, "downstream_local_address": "172.17.0.7:80",
        "downstream_remote_address": "172.17.0.6:59800"}),
    ("plain envoy default format", ENVOY_DEFAULT, {
        "start_time": "2016-04-15T20:17:00.310Z", "method": "POST", "path": "/api/v1/locations",
        "protocol": "HTTP/2", "response_code": 204, "bytes_received": 154, "bytes_sent": 0,
        "duration_ms": 226, "upstream_service_time": 100, "x_forwarded_for": "10.0.35.28",
        "user_agent": "nsq2http", "request_id": "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2",
        "authority": "locations", "upstream_host": "tcp://10.0.2.1:80"}),
]


@pytest.mark.parametrize(("line", "expected"), [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_access_log_lines_become_typed_fields(line: str, expected: dict[str, Any]) -> None:
    assert parse_line(line) == expected


def test_text_and_json_encodings_give_the_same_field_names_and_types() -> None:
    text, encoded = parse_line(TEXT_OUTBOUND_200), parse_line(JSON_INBOUND_200)
    assert text is not None and encoded is not None
    for name in ("response_code", "bytes_received", "bytes_sent", "duration_ms",
                 "upstream_service_time"):
        assert type(text[name]) is int and type(encoded[name]) is int, name


def test_dash_placeholders_are_absent_never_the_string_dash() -> None:
    for _, line, _ in CASES:
        fields = parse_line(line)
        assert fields is not None
        assert "-" not in fields.values()
        assert None not in fields.values()


def test_ipv6_addresses_keep_their_brackets_and_ports() -> None:
    fields = parse_line(TEXT_IPV6)
    assert fields is not None
    assert fields["x_forwarded_for"] == "2001:db8::10"
    assert fields["authority"] == "[fd00:10:96::a]:8080"
    assert fields["upstream_host"] == "[fd00:10:244:1::17]:8080"
    assert fields["downstream_remote_address"] == "[fd00:10:244:1::9]:52344"
    assert fields["protocol"] == "HTTP/2"


def test_quotes_inside_the_user_agent_do_not_lose_the_line() -> None:
    fields = parse_line(TEXT_QUOTED_UA)
    assert fields is not None
    assert fields["user_agent"] == 'Mozilla/5.0 (compatible; "quoted" bot) v1'
    assert fields["request_id"] == "id-2"
    assert fields["duration_ms"] == 4


def test_quoted_failure_reasons_with_spaces_and_combined_flags() -> None:
    fields = parse_line(TEXT_UPSTREAM_FAILURE)
    assert fields is not None
    assert fields["upstream_transport_failure_reason"] == "delayed connect error: 111"
    assert fields["response_flags"] == "UF,URX"
    assert "upstream_service_time" not in fields
    assert "upstream_local_address" not in fields


def test_json_upstream_cluster_loses_the_trailing_semicolon_of_old_istio() -> None:
    cluster = '"upstream_cluster":"outbound|8080||orders.shop.svc.cluster.local'
    line = JSON_OUTBOUND_503.replace(cluster + '"', cluster + ';"')
    fields = parse_line(line)
    assert fields is not None
    assert fields["upstream_cluster"] == "outbound|8080||orders.shop.svc.cluster.local"


def test_json_keys_in_any_order_and_custom_formats_are_accepted() -> None:
    line = ('{"upstream_cluster":"outbound|80||a.b.svc.cluster.local","x_custom":"log only",'
            '"start_time":"2026-11-22T01:00:00Z","duration":"7","response_code":"404"}')
    assert parse_line(line) == {
        "upstream_cluster": "outbound|80||a.b.svc.cluster.local",
        "start_time": "2026-11-22T01:00:00Z", "duration_ms": 7, "response_code": 404,
        "direction": "outbound"}


def test_json_values_of_the_wrong_type_are_dropped_or_stringified() -> None:
    line = ('{"start_time":"yesterday","response_code":"n/a","bytes_sent":true,'
            '"method":7,"route_name":{"a":1},"upstream_cluster":"inbound|80||"}')
    assert parse_line(line) == {"method": "7", "route_name": '{"a":1}',
                                "upstream_cluster": "inbound|80||", "direction": "inbound"}


@pytest.mark.parametrize("line", [
    "",
    "2024-07-25T20:12:56.156565Z\tinfo\tads\tADS: new connection for node:x",
    "2025-09-10T03:25:28.175680Z\twarning\tenvoy main external/envoy/source/server/"
    "server.cc:959\tThere is no configured limit\tthread=16",
    '{"level":"info","time":"2024-07-25T20:12:56.156565Z","scope":"ads","msg":"push"}',
    '{"start_time": "2026-11-22T01:00:00Z"}',
    "{not json",
    '["start_time", "response_code"]',
    "[2021-11-03 17:22:43.361][1678][info][main] [source/server/server.cc:370] statically",
    '[2026-11-22T01:02:03.456Z] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 1 2',
    "FLAG: --concurrency=\"2\"",
])
def test_other_lines_of_the_container_are_not_access_logs(line: str) -> None:
    assert parse_line(line) is None


def test_a_long_line_that_matches_no_pattern_is_refused_quickly() -> None:
    # 20k quote characters: the tolerant pattern must not backtrack exponentially.
    line = '[2026-11-22T01:02:03.456Z] "GET /x HTTP/1.1" 200 - - - "-" 0 1 2 3 "-" "' + '"' * 20_000
    assert parse_line(line) is None


def test_a_start_time_that_is_not_iso_is_left_out_so_the_date_mapping_holds() -> None:
    line = TEXT_OUTBOUND_200.replace("2026-11-22T01:02:03.456Z", "2026-11-22Tgarbage", 1)
    fields = parse_line(line)
    assert fields is not None
    assert "start_time" not in fields
    assert fields["response_code"] == 200


@pytest.mark.parametrize(("cluster", "sni", "expected"), [
    ("outbound|9080|v1|reviews.bookinfo.svc.cluster.local", None, "outbound"),
    ("inbound|9080||", None, "inbound"),
    ("inbound|9080|http|reviews.bookinfo.svc.cluster.local", None, "inbound"),
    ("PassthroughCluster", None, "outbound"),
    ("BlackHoleCluster", None, "outbound"),
    ("InboundPassthroughClusterIpv4", None, "inbound"),
    (None, "outbound_.8000_._.httpbin.foo.svc.cluster.local", "inbound"),
    (None, "api.example.com", None),
    (None, None, None),
])
def test_direction_comes_from_the_upstream_cluster(cluster: str | None, sni: str | None,
                                                   expected: str | None) -> None:
    assert direction(cluster, sni) == expected


def test_the_registry_form_nests_the_fields_under_envoy() -> None:
    assert parse_for_registry(TEXT_INBOUND_503) == {"envoy": parse_line(TEXT_INBOUND_503)}
    assert parse_for_registry("plain text") is None
