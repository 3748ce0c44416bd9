"""Storage faults (ENOSPC, EIO): inputs pause, nothing corrupts, delivery resumes after."""

from __future__ import annotations

import asyncio
import errno
import logging

import pytest

from shipper.acks import AckGroup
from shipper.metrics import Metrics
from tests.integration.buffer.helpers import (
    FaultyStorage,
    counter,
    new_buffer,
    segments,
    simulate_crash,
    stored_payloads,
)


def records(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"n":{i}}}\n'.encode() for i in range(start, start + n)]


async def until(predicate, what: str, tries: int = 1000) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def storage_errors(metrics: Metrics, op: str) -> float:
    return counter(metrics, "shipper_buffer_storage_errors_total", op=op)


def error_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", "") == "buffer_storage_error"]


async def test_a_full_disk_pauses_put_logs_once_and_resumes_without_damage(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    storage, metrics = FaultyStorage(), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage)
    await buf.open()
    await buf.put(records(2), None)
    storage.faults["pwrite_partial"] = errno.ENOSPC  # half a write lands, then ENOSPC
    group = AckGroup()
    put = asyncio.create_task(buf.put(records(3, 2), group))
    await until(lambda: storage_errors(metrics, "write") >= 5, "repeated write failures")
    assert not put.done(), "the input is paused, not failed"
    assert len(error_logs(caplog)) == 1, "logged once, however often it failed"
    assert group.dropped == 0
    del storage.faults["pwrite_partial"]
    await asyncio.wait_for(put, 10)
    assert any(getattr(r, "event", "") == "buffer_storage_recovered" for r in caplog.records)
    simulate_crash(buf)

    again_metrics = Metrics()
    again = new_buffer(tmp_path, again_metrics)
    await again.open()
    assert counter(again_metrics, "shipper_buffer_corrupt_records_total") == 0
    assert stored_payloads(tmp_path) == records(5), "no half record, no duplicate"
    await again.shutdown()


async def test_no_space_for_a_new_segment_pauses_then_resumes(tmp_path):
    storage, metrics = FaultyStorage(), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage)
    await buf.open()
    storage.faults["create"] = errno.ENOSPC
    put = asyncio.create_task(buf.put(records(6), None))
    await until(lambda: storage_errors(metrics, "write") >= 3, "create failures")
    assert not put.done()
    assert segments(tmp_path) == [], "a failed creation leaves no file behind"
    del storage.faults["create"]
    await asyncio.wait_for(put, 10)
    assert stored_payloads(tmp_path) == records(6)
    await buf.shutdown()


async def test_a_failed_fsync_holds_the_acks_pauses_inputs_and_rewrites_before_retrying(
        tmp_path):
    storage, metrics = FaultyStorage(), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage)
    await buf.open()
    storage.faults["fsync"] = errno.EIO
    acked: list[AckGroup] = []
    group = AckGroup(on_safe=acked.append)
    await buf.put(records(3), group)
    group.seal()
    assert acked == [], "not durable, so not acknowledged"
    assert storage_errors(metrics, "fsync") >= 1
    paused = asyncio.create_task(buf.put(records(1, 3), None))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not paused.done(), "inputs pause while fsync fails"
    writes_before = [d for op, d in storage.calls if op == "pwrite"]
    del storage.faults["fsync"]
    await asyncio.wait_for(paused, 10)
    await until(lambda: acked == [group], "the acks after a good fsync")
    rewritten = [d for op, d in storage.calls if op == "pwrite"][len(writes_before):]
    assert set(writes_before) <= set(rewritten), "bytes of the failed fsync written again"
    assert stored_payloads(tmp_path) == records(4)
    await buf.shutdown()


async def test_a_failed_delete_keeps_the_bytes_counted_and_is_retried(tmp_path):
    storage, metrics = FaultyStorage(), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage, fsync="interval",
                     fsync_interval_secs=0.02)
    await buf.open()
    await buf.put(records(4), None)
    chunk = await buf.get()
    storage.faults["unlink"] = errno.EIO
    await buf.settle(chunk)
    assert len(segments(tmp_path)) == 1
    assert buf.bytes_used > 0, "the file is still there, so are its bytes"
    del storage.faults["unlink"]
    await until(lambda: buf.bytes_used == 0, "the retried deletion")
    assert segments(tmp_path) == []
    await buf.shutdown()


class FailRecordWrites(FaultyStorage):
    """Segment creation works, appending records fails: the open segment stays empty."""

    def __init__(self, fails: int, code: int = errno.ENOSPC) -> None:
        super().__init__()
        self.fails = fails
        self.code = code

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        if offset > 0 and self.fails > 0:
            self.fails -= 1
            raise OSError(self.code, "injected")
        super().pwrite(fd, data, offset)


async def test_failed_writes_into_an_empty_segment_reuse_it_instead_of_leaking_segments(
        tmp_path):
    storage, metrics = FailRecordWrites(fails=6), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage)
    await buf.open()
    await asyncio.wait_for(buf.put(records(3), None), 10)
    assert storage.fails == 0, "every injected failure was hit"
    assert storage_errors(metrics, "write") == 6
    assert len(segments(tmp_path)) == 1, "the empty segment is reused, not sealed and leaked"
    assert stored_payloads(tmp_path) == records(3)
    buf.close()
    chunk = await asyncio.wait_for(buf.get(), 5)
    assert chunk is not None and chunk.payloads == records(3)
    await buf.settle(chunk)
    assert await asyncio.wait_for(buf.get(), 5) is None
    assert segments(tmp_path) == []
    assert buf.bytes_used == 0
    assert counter(metrics, "shipper_buffer_bytes") == 0
    await buf.shutdown()


async def test_a_storage_fault_makes_the_output_not_ready_until_it_clears(tmp_path):
    from shipper.health import OutputHealth

    storage, metrics = FaultyStorage(), Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage, fsync="interval",
                     fsync_interval_secs=0.02)
    health = OutputHealth("out", 300, has_backlog=lambda: not buf.empty,
                          storage_problem=buf.storage_problem)
    await buf.open()
    assert health.problem() is None
    storage.faults["create"] = errno.ENOSPC
    put = asyncio.create_task(buf.put(records(2), None))
    await until(lambda: storage_errors(metrics, "write") >= 1, "a failed write")
    problem = health.problem()
    assert problem is not None and "disk buffer" in problem and "No space left" in problem
    del storage.faults["create"]
    await asyncio.wait_for(put, 10)
    assert health.problem() is None

    storage.faults["unlink"] = errno.EACCES
    buf.close()
    got = await asyncio.wait_for(buf.get(), 5)
    assert got is not None
    await buf.settle(got)
    assert "Permission denied" in (health.problem() or "")
    del storage.faults["unlink"]
    await until(lambda: health.problem() is None, "the retried deletion")
    assert segments(tmp_path) == []
    await buf.shutdown()


@pytest.mark.parametrize("op", ["create", "pwrite", "fsync", "fsync_dir"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EEXIST, errno.EACCES],
                         ids=errno.errorcode.get)
async def test_every_write_step_failing_pauses_then_keeps_every_record_once(
        tmp_path, op, code):
    storage, metrics = FaultyStorage(), Metrics()
    # fsync by the housekeeping task every 20 ms, which also retries failed deletions
    buf = new_buffer(tmp_path, metrics, storage=storage, fsync="interval",
                     fsync_interval_secs=0.02)
    await buf.open()
    await buf.put(records(2), None)  # an open segment; the next put also needs a new one
    storage.faults[op], storage.times[op] = code, 3
    acked: list[AckGroup] = []
    group = AckGroup(on_safe=acked.append)
    await asyncio.wait_for(buf.put(records(5, 2), group), 10)
    group.seal()
    await until(lambda: acked == [group], "the acks once storage works again")
    assert storage_errors(metrics, "write") + storage_errors(metrics, "fsync") >= 1
    assert group.dropped == 0
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 5)) is not None:
        out += chunk.payloads
        await buf.settle(chunk)
    assert out == records(7), "nothing lost, nothing twice"
    await until(lambda: buf.bytes_used == 0, "every segment deleted")
    assert segments(tmp_path) == []
    await buf.shutdown()


async def test_a_segment_name_taken_by_someone_else_is_never_deleted(tmp_path):
    buf = new_buffer(tmp_path)
    await buf.open()
    foreign = tmp_path / "0000000000000001.seg"
    foreign.write_bytes(b"not ours")
    await asyncio.wait_for(buf.put(records(3), None), 10)
    assert foreign.read_bytes() == b"not ours", "EEXIST must not delete the existing file"
    assert stored_payloads(tmp_path) == records(3)
    await buf.shutdown()
