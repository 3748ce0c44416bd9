import asyncio

import pytest

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import MemoryBuffer
from shipper.metrics import Metrics


def make(**kw) -> tuple[MemoryBuffer, Metrics]:
    m = Metrics()
    cfg = BufferConfig(**{"flush_interval_secs": 3600.0, **kw})
    return MemoryBuffer("out", cfg, m), m


async def test_chunks_close_at_the_byte_limit_and_keep_order():
    buf, _ = make(chunk_limit_bytes=10, total_limit_bytes=1000)
    await buf.put([b"aaaa", b"bbbb", b"cccc", b"dd"], None)
    first = await buf.get()
    assert first.payloads == [b"aaaa", b"bbbb"]
    buf.close()
    second = await buf.get()
    assert second.payloads == [b"cccc", b"dd"]
    assert await buf.get() is None


async def test_chunks_close_at_the_record_limit():
    buf, _ = make(chunk_limit_records=2)
    await buf.put([b"a", b"b", b"c"], None)
    assert (await buf.get()).payloads == [b"a", b"b"]


async def test_open_chunk_is_flushed_after_the_interval():
    buf, _ = make(flush_interval_secs=0.05)
    await buf.put([b"x"], None)
    chunk = await asyncio.wait_for(buf.get(), 2)
    assert chunk.payloads == [b"x"]


async def test_ack_group_released_only_when_every_chunk_is_settled():
    buf, _ = make(chunk_limit_records=2)
    acked = []
    g = AckGroup(on_safe=acked.append)
    await buf.put([b"1", b"2", b"3"], g)
    g.seal()
    buf.close()
    c1 = await buf.get()
    c2 = await buf.get()
    buf.settle(c1)
    assert acked == []
    buf.settle(c2)
    assert acked == [g]
    assert buf.bytes_used == 0


async def test_block_policy_waits_for_space_instead_of_growing():
    buf, _ = make(total_limit_bytes=8, chunk_limit_bytes=4)
    await buf.put([b"1234", b"5678"], None)
    blocked = asyncio.create_task(buf.put([b"9999"], None))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    assert buf.bytes_used == 8
    chunk = await buf.get()
    buf.settle(chunk)
    await asyncio.wait_for(blocked, 1)
    assert buf.bytes_used == 8


async def test_drop_newest_counts_exactly_what_it_drops():
    buf, m = make(total_limit_bytes=8, chunk_limit_bytes=8, when_full="drop_newest")
    g = AckGroup()
    await buf.put([b"1234", b"5678", b"abcd", b"efgh"], g)
    assert buf.bytes_used == 8
    assert g.dropped == 2
    value = m.registry.get_sample_value("shipper_records_dropped_total",
                                        {"output": "out", "reason": "buffer_full"})
    assert value == 2


async def test_a_record_larger_than_the_buffer_is_admitted_alone_not_lost():
    buf, _ = make(total_limit_bytes=4, chunk_limit_bytes=2)
    await asyncio.wait_for(buf.put([b"0123456789"], None), 1)
    assert (await buf.get()).payloads == [b"0123456789"]


async def test_settling_twice_is_an_error():
    buf, _ = make(chunk_limit_records=1)
    await buf.put([b"a"], None)
    c = await buf.get()
    buf.settle(c)
    with pytest.raises(RuntimeError):
        buf.settle(c)


async def test_put_after_close_is_refused():
    buf, _ = make()
    buf.close()
    with pytest.raises(RuntimeError):
        await buf.put([b"a"], None)


async def test_settle_is_immediate_and_its_awaitable_already_complete():
    buf, _ = make(chunk_limit_records=1)
    await buf.open()
    acked = []
    g = AckGroup(on_safe=acked.append)
    await buf.put([b"x"], g)
    g.seal()
    chunk = await buf.get()
    done = buf.settle(chunk)
    assert acked == [g], "released before anything is awaited"
    assert await done is None
    await buf.shutdown()
    assert buf.empty
