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


async def _deliver_waiting_client(buf: MemoryBuffer, requests: int) -> list[int]:
    """A client that sends one record and waits for its ack before the next, against a fake
    delivery worker that settles whatever chunk it gets; returns each chunk's size."""
    sizes: list[int] = []

    async def worker() -> None:
        while (chunk := await buf.get()) is not None:
            sizes.append(len(chunk))
            buf.settle(chunk)

    task = asyncio.create_task(worker())
    try:
        for i in range(requests):
            acked = asyncio.Event()
            group = AckGroup(on_safe=lambda _g, ev=acked: ev.set(), urgent=True)
            await buf.put([b"record-%d" % i], group)
            group.seal()
            await asyncio.wait_for(acked.wait(), 2)  # never the hour-long flush interval
    finally:
        buf.close()
        await asyncio.wait_for(task, 2)
    return sizes


async def test_an_urgent_group_is_delivered_without_waiting_for_the_flush_interval():
    buf, _ = make()  # flush_interval_secs: 3600
    assert await _deliver_waiting_client(buf, 10) == [1] * 10


async def test_records_without_a_waiting_client_keep_the_flush_interval():
    buf, _ = make()
    await buf.put([b"tail-1", b"tail-2"], AckGroup())
    got = asyncio.create_task(buf.get())
    await asyncio.sleep(0.05)
    assert not got.done(), "an ordinary batch must wait for the interval or the limits"
    got.cancel()
    with pytest.raises(asyncio.CancelledError):
        await got


async def test_an_urgent_chunk_takes_earlier_records_along_and_keeps_filling_while_busy():
    buf, _ = make()
    await buf.put([b"tail-1"], AckGroup())
    await buf.put([b"fwd-1"], AckGroup(urgent=True))
    # No worker was free (none called get): more records join the same open chunk.
    await buf.put([b"tail-2"], None)
    await buf.put([b"fwd-2"], AckGroup(urgent=True))
    chunk = await asyncio.wait_for(buf.get(), 1)
    assert chunk.payloads == [b"tail-1", b"fwd-1", b"tail-2", b"fwd-2"]
    assert buf.chunk_count == 1  # handed out; nothing left open
    await buf.put([b"tail-3"], None)
    later = asyncio.create_task(buf.get())
    await asyncio.sleep(0.05)
    assert not later.done(), "the next chunk is not urgent: it waits for the interval"
    later.cancel()
    with pytest.raises(asyncio.CancelledError):
        await later


async def test_an_urgent_put_still_blocks_while_the_buffer_is_full():
    buf, _ = make(total_limit_bytes=8, chunk_limit_bytes=4)
    await buf.put([b"1234", b"5678"], None)
    blocked = asyncio.create_task(buf.put([b"9999"], AckGroup(urgent=True)))
    await asyncio.sleep(0.01)
    assert not blocked.done(), "urgency never bypasses backpressure"
    buf.settle(await buf.get())
    await asyncio.wait_for(blocked, 1)
    assert buf.bytes_used == 8
