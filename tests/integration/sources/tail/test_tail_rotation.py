"""Rename rotation under load, compression, restarts after rotations, symlink retargets.

Real files in a temporary kubelet layout (pods/<ns>_<pod>_<uid>/<container>/0.log plus the
containers/ symlink); reliability §4 A (T02, T03, T12) and spec §2.4.
"""

from __future__ import annotations

import asyncio
import os

import orjson

from tests.integration.sources.tail.conftest import (
    Collector,
    Tail,
    append,
    compress,
    cri,
    metric,
    positions,
    rotate,
    wait_until,
)


def lost(tail: Tail, reason: str) -> float:
    return metric(tail.metrics, "shipper_lost_bytes_total", source="tail", reason=reason)


def sent_on_disk(tail: Tail) -> dict[str, int]:
    path = tail.state / "tail" / "positions.json"
    return orjson.loads(path.read_bytes()).get("sent", {}) if path.exists() else {}


def text(start: int, stop: int) -> str:
    return "".join(cri(i) for i in range(start, stop))


async def test_rotations_during_an_outage_lose_nothing_while_the_files_are_held(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, text(0, 100))
    collector = Collector()
    collector.gate.clear()  # outputs full: the read loop is blocked in emit
    async with tail.running(collector, read_chunk_bytes=1024, max_batch_records=5):
        await wait_until(lambda: collector.attempts == 1)
        first = rotate(real, "20240101-000000")
        append(real, text(100, 150))
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 2,
                         what="the new generation opened while reading is blocked")
        second = rotate(real, "20240101-000100")
        append(real, text(150, 180))
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 3)
        compress(first)  # kubelet compresses and deletes: we still hold the descriptors
        compress(second)
        collector.gate.set()
        await wait_until(lambda: len(collector.records) == 180, timeout=10)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="rotated generations retired")
    assert sorted(collector.logs()) == sorted(f"line {i}" for i in range(180))
    assert len({r.doc_id for r in collector.records}) == 180
    assert lost(tail, "compressed_unread") == 0 and lost(tail, "deleted_unread") == 0


async def test_a_generation_compressed_before_it_was_seen_is_counted_exactly(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, text(0, 10))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 10)
        first = rotate(real, "20240101-000000")  # all of this between two path checks
        append(real, text(100, 140))
        second = rotate(real, "20240101-000100")
        unseen = second.stat().st_size
        compress(second)
        compress(first)
        append(real, text(200, 210))
        await wait_until(lambda: len(collector.records) == 20, timeout=10)
        await wait_until(lambda: lost(tail, "compressed_unread") > 0)
        await asyncio.sleep(0.5)  # more rescans must not count it again
    assert sorted(collector.logs()) == sorted(
        f"line {i}" for i in [*range(10), *range(200, 210)])
    assert lost(tail, "compressed_unread") == unseen


async def test_a_restart_after_several_rotations_resumes_the_rotated_generation(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, text(0, 50))
    first_run = Collector(auto_ack=False)
    async with tail.running(first_run, max_batch_records=10):
        await wait_until(lambda: len(first_run.batches) == 5)
        for batch in first_run.batches[:2]:
            first_run.ack(batch)  # lines 0-19 safe, 20-49 in flight when we stop
    rotate(real, "20240101-000000")  # kubelet rotates twice while the agent is down
    append(real, text(100, 130))
    rotate(real, "20240101-000100")
    append(real, text(200, 220))
    second_run = Collector()
    async with tail.running(second_run, max_batch_records=10, read_from_head=False):
        await wait_until(lambda: len(second_run.records) == 80, timeout=10)
        await asyncio.sleep(0.3)
    assert sorted(second_run.logs()) == sorted(
        f"line {i}" for i in [*range(20, 50), *range(100, 130), *range(200, 220)])
    first_ids = {r.body["log"]: r.doc_id for r in first_run.records}
    assert all(first_ids[r.body["log"]] == r.doc_id
               for r in second_run.records if r.body["log"] in first_ids)
    assert lost(tail, "compressed_unread") == 0


async def test_a_checkpointed_generation_compressed_while_down_counts_its_unread_rest(
        tail: Tail) -> None:
    real, _ = tail.pod_file()
    append(real, text(0, 50))
    first_run = Collector(auto_ack=False)
    async with tail.running(first_run, max_batch_records=10):
        await wait_until(lambda: len(first_run.batches) == 5)
        first_run.ack(first_run.batches[0])
    safe, sent = len(text(0, 10)), len(text(0, 50))
    append(real, text(50, 60))  # written while the agent is down: never read
    first = rotate(real, "20240101-000000")
    size = first.stat().st_size
    append(real, text(100, 130))
    rotate(real, "20240101-000100")
    compress(first)
    append(real, text(200, 205))
    second_run = Collector()
    async with tail.running(second_run, max_batch_records=10):
        await wait_until(lambda: len(second_run.records) == 35, timeout=10)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="rotated generation retired")
        await wait_until(lambda: len(positions(tail.state)) == 1, what="settled entries gone")
    assert sorted(second_run.logs()) == sorted(
        f"line {i}" for i in [*range(100, 130), *range(200, 205)])
    # Lines 10-49 were sent but never acknowledged: maybe delivered, so not "lost".
    assert lost(tail, "compressed_unread") == size - sent > 0
    assert metric(tail.metrics, "shipper_unconfirmed_bytes_total", source="tail",
                  reason="compressed_unread") == sent - safe
    (entry,) = positions(tail.state).values()
    assert entry["offset"] == os.path.getsize(real)


async def test_a_generation_delivered_but_not_checkpointed_before_a_kill_is_not_lost(
        tail: Tail) -> None:
    """SIGKILL after the output accepted every line but before their checkpoint was saved,
    then the file is rotated and compressed while the agent is down: nothing is known to be
    lost (the lines were sent), so nothing is counted as lost; the sent range is reported as
    unconfirmed, exactly."""
    real, _ = tail.pod_file()
    append(real, text(0, 50))
    positions_file = tail.state / "tail" / "positions.json"
    first_run = Collector(auto_ack=False)  # delivered, but the acks never come back
    async with tail.running(first_run, max_batch_records=10):
        await wait_until(lambda: len(first_run.batches) == 5)
        await wait_until(lambda: list(sent_on_disk(tail).values())
                         == [len(text(0, 50))], what="the sent offset on disk")
        killed = positions_file.read_bytes()
    positions_file.write_bytes(killed)  # no final save
    first = rotate(real, "20240101-000000")
    size = first.stat().st_size
    append(real, text(100, 110))
    rotate(real, "20240101-000100")
    compress(first)
    append(real, text(200, 205))
    second_run = Collector()
    async with tail.running(second_run, max_batch_records=10):
        await wait_until(lambda: len(second_run.records) == 15, timeout=10)
        await wait_until(lambda: len(positions(tail.state)) == 1, timeout=10,
                         what="settled entries gone")
    assert lost(tail, "compressed_unread") == 0
    assert metric(tail.metrics, "shipper_unconfirmed_bytes_total", source="tail",
                  reason="compressed_unread") == size


async def test_a_symlink_retargeted_on_container_restart_delivers_both_targets(
        tail: Tail) -> None:
    real, link = tail.pod_file()
    append(real, text(0, 20))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 20)
        restarted = real.with_name("1.log")
        append(restarted, text(100, 130))
        append(real, text(20, 25))  # the old container's last words, written just before
        tmp = link.with_name(link.name + ".new")
        tmp.symlink_to(restarted)
        os.replace(tmp, link)  # the same /var/log/containers path now names 1.log
        await wait_until(lambda: len(collector.records) == 55, timeout=10)
        await wait_until(lambda: metric(tail.metrics, "shipper_files_open", source="tail") == 1,
                         what="old target retired")
        append(restarted, text(130, 135))
        await wait_until(lambda: len(collector.records) == 60)
    assert sorted(collector.logs()) == sorted(
        f"line {i}" for i in [*range(25), *range(100, 135)])
    assert len({r.doc_id for r in collector.records}) == 60


async def test_a_retarget_while_the_agent_is_down_still_finishes_the_old_target(
        tail: Tail) -> None:
    real, link = tail.pod_file()
    append(real, text(0, 10))
    first_run = Collector()
    async with tail.running(first_run):
        await wait_until(lambda: len(first_run.records) == 10)
    append(real, text(10, 15))
    restarted = real.with_name("1.log")
    append(restarted, text(100, 110))
    link.unlink()
    link.symlink_to(restarted)
    second_run = Collector()
    async with tail.running(second_run):
        await wait_until(lambda: len(second_run.records) == 15, timeout=10)
        await asyncio.sleep(0.3)
    assert sorted(second_run.logs()) == sorted(
        f"line {i}" for i in [*range(10, 15), *range(100, 110)])


async def test_a_cri_line_split_by_the_rotation_is_one_record(tail: Tail) -> None:
    real, _ = tail.pod_file()
    collector = Collector()
    async with tail.running(collector):
        append(real, cri(1) + cri(2, tag="P", text="first half, "))
        await wait_until(lambda: len(collector.records) == 1)
        rotate(real, "20240101-000000")
        append(real, cri(3, tag="F", text="second half") + cri(4))
        await wait_until(lambda: len(collector.records) == 3, timeout=10)
        await asyncio.sleep(0.3)
    assert collector.logs() == ["line 1", "first half, second half", "line 4"]
    joined = collector.records[1]
    assert joined.doc_id.split("-")[0] == collector.records[0].doc_id.split("-")[0]


async def test_a_container_started_and_rotated_while_the_agent_was_down_is_read(
        tail: Tail) -> None:
    first_real, _ = tail.pod_file("web")
    append(first_real, text(0, 5))
    first_run = Collector()
    async with tail.running(first_run):
        await wait_until(lambda: len(first_run.records) == 5)
    real, _ = tail.pod_file("late", cid="f" * 64)  # created while the agent is down
    append(real, text(100, 120))
    older = rotate(real, "20240101-000000")
    append(real, text(200, 210))
    rotate(real, "20240101-000100")
    packed = compress(older).stat().st_size and len(text(100, 120))
    append(real, text(300, 305))
    second_run = Collector()
    async with tail.running(second_run):
        await wait_until(lambda: len(second_run.records) == 15, timeout=10)
        await asyncio.sleep(0.3)
    assert sorted(second_run.logs()) == sorted(
        f"line {i}" for i in [*range(200, 210), *range(300, 305)])
    assert lost(tail, "compressed_unread") == packed
