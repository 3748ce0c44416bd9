"""copytruncate, in-place truncation and truncate-then-refill (reliability T06, T07)."""

from __future__ import annotations

import asyncio
import shutil

from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    cri,
    metric,
    wait_until,
)


def lost(tail: Tail, reason: str) -> float:
    return metric(tail.metrics, "shipper_lost_bytes_total", source="tail", reason=reason)


def text(start: int, stop: int, word: str = "line") -> str:
    return "".join(cri(i, text=f"{word} {i}") for i in range(start, stop))


async def test_copytruncate_delivers_lines_before_and_after_without_duplicates(
        tail: Tail) -> None:
    path = tail.containers / "app.log"
    append(path, text(0, 100))
    collector = Collector()
    collector.gate.set()
    async with tail.running(collector, read_chunk_bytes=256, max_batch_records=10):
        await wait_until(lambda: len(collector.records) == 100)
        collector.gate.clear()
        append(path, text(100, 150))  # written, mostly not read yet (reading blocked) ...
        await wait_until(lambda: collector.attempts > len(collector.batches))
        shutil.copyfile(path, path.with_name("app.log.1"))  # ... then logrotate copies
        with open(path, "r+") as handle:  # and truncates in place
            handle.truncate(0)
        append(path, text(0, 30, "new"))
        collector.gate.set()
        await wait_until(lambda: len(collector.records) == 180, timeout=10)
        await asyncio.sleep(0.5)
    logs = collector.logs()
    assert sorted(logs) == sorted([f"line {i}" for i in range(150)]
                                  + [f"new {i}" for i in range(30)])
    ids = [r.doc_id for r in collector.records]
    assert len(set(ids)) == 180
    old_identity = collector.records[0].doc_id.split("-")[0]
    moved = [r for r in collector.records if r.body["log"] in {"line 120", "line 149"}]
    assert {r.doc_id.split("-")[0] for r in moved} == {old_identity}  # ids as in the original
    assert lost(tail, "truncated_unread") == 0


async def test_a_copy_compressed_at_once_counts_the_unread_bytes(tail: Tail) -> None:
    import gzip

    path = tail.containers / "app.log"
    append(path, text(0, 10))
    collector = Collector()
    async with tail.running(collector, max_batch_records=1, read_chunk_bytes=64):
        await wait_until(lambda: len(collector.records) == 10)
        collector.gate.clear()
        append(path, text(10, 20))
        await wait_until(lambda: collector.attempts > len(collector.batches))
        path.with_name("app.log.1.gz").write_bytes(gzip.compress(path.read_bytes()))
        with open(path, "r+") as handle:
            handle.truncate(0)
        append(path, text(0, 5, "new"))
        collector.gate.set()
        await wait_until(lambda: collector.logs()[-5:] == [f"new {i}" for i in range(5)],
                         timeout=10)
        await asyncio.sleep(0.3)
    assert_exact_accounting(tail, collector, text(10, 20), "compressed_unread")


async def test_in_place_truncation_counts_the_unread_bytes_it_saw(tail: Tail) -> None:
    path = tail.containers / "app.log"
    append(path, text(0, 10))
    collector = Collector()
    async with tail.running(collector, max_batch_records=1, read_chunk_bytes=64):
        await wait_until(lambda: len(collector.records) == 10)
        collector.gate.clear()
        append(path, text(10, 20))
        await wait_until(lambda: collector.attempts > len(collector.batches))
        await asyncio.sleep(1.2)  # the watch loop looks at the size while reading is blocked
        with open(path, "r+") as handle:
            handle.truncate(0)
        collector.gate.set()
        append(path, text(0, 5, "new"))
        await wait_until(lambda: collector.logs()[-5:] == [f"new {i}" for i in range(5)],
                         timeout=10)
        await asyncio.sleep(0.3)
    assert_exact_accounting(tail, collector, text(10, 20), "truncated_unread")


def assert_exact_accounting(tail: Tail, collector: Collector, written: str,
                            reason: str) -> None:
    """Every byte of ``written`` was either delivered (whole lines) or counted lost."""
    lines = written.splitlines(keepends=True)
    by_log = {line.split(" ", 3)[3].rstrip("\n"): len(line) for line in lines}
    delivered = [log for log in collector.logs() if log in by_log]
    assert len(delivered) == len(set(delivered))  # nothing twice
    assert 0 < len(delivered) < len(lines)  # some read before, some lost: a real test
    assert sum(by_log[log] for log in delivered) + lost(tail, reason) == len(written)


async def test_truncate_and_refill_past_the_old_offset_is_detected(tail: Tail) -> None:
    path = tail.containers / "app.log"
    append(path, text(0, 5, "old"))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 5)
        collector.gate.clear()
        with open(path, "r+") as handle:  # between two reads: shrink then grow past us
            handle.truncate(0)
        append(path, text(100, 160, "refill"))
        collector.gate.set()
        await wait_until(lambda: len(collector.records) == 65, timeout=10)
        await asyncio.sleep(0.3)
    assert collector.logs() == [f"old {i}" for i in range(5)] + [
        f"refill {i}" for i in range(100, 160)]
    assert len({r.doc_id for r in collector.records}) == 65
    assert metric(tail.metrics, "shipper_files_rotated_total", source="tail",
                  kind="truncated") == 1
