"""Every line exactly once; acks hold checkpoints; restarts resume (reliability §4 A)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading

from shipper.sources.tail import TailSource
from tests.integration.sources.tail.conftest import (
    CID,
    Collector,
    Tail,
    append,
    cri,
    docker,
    metric,
    positions,
    wait_until,
)


async def test_every_line_of_several_files_arrives_exactly_once(tail: Tail) -> None:
    _, cri_link = tail.pod_file("web", cid="a" * 64)
    _, docker_link = tail.pod_file("api", cid="b" * 64)
    plain = tail.containers / "plain.log"
    collector = Collector()
    async with tail.running(collector, read_chunk_bytes=4096, max_batch_records=50):
        for start in range(0, 600, 100):
            for path, fmt in ((cri_link, cri), (docker_link, docker), (plain, cri)):
                append(path, "".join(fmt(i) for i in range(start, start + 100)))
            await asyncio.sleep(0.01)
        await wait_until(lambda: len(collector.records) == 1800, what="1800 records")
        await asyncio.sleep(0.3)  # nothing more may come
    expected = [f"line {i}" for i in range(600)]
    for name in ("web_default", "api_default", "plain.log"):
        assert collector.logs(name) == expected
    ids = [r.doc_id for r in collector.records]
    assert len(set(ids)) == len(ids)
    assert metric(tail.metrics, "shipper_records_read_total", source="tail") == 1800


async def test_lines_written_in_pieces_are_never_split(tail: Tail) -> None:
    path = tail.containers / "slow.log"
    collector = Collector()
    async with tail.running(collector):
        text = "".join(cri(i) for i in range(20))
        for cut in range(0, len(text), 37):
            append(path, text[cut:cut + 37])
            await asyncio.sleep(0.005)
        await wait_until(lambda: len(collector.records) == 20)
    assert collector.logs() == [f"line {i}" for i in range(20)]


async def test_symlinked_kubelet_layout_gives_kubernetes_names(tail: Tail) -> None:
    real, link = tail.pod_file("my.dotted.pod", "kube-system", "side-car")
    append(real, cri(1, "stderr"))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 1)
    (record,) = collector.records
    assert record.body["kubernetes"] == {"namespace_name": "kube-system",
                                         "pod_name": "my.dotted.pod",
                                         "container_name": "side-car"}
    assert record.body["docker"] == {"container_id": CID}
    assert record.body["stream"] == "stderr"
    assert record.tag.endswith(f"var.log.containers.{link.name}")


async def test_a_chain_of_two_symlinks_is_followed(tail: Tail) -> None:
    docker_dir = tail.root / "var" / "lib" / "docker" / "containers" / CID
    docker_dir.mkdir(parents=True)
    target = docker_dir / f"{CID}-json.log"
    append(target, docker(1))
    middle = tail.pods / "ns_pod_uid" / "c" / "0.log"
    middle.parent.mkdir(parents=True)
    middle.symlink_to(target)
    (tail.containers / f"pod_ns_c-{CID}.log").symlink_to(middle)
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 1)
    assert collector.logs() == ["line 1"]


async def test_the_checkpoint_moves_only_over_the_acknowledged_prefix(tail: Tail) -> None:
    path = tail.containers / "acks.log"
    append(path, "".join(cri(i) for i in range(30)))
    collector = Collector(auto_ack=False)
    async with tail.running(collector, max_batch_records=10):
        await wait_until(lambda: len(collector.batches) == 3)
        await asyncio.sleep(0.2)
        (entry,) = positions(tail.state).values()
        assert entry["offset"] == 0
        first, second, third = collector.batches
        collector.ack(third)
        collector.ack(second)
        await asyncio.sleep(0.2)
        assert next(iter(positions(tail.state).values()))["offset"] == 0
        collector.ack(first)
        size = os.path.getsize(path)
        await wait_until(lambda: next(iter(positions(tail.state).values()))["offset"] == size,
                         what="checkpoint at the end of the file")


async def test_a_restart_resumes_after_the_acknowledged_lines(tail: Tail) -> None:
    path = tail.containers / "restart.log"
    append(path, "".join(cri(i) for i in range(50)))
    first_run = Collector(auto_ack=False)
    async with tail.running(first_run, max_batch_records=10):
        await wait_until(lambda: len(first_run.batches) == 5)
        first_run.ack(first_run.batches[0])
        first_run.ack(first_run.batches[1])
        first_run.ack(first_run.batches[3])  # out of order: not part of the prefix
    second_run = Collector()
    async with tail.running(second_run, max_batch_records=10):
        await wait_until(lambda: len(second_run.records) == 30)
        await asyncio.sleep(0.3)
    assert second_run.logs() == [f"line {i}" for i in range(20, 50)]
    first_ids = {r.body["log"]: r.doc_id for r in first_run.records}
    assert all(first_ids[r.body["log"]] == r.doc_id for r in second_run.records)


async def test_read_from_head_false_starts_at_the_end(tail: Tail) -> None:
    path = tail.containers / "old.log"
    append(path, "".join(cri(i) for i in range(10)) + "2024-01-01T12:00:00Z stdout F cut")
    collector = Collector()
    async with tail.running(collector, read_from_head=False):
        await asyncio.sleep(0.3)
        append(path, " tail\n" + cri(10))
        await wait_until(lambda: len(collector.records) == 1)
        await asyncio.sleep(0.2)
    assert collector.logs() == ["line 10"]


async def test_a_partial_message_split_across_reads_is_one_record(tail: Tail) -> None:
    path = tail.containers / "partial.log"
    collector = Collector()
    async with tail.running(collector):
        append(path, cri(1, tag="P", text="first half, ") + cri(2, "stderr", text="other"))
        await wait_until(lambda: len(collector.records) == 1)
        append(path, cri(3, tag="F", text="second half"))
        await wait_until(lambda: len(collector.records) == 2)
    assert collector.logs() == ["other", "first half, second half"]
    assert collector.records[1].doc_id.endswith("-0")


async def test_a_dangling_partial_piece_ships_after_partial_flush_secs(tail: Tail) -> None:
    path = tail.containers / "dangling.log"
    collector = Collector()
    async with tail.running(collector):
        append(path, cri(1, tag="P", text="exited mid-line"))
        await wait_until(lambda: len(collector.records) == 1, timeout=3)
    assert collector.logs() == ["exited mid-line"]


async def test_over_long_lines_ship_truncated_and_flagged(tail: Tail) -> None:
    path = tail.containers / "long.log"
    collector = Collector()
    async with tail.running(collector, max_line_bytes=100, read_chunk_bytes=4096):
        append(path, cri(1, text="y" * 200_000) + cri(2))
        await wait_until(lambda: len(collector.records) == 2)
    long, short = collector.records
    assert long.body["log"] == "y" * 100
    assert long.body["shipper"] == {"flags": ["truncated"], "original_bytes": 200_000}
    assert short.body["log"] == "line 2"
    assert metric(tail.metrics, "shipper_records_flagged_total", source="tail",
                  flag="truncated") == 1


async def test_acks_released_on_another_thread_still_move_the_checkpoint(tail: Tail) -> None:
    path = tail.containers / "threads.log"
    append(path, "".join(cri(i) for i in range(30)))
    collector = Collector(auto_ack=False)
    async with tail.running(collector, max_batch_records=10):
        await wait_until(lambda: len(collector.batches) == 3)
        threads = [threading.Thread(target=collector.ack, args=(b,)) for b in collector.batches]
        for thread in reversed(threads):
            thread.start()
            thread.join()
        size = os.path.getsize(path)
        await wait_until(lambda: next(iter(positions(tail.state).values()))["offset"] == size)


async def test_cancelling_run_without_stop_still_persists_acked_progress(tail: Tail) -> None:
    path = tail.containers / "cancel.log"
    append(path, "".join(cri(i) for i in range(10)))
    collector = Collector()
    source = TailSource("tail", tail.config(checkpoint_interval_secs=60), tail.state,
                        tail.metrics)
    task = asyncio.create_task(source.run(collector))
    await wait_until(lambda: len(collector.records) == 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    (entry,) = positions(tail.state).values()
    assert entry["offset"] == os.path.getsize(path)
    assert metric(tail.metrics, "shipper_files_open", source="tail") == 0


async def test_reading_a_backlog_lets_the_rest_of_the_agent_run(tail: Tail) -> None:
    """Outputs that never block (a fast or discarding destination) must not turn one read
    pass over a big backlog into seconds without delivery, acks or health probes."""
    links = [tail.pod_file(f"app{n}", cid=f"{n:x}" * 64)[1] for n in range(3)]
    for link in links:
        append(link, "".join(cri(i) for i in range(6000)))
    collector = Collector()
    seen: set[int] = set()

    async def other_task() -> None:
        for _ in range(100_000):  # bounded; cancelled once every record arrived
            seen.add(len(collector.batches))
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_task())
    try:
        async with tail.running(collector, max_batch_records=100):
            await wait_until(lambda: len(collector.records) == 18_000, what="18000 records")
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
    total = len(collector.batches)
    assert len([n for n in seen if 0 < n < total]) >= total // 2
