"""What a tap line holds: the reporting pod, its workload, the peer, the parsed fields."""

from shipper.record import Record
from shipper.tap.event import peer_of, service_of, tap_event, workload_of
from tests.unit.tap.traffic import GATEWAY, ORDERS, PRODUCTPAGE, REVIEWS, Call, call_records


def test_the_workload_is_the_owner_name_derived_like_fluent_bit():
    assert workload_of("reviews-v2-7d79d5bd5d-mpsx4") == "reviews-v2"  # Deployment
    assert workload_of("orders-7d4b9c5f8-x2x5z") == "orders"
    assert workload_of("shipper-x2x5z") == "shipper"  # DaemonSet / Job: no template hash
    assert workload_of("elasticsearch-0") == "elasticsearch"  # StatefulSet ordinal
    assert workload_of("debug") == "debug"  # a bare pod is its own workload
    # A vowel cannot be in a generated suffix, so this is a name, not a hash.
    assert workload_of("api-aaaaa") == "api-aaaaa"


def test_a_service_fqdn_names_service_and_namespace_anything_else_is_a_host():
    assert service_of("orders.shop.svc.cluster.local") == {"service": "orders",
                                                            "namespace": "shop"}
    assert service_of("orders.shop.svc.cluster.local:8080")["service"] == "orders"
    assert service_of("api.stripe.com:443") == {"host": "api.stripe.com"}


def test_an_outbound_line_names_the_destination_service_and_endpoint():
    out_rec, _ = call_records(Call(PRODUCTPAGE, REVIEWS))
    event = tap_event(out_rec)
    assert event is not None
    assert event["direction"] == "outbound"
    assert (event["namespace"], event["workload"]) == ("bookinfo", "productpage-v1")
    assert event["peer"] == {"service": "reviews", "namespace": "bookinfo",
                             "address": REVIEWS.ip}


def test_an_inbound_line_knows_only_the_client_address():
    _, in_rec = call_records(Call(GATEWAY, ORDERS, path="/api/v1/orders", code=503,
                                  flags="UC"))
    event = tap_event(in_rec)
    assert event is not None
    assert event["direction"] == "inbound"
    assert event["pod"] == ORDERS.name and event["workload"] == "orders"
    assert event["peer"] == {"address": GATEWAY.ip}
    assert event["time"] == "2026-11-22T01:02:04.801Z"
    assert event["envoy"]["response_code"] == 503
    assert event["envoy"]["response_flags"] == "UC"
    assert event["container"] == "istio-proxy" and event["node"] == "node-1"


def test_passthrough_traffic_names_the_authority_host():
    envoy = {"direction": "outbound", "upstream_cluster": "PassthroughCluster",
             "authority": "api.stripe.com", "upstream_host": "52.1.2.3:443"}
    assert peer_of(envoy) == {"host": "api.stripe.com", "address": "52.1.2.3"}


def test_records_without_an_access_log_are_not_tap_events():
    assert tap_event(Record({"log": "hello"}, 0, "t")) is None
    assert tap_event(Record({"envoy": "not a dict"}, 0, "t")) is None


def test_without_a_start_time_the_record_time_is_used():
    event = tap_event(Record({"envoy": {"method": "GET"}}, 1_000_000_123, "t"))
    assert event is not None
    assert event["time"] == "1970-01-01T00:00:01.000000123Z"
    assert "namespace" not in event and event["peer"] == {}
