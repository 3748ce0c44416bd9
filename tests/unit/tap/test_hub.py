"""The tap inside the agent: bounded queues, counted drops, nothing ever blocks shipping."""

import logging
import random

import pytest

from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.metrics import Metrics
from shipper.pipeline import Pipeline, Route
from shipper.record import Batch, Record
from shipper.tap.config import TapConfig
from shipper.tap.hub import Tap, TapFull
from shipper.tap.query import TapQuery
from tests.unit.tap.traffic import (
    GATEWAY,
    ORDERS,
    PRODUCTPAGE,
    REVIEWS,
    Call,
    call_lines,
    call_records,
    record,
)


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels or None)


def traffic(n, code=200):
    records = []
    for i in range(n):
        records += call_records(Call(GATEWAY, ORDERS, code=code,
                                     request_id=f"rid-{code}-{i}"), seed=i)
    return records


def test_no_subscriber_means_inactive_and_a_subscriber_gets_what_it_asked_for():
    metrics = Metrics()
    tap = Tap(metrics, TapConfig(enabled=True))
    assert not tap.active
    sub = tap.subscribe(TapQuery.build(code="5xx"))
    assert tap.active and sample(metrics, "shipper_tap_subscribers") == 1
    tap.offer(traffic(3, 200) + traffic(2, 503) + [Record({"log": "not envoy"}, 0, "t")])
    events = sub.drain()
    assert len(events) == 4  # two calls, each logged by both sidecars
    assert {e["envoy"]["response_code"] for e in events} == {503}
    tap.unsubscribe(sub)
    assert not tap.active and sample(metrics, "shipper_tap_subscribers") == 0


def test_a_full_queue_drops_for_that_subscriber_only_and_counts():
    metrics = Metrics()
    tap = Tap(metrics, TapConfig(enabled=True, queue_records=5))
    slow = tap.subscribe(TapQuery())
    picky = tap.subscribe(TapQuery.build(direction="inbound"))
    tap.offer(traffic(4))  # 8 events: 4 inbound
    assert len(slow.drain()) == 5 and slow.dropped == 3
    assert len(picky.drain()) == 4 and picky.dropped == 0
    assert sample(metrics, "shipper_tap_records_total", result="dropped") == 3


def test_subscribers_are_bounded():
    tap = Tap(Metrics(), TapConfig(enabled=True, max_subscribers=2))
    tap.subscribe(TapQuery())
    tap.subscribe(TapQuery())
    with pytest.raises(TapFull):
        tap.subscribe(TapQuery())


def test_a_tap_event_does_not_change_when_the_record_does_later():
    tap = Tap(Metrics())
    sub = tap.subscribe(TapQuery())
    out_rec, _ = call_records(Call(PRODUCTPAGE, REVIEWS))
    tap.offer([out_rec])
    out_rec.body["envoy"]["path"] = "/changed"
    assert sub.drain()[0]["envoy"]["path"] == "/"


def test_a_failure_inside_the_tap_is_logged_once_and_never_raised(caplog):
    class Broken:
        def matches(self, event):
            raise RuntimeError("bug")

    tap = Tap(Metrics())
    tap.subscribe(Broken())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        tap.offer(traffic(1))
        tap.offer(traffic(1))
    assert [r.event for r in caplog.records] == ["tap_failed"]


async def test_take_waits_for_events_and_ends_after_close():
    tap = Tap(Metrics())
    sub = tap.subscribe(TapQuery())
    assert await sub.take(0) == []
    tap.offer(traffic(1))
    assert len(await sub.take(0)) == 2
    tap.close()
    assert await sub.take(0) is None and not tap.active


class _Buffer:
    def __init__(self):
        self.payloads = []

    async def put(self, payloads, group):
        self.payloads += payloads


class _Output:
    name = "out"

    def encode(self, records):
        return [r.body["log"].encode() for r in records]


def unparsed(n):
    records = []
    for i in range(n):
        out_line, in_line = call_lines(Call(GATEWAY, ORDERS, request_id=f"r{i}"),
                                       random.Random(i))
        records += [record(GATEWAY, out_line), record(ORDERS, in_line)]
    return records


async def test_the_pipeline_offers_records_after_the_filters_parsed_them():
    buffer = _Buffer()
    tap = Tap(Metrics())
    envoy = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), Metrics())
    pipeline = Pipeline([envoy], [Route(_Output(), buffer)], tap=tap)
    await pipeline.emit(Batch(unparsed(1)))  # nobody listens yet
    sub = tap.subscribe(TapQuery())
    await pipeline.emit(Batch(unparsed(2)))
    events = sub.drain()
    assert [e["envoy"]["request_id"] for e in events] == ["r0", "r0", "r1", "r1"]
    assert len(buffer.payloads) == 6  # shipping saw every record either way


async def test_an_idle_tap_is_not_called():
    class Idle:
        active = False

        def offer(self, records):
            raise AssertionError("an inactive tap must not be called")

    await Pipeline([], [Route(_Output(), _Buffer())], tap=Idle()).emit(  # type: ignore[arg-type]
        Batch(traffic(1)))
