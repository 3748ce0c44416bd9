"""Split messages written while the read loop is blocked on full output buffers.

While ``emit`` waits, the reader's "at end of file" and "last data" go stale: the pieces and
rotations that arrive meanwhile must still end up as one record per message. The time spent
blocked is not idle time, and a rotated file is handed to its successor only once it was
read to its real end.
"""

from __future__ import annotations

import asyncio
import functools

import pytest

from shipper.sources.tail import TailSource
from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    cri,
    rotate,
    wait_until,
)


async def test_a_final_piece_written_while_blocked_joins_its_partial_piece(tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, cri(0) + cri(1, tag="P", text="first half "))
    collector = Collector()
    collector.gate.clear()  # outputs full: the batch with line 0 blocks in emit
    async with tail.running(collector, partial_flush_secs=0.3):
        await wait_until(lambda: collector.attempts == 1)
        await asyncio.sleep(0.6)  # blocked for longer than partial_flush_secs
        append(real, cri(2, tag="F", text="second half"))
        await asyncio.sleep(0.3)
        collector.gate.set()
        await wait_until(lambda: len(collector.records) >= 2, what="both messages")
        await asyncio.sleep(0.5)  # a wrongly flushed piece would show up as a third record
    assert collector.logs() == ["line 0", "first half second half"]


async def test_blocked_time_does_not_count_as_idle(tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, cri(0) + cri(1, tag="P", text="first half "))
    collector = Collector()
    collector.gate.clear()
    async with tail.running(collector, partial_flush_secs=0.6):
        await wait_until(lambda: collector.attempts == 1)
        await asyncio.sleep(1.0)  # blocked well past partial_flush_secs, nothing written
        collector.gate.set()
        await asyncio.sleep(0.1)  # well within partial_flush_secs of unblocked time
        append(real, cri(2, tag="F", text="second half"))
        await wait_until(lambda: len(collector.records) >= 2, what="both messages")
        await asyncio.sleep(0.3)
    assert collector.logs() == ["line 0", "first half second half"]


def blocked(collector: Collector, attempts: int) -> bool:
    return collector.attempts > attempts


def shipped(collector: Collector, line: int, message: str) -> bool:
    logs = collector.logs()
    return f"line {line}" in logs and any(log.startswith(message) for log in logs)


@pytest.mark.parametrize("rotations", [
    3, pytest.param(16, marks=pytest.mark.slow)])
async def test_rotations_while_blocked_split_no_message(tail: Tail, rotations: int) -> None:
    """Each rotation falls inside a message: its P pieces in the old file, its F piece in
    the new one; more P pieces reach the old file after the read loop saw its end."""
    real, _ = tail.pod_file()
    append(real, cri(0))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 1)
        for n in range(rotations):
            base = 10 * (n + 1)
            collector.gate.clear()
            attempts = collector.attempts
            # A whole line, then the first piece of a split message: the line blocks in emit
            # after the piece was read, so the reader believes it is at the end of the file.
            append(real, cri(base) + cri(base + 1, tag="P", text=f"msg {n} a "))
            await wait_until(functools.partial(blocked, collector, attempts),
                             what="the read loop blocked in emit")
            append(real, cri(base + 2, tag="P", text="b "))
            rotated = rotate(real, f"20240101-0000{n:02d}")
            append(real, cri(base + 3, tag="F", text="c"))
            await asyncio.sleep(0.4)  # the new generation is found while still blocked
            collector.gate.set()
            await wait_until(functools.partial(shipped, collector, base, f"msg {n} "),
                             what=f"rotation {n} shipped")
            assert rotated.exists()
        await asyncio.sleep(0.6)  # leftovers (a split piece flushed alone) would show here
    logs = collector.logs()
    assert [log for log in logs if log.startswith("msg ")] == [
        f"msg {n} a b c" for n in range(rotations)]
    assert len(logs) == 1 + 2 * rotations


async def test_on_a_fake_clock_only_unblocked_time_flushes_a_dangling_piece(tail: Tail) -> None:
    now = [0.0]
    source = TailSource("tail", tail.config(partial_flush_secs=1.0), tail.state, tail.metrics,
                        clock=lambda: now[0])
    await source.open()
    real, _ = tail.pod_file()
    append(real, cri(0) + cri(1, tag="P", text="first half "))
    source.poll_files()
    collector = Collector()
    collector.gate.clear()
    try:
        reading = asyncio.create_task(source.read_available(collector))
        await wait_until(lambda: collector.attempts == 1, what="the read loop blocked in emit")
        now[0] += 10.0  # blocked for ten seconds
        collector.gate.set()
        await asyncio.wait_for(reading, 5)
        now[0] += 0.5
        await source.read_available(collector)
        assert collector.logs() == ["line 0"], "the open piece waits: 0.5 s of idle time"
        append(real, cri(2, tag="F", text="second half"))
        await source.read_available(collector)
        assert collector.logs() == ["line 0", "first half second half"]
        append(real, cri(3, tag="P", text="dangling"))
        await source.read_available(collector)
        now[0] += 1.5  # idle while nothing blocks: the dangling piece ships on its own
        await source.read_available(collector)
        assert collector.logs() == ["line 0", "first half second half", "dangling"]
    finally:
        collector.gate.set()
        source.files.close_all()
