"""The disk buffer's contract: order, ack = safe, replay, strict limits, flat memory."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

from shipper.acks import AckGroup
from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD
from shipper.metrics import Metrics
from tests.integration.buffer.helpers import (
    FaultyStorage,
    counter,
    disk_bytes,
    new_buffer,
    segments,
    simulate_crash,
    stored_payloads,
)


def payloads(n: int, start: int = 0, size: int = 0) -> list[bytes]:
    return [f"record-{i:06d}".encode() + b"." * size for i in range(start, start + n)]


async def drain(buf, settle: bool = True) -> list[bytes]:
    """Every ready chunk's payloads (the open one included), settling each."""
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 10)) is not None:
        out += chunk.payloads
        if settle:
            await buf.settle(chunk)
    return out


async def test_records_come_back_in_order_across_chunks(tmp_path):
    buf = new_buffer(tmp_path)
    await buf.open()
    await buf.put(payloads(10), None)
    await buf.put(payloads(5, 10), None)
    assert len(segments(tmp_path)) == 4  # chunk_limit_records: 4
    assert await drain(buf) == payloads(15)
    assert segments(tmp_path) == []
    assert buf.bytes_used == 0 and buf.empty
    await buf.shutdown()


async def test_with_fsync_always_the_ack_is_released_before_put_returns(tmp_path):
    storage = FaultyStorage()
    buf = new_buffer(tmp_path, storage=storage)
    await buf.open()
    seen: list[list[str]] = []
    group = AckGroup(on_safe=lambda g: seen.append([op for op, _ in storage.calls]))
    await buf.put(payloads(6), group)
    group.seal()
    assert len(seen) == 1, "the group resolved once the records were on disk"
    ops = seen[0]
    assert ops.index("fsync") > max(i for i, op in enumerate(ops) if op == "pwrite")
    assert "fsync_dir" in ops, "the new segments' directory entries were made durable"
    assert stored_payloads(tmp_path) == payloads(6), "nothing delivered yet, all on disk"
    await buf.shutdown()


async def test_with_fsync_interval_acks_wait_for_the_periodic_fsync(tmp_path):
    storage = FaultyStorage()
    buf = new_buffer(tmp_path, storage=storage, fsync="interval", fsync_interval_secs=0.05)
    await buf.open()
    released = asyncio.Event()
    fsyncs_at_release: list[int] = []

    def on_safe(_: AckGroup) -> None:
        fsyncs_at_release.append(sum(op == "fsync" for op, _ in storage.calls))
        released.set()

    group = AckGroup(on_safe=on_safe)
    await buf.put(payloads(3), group)
    group.seal()
    assert not released.is_set(), "put returned before any fsync"
    assert not any(op == "fsync" for op, _ in storage.calls)
    await asyncio.wait_for(released.wait(), 10)
    assert fsyncs_at_release[0] >= 1
    await buf.shutdown()


async def test_a_restart_replays_every_unsettled_record_and_no_settled_one(tmp_path):
    buf = new_buffer(tmp_path)
    await buf.open()
    await buf.put(payloads(12), None)
    first = await buf.get()
    second = await buf.get()
    await buf.settle(first)  # delivered: must never come back
    assert second is not None  # in flight when the process dies: must come back
    simulate_crash(buf)

    again = new_buffer(tmp_path)
    await again.open()
    assert again.bytes_used == disk_bytes(tmp_path)
    assert await drain(again) == payloads(8, 4)
    await again.shutdown()


async def test_a_graceful_shutdown_fsyncs_the_rest_and_releases_its_acks(tmp_path):
    buf = new_buffer(tmp_path, fsync="interval", fsync_interval_secs=3600)
    await buf.open()
    acked: list[AckGroup] = []
    group = AckGroup(on_safe=acked.append)
    await buf.put(payloads(6), group)
    group.seal()
    assert acked == []
    buf.close()
    await buf.shutdown()
    assert acked == [group]
    again = new_buffer(tmp_path)
    await again.open()
    assert await drain(again) == payloads(6)
    await again.shutdown()


async def test_the_total_limit_counts_file_bytes_and_block_waits_for_space(tmp_path):
    record = RECORD_OVERHEAD + len(payloads(1)[0])
    limit = 2 * HEADER_SIZE + 6 * record  # two chunks of at most 4 records, headers included
    buf = new_buffer(tmp_path, total_limit_bytes=limit)
    await buf.open()
    await buf.put(payloads(6), None)
    assert disk_bytes(tmp_path) == limit
    blocked = asyncio.create_task(buf.put(payloads(3, 6), None))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not blocked.done(), "a full buffer makes put wait"
    assert disk_bytes(tmp_path) <= limit
    chunk = await buf.get()
    await buf.settle(chunk)
    await asyncio.wait_for(blocked, 10)
    assert disk_bytes(tmp_path) <= limit
    assert buf.bytes_used == disk_bytes(tmp_path)
    assert await drain(buf) == payloads(5, 4)
    await buf.shutdown()


async def test_drop_newest_drops_and_counts_exactly_what_does_not_fit(tmp_path):
    metrics = Metrics()
    record = RECORD_OVERHEAD + len(payloads(1)[0])
    buf = new_buffer(tmp_path, metrics, total_limit_bytes=HEADER_SIZE + 3 * record,
                     when_full="drop_newest")
    await buf.open()
    group = AckGroup()
    await buf.put(payloads(5), group)
    assert group.dropped == 2
    assert counter(metrics, "shipper_records_dropped_total", reason="buffer_full") == 2
    assert await drain(buf) == payloads(3)
    await buf.shutdown()


async def test_a_record_that_can_never_fit_is_dropped_and_counted_not_blocking(tmp_path):
    metrics = Metrics()
    buf = new_buffer(tmp_path, metrics, total_limit_bytes=200)
    await buf.open()
    group = AckGroup()
    await asyncio.wait_for(buf.put([b"small", b"x" * 500, b"after"], group), 10)
    assert group.dropped == 1
    assert counter(metrics, "shipper_records_dropped_total", reason="too_large") == 1
    assert await drain(buf) == [b"small", b"after"]
    await buf.shutdown()


async def test_a_requeued_chunk_is_delivered_first(tmp_path):
    buf = new_buffer(tmp_path)
    await buf.open()
    await buf.put(payloads(8), None)
    chunk = await buf.get()
    buf.requeue(chunk)
    assert await drain(buf) == payloads(8)
    await buf.shutdown()


async def test_the_open_chunk_is_sent_after_the_flush_interval(tmp_path):
    buf = new_buffer(tmp_path, flush_interval_secs=0.05)
    await buf.open()
    await buf.put(payloads(2), None)
    chunk = await asyncio.wait_for(buf.get(), 10)
    assert chunk.payloads == payloads(2)
    assert buf.oldest_age() >= 0
    await buf.settle(chunk)
    await buf.shutdown()


async def test_a_settled_chunk_frees_its_bytes_and_file(tmp_path):
    metrics = Metrics()
    buf = new_buffer(tmp_path, metrics)
    await buf.open()
    await buf.put(payloads(4), None)
    assert counter(metrics, "shipper_buffer_bytes") == disk_bytes(tmp_path) > 0
    chunk = await buf.get()
    await buf.settle(chunk)
    assert segments(tmp_path) == []
    assert counter(metrics, "shipper_buffer_bytes") == 0
    with pytest.raises(RuntimeError, match="settled twice"):
        buf.settle(chunk)
    await buf.shutdown()


async def test_a_backlog_is_read_back_from_disk_so_memory_stays_flat(tmp_path):
    buf = new_buffer(tmp_path, chunk_limit_records=10, total_limit_bytes=1 << 30)
    await buf.open()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for k in range(40):  # 40 chunks of 10 x 10 KiB = 4 MiB on disk
            await buf.put(payloads(10, 10 * k, size=10_240), None)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert disk_bytes(tmp_path) > 4_000_000
    assert held < 1_000_000, f"{held} bytes held in memory for a 4 MiB backlog"
    out = await drain(buf)
    assert out == payloads(400, size=10_240)
    await buf.shutdown()


async def test_with_fsync_interval_a_waiting_client_is_acked_by_an_early_fsync(tmp_path):
    """A client that waits for each ack (urgent groups) is not held to the fsync interval:
    each of its writes is fsynced soon, while ordinary writes keep waiting for the interval."""
    storage = FaultyStorage()
    buf = new_buffer(tmp_path, storage=storage, fsync="interval", fsync_interval_secs=3600)
    await buf.open()
    for i in range(10):
        acked = asyncio.Event()
        group = AckGroup(on_safe=lambda _g, ev=acked: ev.set(), urgent=True)
        await buf.put(payloads(1, i), group)
        group.seal()
        await asyncio.wait_for(acked.wait(), 5)  # never the hour-long interval
    fsyncs = sum(op == "fsync" for op, _ in storage.calls)
    assert fsyncs >= 1

    ordinary = asyncio.Event()
    group = AckGroup(on_safe=lambda _g: ordinary.set())
    await buf.put(payloads(1, 10), group)
    group.seal()
    await asyncio.sleep(0.1)
    assert not ordinary.is_set(), "a write nobody waits for keeps the interval"
    assert sum(op == "fsync" for op, _ in storage.calls) == fsyncs
    # The next urgent write's fsync covers the ordinary one too: both resolve.
    urgent = AckGroup(on_safe=lambda _g: None, urgent=True)
    await buf.put(payloads(1, 11), urgent)
    urgent.seal()
    await asyncio.wait_for(ordinary.wait(), 5)
    assert urgent.done
    buf.close()
    assert await drain(buf) == payloads(12)
    await buf.shutdown()
