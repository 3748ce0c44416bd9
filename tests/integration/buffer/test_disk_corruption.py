"""Damaged buffers: the agent starts, quarantines what it cannot read, delivers the rest."""

from __future__ import annotations

import asyncio
import errno
import os
import struct

import pytest

from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD, VERSION, encode_header, frame
from shipper.errors import StorageError
from shipper.metrics import Metrics
from tests.integration.buffer.helpers import (
    FaultyStorage,
    counter,
    new_buffer,
    segments,
    simulate_crash,
)


def records(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"seq":{i}}}\n'.encode() for i in range(start, start + n)]


async def write_segments(directory, n: int = 12) -> list:
    """Three segments of four records each, left behind by a crashed agent."""
    buf = new_buffer(directory)
    await buf.open()
    await buf.put(records(n), None)
    simulate_crash(buf)
    return segments(directory)


async def restart(directory, metrics: Metrics | None = None, **kw) -> list[bytes]:
    buf = new_buffer(directory, metrics, **kw)
    await asyncio.wait_for(buf.open(), 30)
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 10)) is not None:
        out += chunk.payloads
        await buf.settle(chunk)
    await buf.shutdown()
    return out


def quarantined(directory) -> list:
    return sorted((directory / "quarantine").iterdir())


async def test_a_torn_tail_keeps_every_whole_record_and_counts_the_torn_one(tmp_path):
    segs = await write_segments(tmp_path)
    with open(segs[-1], "ab") as fh:
        fh.write(frame([b'{"seq":"torn"}\n'])[:11])
    metrics = Metrics()
    assert await restart(tmp_path, metrics) == records(12)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 1
    assert counter(metrics, "shipper_records_dropped_total", reason="buffer_corrupt") == 1
    [original] = quarantined(tmp_path)
    assert original.read_bytes().endswith(frame([b'{"seq":"torn"}\n'])[:11])


async def test_a_flipped_byte_costs_one_record_not_the_segment(tmp_path):
    segs = await write_segments(tmp_path)
    data = bytearray(segs[1].read_bytes())
    second_record = HEADER_SIZE + RECORD_OVERHEAD + len(records(1, 4)[0])
    data[second_record + RECORD_OVERHEAD + 3] ^= 0x01
    segs[1].write_bytes(bytes(data))
    metrics = Metrics()
    assert await restart(tmp_path, metrics) == records(5) + records(6, 6)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 1
    assert len(quarantined(tmp_path)) == 1


async def test_a_zero_length_segment_is_moved_aside_and_the_rest_delivered(tmp_path):
    segs = await write_segments(tmp_path)
    (tmp_path / "0000000000000099.seg").write_bytes(b"")
    segs[0].write_bytes(b"")
    metrics = Metrics()
    assert await restart(tmp_path, metrics) == records(8, 4)
    assert len(quarantined(tmp_path)) == 2
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 0


async def test_a_garbage_header_is_salvaged_record_by_record(tmp_path):
    segs = await write_segments(tmp_path)
    data = bytearray(segs[0].read_bytes())
    data[0:8] = b"\x00GARBAGE"
    segs[0].write_bytes(bytes(data))
    assert await restart(tmp_path) == records(12)
    [original] = quarantined(tmp_path)
    assert original.read_bytes()[:8] == b"\x00GARBAGE"


async def test_a_file_of_pure_garbage_is_quarantined_whole(tmp_path):
    await write_segments(tmp_path)
    junk = bytes((i * 31 + 7) % 256 for i in range(50_000))
    (tmp_path / "0000000000000000.seg").write_bytes(junk)
    metrics = Metrics()
    assert await restart(tmp_path, metrics) == records(12)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 1
    [original] = quarantined(tmp_path)
    assert original.read_bytes() == junk


async def test_a_segment_of_a_newer_version_is_refused_and_left_untouched(tmp_path):
    segs = await write_segments(tmp_path)
    newer = encode_header(version=VERSION + 1) + b"future records"
    segs[1].write_bytes(newer)
    before = {p.name: p.read_bytes() for p in segments(tmp_path)}
    buf = new_buffer(tmp_path)
    with pytest.raises(StorageError, match=r"newer shipper.*format version 2.*refusing"):
        await buf.open()
    assert {p.name: p.read_bytes() for p in segments(tmp_path)} == before
    assert quarantined(tmp_path) == []
    await buf.shutdown()


async def test_an_interrupted_salvage_is_completed_not_lost(tmp_path):
    """The state a crash at ``buffer_salvage_moved`` leaves: the original in quarantine, the
    fsynced salvage copy not yet renamed into place."""
    segs = await write_segments(tmp_path)
    salvage = segs[0].with_suffix(".salvage")
    salvage.write_bytes(encode_header() + frame(records(4)))
    (tmp_path / "quarantine" / f"{segs[0].name}.1").write_bytes(segs[0].read_bytes())
    segs[0].unlink()
    assert await restart(tmp_path) == records(12)
    assert not salvage.exists()


async def test_a_salvage_copy_next_to_its_original_is_incomplete_and_removed(tmp_path):
    segs = await write_segments(tmp_path)
    salvage = segs[0].with_suffix(".salvage")
    salvage.write_bytes(encode_header() + frame(records(2)))  # cut short by the crash
    assert await restart(tmp_path) == records(12)
    assert not salvage.exists()


async def test_damage_after_start_is_caught_when_the_chunk_is_read_back(tmp_path):
    await write_segments(tmp_path)
    metrics = Metrics()
    buf = new_buffer(tmp_path, metrics)
    await buf.open()
    seg = segments(tmp_path)[2]
    data = bytearray(seg.read_bytes())
    data[-2] ^= 0xFF  # the last record of the last segment rots on disk
    seg.write_bytes(bytes(data))
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 10)) is not None:
        out += chunk.payloads
        await buf.settle(chunk)
    await buf.shutdown()
    assert out == records(11)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 1
    assert len(quarantined(tmp_path)) == 1


async def test_a_segment_that_cannot_be_read_is_quarantined_and_delivery_goes_on(tmp_path):
    segs = await write_segments(tmp_path)
    storage = FaultyStorage()
    metrics = Metrics()
    buf = new_buffer(tmp_path, metrics, storage=storage)
    await buf.open()
    storage.faults["read"] = errno.EIO
    storage.times["read"] = 3
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 10)) is not None:
        out += chunk.payloads
        await buf.settle(chunk)
    await buf.shutdown()
    assert out == records(8, 4), "the unreadable first segment is given up after 3 tries"
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 4
    assert [p.name.split(".seg")[0] for p in quarantined(tmp_path)] == [segs[0].stem]


async def test_a_large_damaged_segment_does_not_stall_the_start(tmp_path):
    big = [os.urandom(100).hex().encode() for _ in range(10_000)]  # ~2 MiB
    data = bytearray(encode_header() + frame(big))
    for k in range(1, 60):  # many damaged length fields spread over the file
        data[len(data) * k // 60] ^= 0x80
    (tmp_path / "0000000000000001.seg").write_bytes(bytes(data))
    metrics = Metrics()
    out = await restart(tmp_path, metrics)
    lost = len(big) - len(out)
    assert 0 < lost <= 2 * 59
    assert set(out) <= set(big)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") >= 1


def cut_inside_record(seg, k: int) -> int:
    """Truncate ``seg`` 5 bytes into its record ``k``; returns the offset of that record."""
    data = seg.read_bytes()
    off = HEADER_SIZE
    for _ in range(k):
        (length,) = struct.unpack_from("<I", data, off)
        off += RECORD_OVERHEAD + length
    os.truncate(seg, off + 5)
    return off


async def test_a_segment_cut_short_after_start_counts_every_lost_record(tmp_path):
    first = new_buffer(tmp_path, chunk_limit_records=100)
    await first.open()
    await first.put(records(50), None)
    simulate_crash(first)
    metrics = Metrics()
    buf = new_buffer(tmp_path, metrics, chunk_limit_records=100)
    await buf.open()
    [seg] = segments(tmp_path)
    cut_inside_record(seg, 8)  # records 8..49 gone while the agent runs
    buf.close()
    out: list[bytes] = []
    while (chunk := await asyncio.wait_for(buf.get(), 10)) is not None:
        out += chunk.payloads
        await buf.settle(chunk)
    await buf.shutdown()
    assert out == records(8)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 42
    assert counter(metrics, "shipper_records_dropped_total", reason="buffer_corrupt") == 42


async def test_a_segment_cut_short_before_start_is_logged_as_a_lower_bound(tmp_path, caplog):
    buf = new_buffer(tmp_path, chunk_limit_records=100)
    await buf.open()
    await buf.put(records(50), None)
    simulate_crash(buf)
    [seg] = segments(tmp_path)
    off = cut_inside_record(seg, 8)
    metrics = Metrics()
    assert await restart(tmp_path, metrics) == records(8)
    assert counter(metrics, "shipper_buffer_corrupt_records_total") == 1
    [line] = [r for r in caplog.records
              if getattr(r, "event", "") == "buffer_segment_quarantined"]
    assert "at least 1 damaged record(s)" in line.getMessage()
    assert f"bytes {off}-{off + 5}" in line.getMessage() and seg.name in line.getMessage()
    assert line.corrupt_records_exact is False
    assert line.damaged_ranges == [(off, off + 5)]
