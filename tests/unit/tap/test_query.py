"""Server-side tap filters: parsing, the wire form, and what matches."""

import pytest

from shipper.tap.event import tap_event
from shipper.tap.query import TapQuery, parse_codes
from tests.unit.tap.traffic import (
    GATEWAY,
    ORDERS,
    PRODUCTPAGE,
    RATINGS,
    REVIEWS,
    Call,
    call_records,
)


def events(call):
    out_rec, in_rec = call_records(call)
    return tap_event(out_rec), tap_event(in_rec)


def test_code_ranges_single_codes_and_classes():
    assert parse_codes("500-599,429") == ((500, 599), (429, 429))
    assert parse_codes("5xx, 404") == ((500, 599), (404, 404))
    for bad in ("abc", "600-500", "", "1000", "5-"):
        with pytest.raises(ValueError):
            parse_codes(bad)


@pytest.mark.parametrize("bad", ["6xx", "0xx", "9xx", "999", "600-700", "500-600", "600",
                                 "99", "1-99", "50-599"])
def test_codes_no_request_can_have_are_refused(bad):
    with pytest.raises(ValueError, match="response code"):
        parse_codes(bad)


def test_no_response_and_the_edges_of_the_http_range_are_accepted():
    assert parse_codes("0,100,599,1xx,0-599") == (
        (0, 0), (100, 100), (599, 599), (100, 199), (0, 599))


def test_unknown_parameters_are_refused_not_ignored():
    with pytest.raises(ValueError, match="unknown tap parameter 'namspace'"):
        TapQuery.parse("namspace=shop")
    with pytest.raises(ValueError, match="direction"):
        TapQuery.parse("direction=sideways")


def test_the_query_string_round_trips():
    query = TapQuery.build(namespace="shop", workload="orders", method="get,post",
                           code="500-599,429", path="/api/v1", authority="Orders:8080",
                           direction="inbound")
    assert TapQuery.parse(query.to_query_string()) == query
    assert TapQuery.parse("") == TapQuery()
    assert TapQuery.parse("method=GET&method=POST").methods == {"GET", "POST"}


def test_method_code_path_authority_and_direction_filters():
    out_ev, in_ev = events(Call(GATEWAY, ORDERS, method="POST", path="/api/v1/orders/7",
                                code=503, flags="UC"))
    assert TapQuery.build(method="post").matches(in_ev)
    assert not TapQuery.build(method="GET").matches(in_ev)
    assert TapQuery.build(code="500-599,429").matches(in_ev)
    assert not TapQuery.build(code="429").matches(in_ev)
    assert TapQuery.build(path="/api/v1/orders").matches(in_ev)
    assert not TapQuery.build(path="/api/v2").matches(in_ev)
    assert TapQuery.build(authority="orders").matches(in_ev)  # any port
    assert TapQuery.build(authority="orders:8080").matches(in_ev)
    assert not TapQuery.build(authority="orders:9090").matches(in_ev)
    assert TapQuery.build(direction="inbound").matches(in_ev)
    assert not TapQuery.build(direction="inbound").matches(out_ev)


def test_a_workload_matches_requests_to_or_from_it():
    to_reviews = events(Call(PRODUCTPAGE, REVIEWS))
    from_reviews = events(Call(REVIEWS, RATINGS))
    query = TapQuery.build(namespace="bookinfo", workload="reviews-v2")
    # Its own sidecar's lines, both directions.
    assert query.matches(to_reviews[1]) and query.matches(from_reviews[0])
    # The server's own inbound line of a call from reviews is not about reviews' workload.
    assert not query.matches(from_reviews[1])
    # The caller's outbound line names the Service, so the Service name matches it.
    assert TapQuery.build(workload="reviews").matches(to_reviews[0])
    assert not TapQuery.build(workload="reviews", namespace="shop").matches(to_reviews[0])


def test_a_namespace_matches_calls_into_it_from_elsewhere():
    gateway_out, orders_in = events(Call(GATEWAY, ORDERS))
    shop = TapQuery.build(namespace="shop")
    assert shop.matches(orders_in) and shop.matches(gateway_out)
    assert not TapQuery.build(namespace="bookinfo").matches(gateway_out)


def test_a_pod_matches_only_its_own_sidecar_lines():
    gateway_out, orders_in = events(Call(GATEWAY, ORDERS))
    query = TapQuery.build(pod=ORDERS.name)
    assert query.matches(orders_in)
    assert not query.matches(gateway_out)
    assert not TapQuery.build(pod=ORDERS.name, namespace="other").matches(orders_in)
