import asyncio

import orjson
import pytest

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import MemoryBuffer
from shipper.metrics import Metrics
from shipper.pipeline import Pipeline, Route
from shipper.record import Batch, Record


class JsonOutput:
    def __init__(self, name):
        self.name = name

    def encode(self, records):
        return [orjson.dumps(r.body) for r in records]


class Upper:
    def process(self, records):
        return [Record({**r.body, "log": r.body["log"].upper()}, r.time_ns, r.tag, r.doc_id)
                for r in records]


def buffer(name):
    return MemoryBuffer(name, BufferConfig(flush_interval_secs=3600), Metrics())


async def test_records_are_filtered_then_routed_by_tag_and_acked_after_both_outputs():
    kube, app = buffer("kube"), buffer("app")
    pipeline = Pipeline([Upper()], [Route(JsonOutput("kube"), kube, "kube.**"),
                                    Route(JsonOutput("app"), app, "app.*")])
    acked = []
    group = AckGroup(on_safe=acked.append)
    records = [Record({"log": "a"}, 0, "kube.var.log.x"), Record({"log": "b"}, 0, "app.web"),
               Record({"log": "c"}, 0, "other")]
    await pipeline.emit(Batch(records, group))
    kube.close()
    app.close()
    k, a = await kube.get(), await app.get()
    assert k.payloads == [b'{"log":"A"}']
    assert a.payloads == [b'{"log":"B"}']
    kube.settle(k)
    assert acked == []
    app.settle(a)
    assert acked == [group]


async def test_a_batch_no_output_wants_is_acked_at_once():
    pipeline = Pipeline([], [Route(JsonOutput("x"), buffer("x"), "nothing.*")])
    acked = []
    group = AckGroup(on_safe=acked.append)
    await pipeline.emit(Batch([Record({"log": "a"}, 0, "kube.a")], group))
    assert acked == [group]


# -- every way a batch can end ------------------------------------------------------------
# Sealed (safe once every buffer released it) only when every route's put returned; any other
# end abandons the group, so no part of the batch is acknowledged.

def small_buffer(name, limit, when_full="block"):
    return MemoryBuffer(name, BufferConfig(flush_interval_secs=3600, total_limit_bytes=limit,
                                           when_full=when_full), Metrics())


def records_of(n, tag="kube.a"):
    return [Record({"log": f"line-{i:04d}"}, 0, tag) for i in range(n)]


async def drain(buf):
    """Settle every chunk the buffer has, as delivery would after a success."""
    buf.close()
    while (chunk := await buf.get()) is not None:
        buf.settle(chunk)


async def test_a_put_cancelled_on_a_full_buffer_leaves_the_batch_unacknowledged():
    buf = small_buffer("x", limit=60)  # room for 3 of the 10 payloads (~20 bytes each)
    pipeline = Pipeline([], [Route(JsonOutput("x"), buf)])
    acked = []
    group = AckGroup(on_safe=acked.append)
    task = asyncio.create_task(pipeline.emit(Batch(records_of(10), group)))
    await asyncio.sleep(0.01)
    assert not task.done() and buf.bytes_used > 0  # part of the batch entered, then blocked
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drain(buf)  # the part that entered is delivered and settled...
    assert acked == [] and group.abandoned  # ...but the batch is not safe: 7 records never entered
    assert pipeline.abandoned_records == 10


async def test_a_second_output_cut_short_keeps_the_first_outputs_share_from_acking():
    first, second = buffer("first"), small_buffer("second", limit=20)
    pipeline = Pipeline([], [Route(JsonOutput("first"), first),
                             Route(JsonOutput("second"), second)])
    acked = []
    group = AckGroup(on_safe=acked.append)
    task = asyncio.create_task(pipeline.emit(Batch(records_of(5), group)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drain(first)
    await drain(second)
    assert acked == []


class Failing:
    def __init__(self, name="x"):
        self.name = name

    def encode(self, records):
        raise ValueError("encoder bug")

    def process(self, records):
        raise ValueError("filter bug")


async def test_an_encoder_that_raises_abandons_the_batch():
    pipeline = Pipeline([], [Route(Failing(), buffer("x"))])
    group = AckGroup(on_safe=lambda g: pytest.fail("acknowledged"))
    with pytest.raises(ValueError):
        await pipeline.emit(Batch(records_of(2), group))
    assert group.abandoned


async def test_a_filter_that_raises_abandons_the_batch():
    pipeline = Pipeline([Failing()], [Route(JsonOutput("x"), buffer("x"))])
    group = AckGroup(on_safe=lambda g: pytest.fail("acknowledged"))
    with pytest.raises(ValueError):
        await pipeline.emit(Batch(records_of(2), group))
    assert group.abandoned


async def test_a_put_into_a_closed_buffer_abandons_the_batch():
    ok, closed = buffer("ok"), buffer("closed")
    closed.close()
    pipeline = Pipeline([], [Route(JsonOutput("ok"), ok), Route(JsonOutput("closed"), closed)])
    acked = []
    group = AckGroup(on_safe=acked.append)
    with pytest.raises(RuntimeError):
        await pipeline.emit(Batch(records_of(2), group))
    await drain(ok)
    assert acked == [] and group.abandoned


async def test_drop_newest_is_an_explicit_end_safe_with_the_drops_counted():
    buf = small_buffer("x", limit=60, when_full="drop_newest")
    pipeline = Pipeline([], [Route(JsonOutput("x"), buf)])
    acked = []
    group = AckGroup(on_safe=acked.append)
    await pipeline.emit(Batch(records_of(10), group))
    await drain(buf)
    assert acked == [group] and group.dropped == 7
    assert pipeline.abandoned_records == 0
