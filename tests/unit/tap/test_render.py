"""What shipper tap prints: one readable line per request, or JSON for jq."""

import orjson

from shipper.tap.event import tap_event
from shipper.tap.pair import Pair
from shipper.tap.render import json_line, text_line
from tests.unit.tap.traffic import GATEWAY, ORDERS, Call, call_records


def events(**kw):
    return [tap_event(r) for r in call_records(Call(GATEWAY, ORDERS, **kw))]


def test_one_line_per_sidecar_line_with_source_and_destination():
    out_ev, in_ev = events(method="POST", path="/api/v1/orders", code=503, flags="UC",
                           client_ms=40, server_ms=3)
    assert text_line(out_ev) == ("2026-11-22T01:02:04.801Z istio-system/istio-ingressgateway "
                                 "-> shop/orders POST /api/v1/orders 503 UC 40ms out")
    assert text_line(in_ev) == (f"2026-11-22T01:02:04.801Z {GATEWAY.ip} -> shop/orders "
                                "POST /api/v1/orders 503 UC 3ms in")


def test_a_pair_shows_both_durations_and_who_called_whom():
    out_ev, in_ev = events(code=200, client_ms=40, server_ms=3)
    line = text_line(Pair(out_ev, in_ev))
    assert line == ("2026-11-22T01:02:04.801Z istio-system/istio-ingressgateway -> shop/orders "
                    "GET / 200 - client 40ms server 3ms")


def test_a_pair_shows_the_server_outcome_when_it_differs():
    out_ev, in_ev = events(code=200)
    out_ev["envoy"]["response_code"], out_ev["envoy"]["response_flags"] = 504, "UT"
    assert "504 UT (server 200 -)" in text_line(Pair(out_ev, in_ev))


def test_long_paths_are_cut_and_tcp_has_no_method():
    out_ev, _ = events(path="/" + "x" * 500)
    assert len(text_line(out_ev)) < 260
    tcp = {"time": "t", "direction": "outbound", "peer": {"address": "10.0.0.1"},
           "envoy": {"duration_ms": 5}}
    assert text_line(tcp) == "t ? -> 10.0.0.1 TCP - - - 5ms out"


def test_json_is_the_event_and_a_pair_names_its_request_id():
    out_ev, in_ev = events(request_id="abc")
    assert orjson.loads(json_line(in_ev)) == in_ev
    pair = orjson.loads(json_line(Pair(out_ev, in_ev)))
    assert pair["request_id"] == "abc" and pair["client"] == out_ev
