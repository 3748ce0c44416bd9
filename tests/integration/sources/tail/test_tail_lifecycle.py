"""Files appearing, rotating, shrinking and disappearing; backpressure; stop (§4 A)."""

from __future__ import annotations

import asyncio
import os

from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    cri,
    metric,
    positions,
    wait_until,
)


async def test_a_new_file_is_found_while_running(tail: Tail) -> None:
    collector = Collector()
    async with tail.running(collector):
        await asyncio.sleep(0.2)
        real, _ = tail.pod_file("late")
        append(real, cri(1))
        await wait_until(lambda: len(collector.records) == 1)
    assert collector.records[0].body["kubernetes"]["pod_name"] == "late"


async def test_rename_rotation_delivers_old_late_and_new_lines(tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, "".join(cri(i) for i in range(100)))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 100)
        with open(real, "a") as old:  # the runtime still holds the old file
            os.rename(real, real.with_name("0.log.20240101-120000"))
            append(real, "".join(cri(i) for i in range(200, 300)))  # new 0.log, new inode
            old.write("".join(cri(i) for i in range(100, 110)))  # late write to the old one
        await wait_until(lambda: len(collector.records) == 210)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="old file closed after rotate_wait")
    logs = collector.logs()
    assert sorted(logs) == sorted({f"line {i}" for i in [*range(110), *range(200, 300)]})
    assert logs[:100] == [f"line {i}" for i in range(100)]
    assert metric(tail.metrics, "shipper_files_rotated_total", source="tail", kind="renamed") == 1
    ids = [r.doc_id for r in collector.records]
    assert len(set(ids)) == 210
    (entry,) = positions(tail.state).values()  # the rotated file's entry is gone
    assert entry["offset"] == os.path.getsize(real)


async def test_three_rotations_in_a_row_lose_nothing(tail: Tail) -> None:
    real, _ = tail.pod_file()
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1)
        for generation in range(4):  # all between two checks of the path
            append(real, "".join(cri(generation * 100 + i) for i in range(50)))
            if generation < 3:
                os.rename(real, real.with_name(f"0.log.2024010{generation}-120000"))
                real.touch()
        await wait_until(lambda: len(collector.records) == 200)
        await asyncio.sleep(0.3)
    expected = {f"line {g * 100 + i}" for g in range(4) for i in range(50)}
    assert len(collector.logs()) == 200 and set(collector.logs()) == expected
    assert metric(tail.metrics, "shipper_files_rotated_total", source="tail", kind="adopted") == 2


async def test_truncation_restarts_at_zero_with_new_ids(tail: Tail) -> None:
    path = tail.containers / "truncated.log"
    append(path, "".join(cri(i, text=f"old {i}") for i in range(200)))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 200)
        with open(path, "r+") as handle:
            handle.truncate(0)
        append(path, "".join(cri(i, text=f"new {i}") for i in range(100)))
        await wait_until(lambda: len(collector.records) == 300)
        await wait_until(lambda: [e["offset"] for e in positions(tail.state).values()]
                         == [os.path.getsize(path)], what="checkpoint == file size")
    assert collector.logs()[200:] == [f"new {i}" for i in range(100)]
    ids = [r.doc_id for r in collector.records]
    assert len(set(ids)) == 300
    assert metric(tail.metrics, "shipper_files_rotated_total", source="tail",
                  kind="truncated") == 1
    assert len(positions(tail.state)) == 1


async def test_a_deleted_file_is_drained_then_closed(tail: Tail) -> None:
    real, link = tail.pod_file()
    append(real, "".join(cri(i) for i in range(100)))
    collector = Collector()
    collector.gate.clear()  # outputs are full: the file is deleted before it is read
    async with tail.running(collector, read_chunk_bytes=1024, max_batch_records=5):
        await wait_until(lambda: collector.attempts == 1)
        link.unlink()
        real.unlink()
        await asyncio.sleep(0.3)
        collector.gate.set()
        await wait_until(lambda: len(collector.records) == 100)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 0,
                         what="deleted file closed")
        await wait_until(lambda: positions(tail.state) == {}, what="entry dropped")
    assert collector.logs() == [f"line {i}" for i in range(100)]
    assert metric(tail.metrics, "shipper_files_rotated_total", source="tail", kind="deleted") == 1


async def test_blocked_emit_stops_reading(tail: Tail) -> None:
    path = tail.containers / "busy.log"
    append(path, "".join(cri(i) for i in range(2000)))
    collector = Collector()
    collector.gate.clear()
    async with tail.running(collector, read_chunk_bytes=4096, max_batch_records=10):
        await wait_until(lambda: collector.attempts == 1)
        await asyncio.sleep(0.3)
        assert collector.attempts == 1
        assert metric(tail.metrics, "shipper_bytes_read_total", source="tail") <= 4096
        collector.gate.set()
        await wait_until(lambda: len(collector.records) == 2000)
    assert collector.logs() == [f"line {i}" for i in range(2000)]


async def test_stop_while_blocked_returns_and_keeps_only_acked_progress(tail: Tail) -> None:
    path = tail.containers / "stop.log"
    append(path, "".join(cri(i) for i in range(10)))
    collector = Collector()
    collector.gate.clear()
    async with tail.running(collector) as source:
        await wait_until(lambda: collector.attempts == 1)
        await asyncio.wait_for(source.stop(), 1)
        assert metric(tail.metrics, "shipper_files_open", source="tail") == 0
    (entry,) = positions(tail.state).values()
    assert entry["offset"] == 0


async def test_a_file_rotated_while_stopped_is_finished_from_its_checkpoint(tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, "".join(cri(i) for i in range(50)))
    first_run = Collector(auto_ack=False)
    async with tail.running(first_run, max_batch_records=10):
        await wait_until(lambda: len(first_run.batches) == 5)
        first_run.ack(first_run.batches[0])
        first_run.ack(first_run.batches[1])
    os.rename(real, real.with_name("0.log.20240101-120000"))  # kubelet rotates meanwhile
    append(real, "".join(cri(i) for i in range(100, 130)))
    second_run = Collector()
    async with tail.running(second_run, max_batch_records=10):
        await wait_until(lambda: len(second_run.records) == 60)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="rotated file closed")
    assert sorted(second_run.logs()) == sorted(
        [f"line {i}" for i in [*range(20, 50), *range(100, 130)]])
    first_ids = {r.body["log"]: r.doc_id for r in first_run.records}
    assert all(first_ids[r.body["log"]] == r.doc_id
               for r in second_run.records if r.body["log"] in first_ids)


async def test_a_retired_file_with_unacked_batches_is_kept_but_never_read_again(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, "".join(cri(i) for i in range(20)))
    collector = Collector(auto_ack=False)
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 20)
        os.rename(real, real.with_name("0.log.20240101-120000"))
        append(real, "".join(cri(i) for i in range(100, 105)))
        await wait_until(lambda: len(collector.records) == 25)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="rotated file retired")
        await asyncio.sleep(0.6)  # several rescans: the old inode must not be adopted again
        assert len(collector.records) == 25
        assert len(positions(tail.state)) == 2  # the unacked rotated file keeps its entry
        for batch in collector.batches:
            collector.ack(batch)
        await wait_until(lambda: len(positions(tail.state)) == 1, what="old entry dropped")
