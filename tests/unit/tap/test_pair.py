"""--pair: the client's and the server's line of one request, joined; bounded waiting."""

import random

from shipper.tap.event import tap_event
from shipper.tap.pair import Pair, Pairer
from tests.unit.tap.traffic import (
    GATEWAY,
    ORDERS,
    PRODUCTPAGE,
    RATINGS,
    REVIEWS,
    Call,
    call_records,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def events(call, seed=1):
    return [tap_event(r) for r in call_records(call, seed)]


def test_the_two_sides_of_a_request_become_one_pair_in_either_order():
    out_ev, in_ev = events(Call(GATEWAY, ORDERS, request_id="a"))
    pairer = Pairer(clock=Clock())
    assert pairer.add(in_ev) == []
    [pair] = pairer.add(out_ev)
    assert pair == Pair(client=out_ev, server=in_ev) and pairer.pending == 0
    assert Pairer().add(out_ev) == []


def test_a_forwarded_request_id_pairs_each_hop_with_its_own_server():
    # productpage -> reviews -> ratings, all with one x-request-id (the app forwards it).
    first = events(Call(PRODUCTPAGE, REVIEWS, request_id="same"), seed=1)
    second = events(Call(REVIEWS, RATINGS, request_id="same"), seed=2)
    pairer = Pairer(clock=Clock())
    # The arrival order that fools a pairing by request id alone: reviews' own two lines.
    assert pairer.add(first[1]) == []  # reviews inbound
    assert pairer.add(second[0]) == []  # reviews outbound: same pod, never its own pair
    [hop2] = pairer.add(second[1])  # ratings inbound
    [hop1] = pairer.add(first[0])  # productpage outbound
    assert (hop1.client["workload"], hop1.server["workload"]) == ("productpage-v1",
                                                                  "reviews-v2")
    assert (hop2.client["workload"], hop2.server["workload"]) == ("reviews-v2", "ratings-v1")


def test_without_addresses_the_service_name_decides():
    out_ev, in_ev = events(Call(PRODUCTPAGE, REVIEWS, request_id="b"))
    del out_ev["envoy"]["upstream_host"]
    pairer = Pairer(clock=Clock())
    pairer.add(in_ev)
    assert len(pairer.add(out_ev)) == 1  # Service reviews, workload reviews-v2

    out2, in2 = events(Call(PRODUCTPAGE, REVIEWS, request_id="c"))
    del out2["envoy"]["upstream_host"]
    in2["workload"] = "details-v1"
    pairer.add(in2)
    assert pairer.add(out2) == []


def test_a_line_without_partner_is_printed_alone_after_the_window():
    clock = Clock()
    pairer = Pairer(window_secs=5, clock=clock)
    out_ev, _ = events(Call(GATEWAY, ORDERS, request_id="lonely"))
    pairer.add(out_ev)
    clock.now += 4.9
    assert pairer.expire() == []
    clock.now += 0.2
    assert pairer.expire() == [out_ev] and pairer.pending == 0


def test_waiting_lines_are_bounded_oldest_first():
    pairer = Pairer(max_pending=3, clock=Clock())
    lines = [events(Call(GATEWAY, ORDERS, request_id=f"r{i}"), seed=i)[0] for i in range(5)]
    released = []
    for line in lines:
        released += pairer.add(line)
    assert released == lines[:2] and pairer.pending == 3
    assert pairer.drain() == lines[2:] and pairer.pending == 0


def test_lines_without_request_id_pass_straight_through():
    out_ev, _ = events(Call(GATEWAY, ORDERS))
    del out_ev["envoy"]["request_id"]
    assert Pairer().add(out_ev) == [out_ev]


def test_many_interleaved_requests_all_pair():
    rng = random.Random(7)
    lines = []
    for i in range(200):
        lines += events(Call(GATEWAY, ORDERS, request_id=f"id-{i}"), seed=i)
    rng.shuffle(lines)
    pairer = Pairer(clock=Clock())
    pairs = [item for line in lines for item in pairer.add(line)]
    assert len(pairs) == 200 and all(isinstance(p, Pair) for p in pairs)
    assert all(p.client["envoy"]["request_id"] == p.server["envoy"]["request_id"]
               for p in pairs if isinstance(p, Pair))
