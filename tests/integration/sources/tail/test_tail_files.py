"""Deleted files, odd bytes, partial lines across restarts, multiline, exclusions (§4 A)."""

from __future__ import annotations

import asyncio
import os

import pytest

from shipper.sources.tail import TailConfig
from shipper.sources.tail.discovery import Watcher
from tests.integration.sources.tail.conftest import (
    CID,
    Collector,
    Tail,
    append,
    cri,
    metric,
    rotate,
    wait_until,
)


def gauge(tail: Tail, name: str) -> float:
    return metric(tail.metrics, name, source="tail")


async def test_a_deleted_file_is_held_only_for_the_timeout_and_its_rest_is_counted(
        tail: Tail) -> None:
    real, link = tail.pod_file()
    written = "".join(cri(i) for i in range(200))
    append(real, written)
    collector = Collector()
    collector.gate.clear()  # outputs blocked: the file cannot be read to its end
    async with tail.running(collector, read_chunk_bytes=512, max_batch_records=2,
                            deleted_file_timeout_secs=0.5):
        await wait_until(lambda: collector.attempts == 1)
        link.unlink()
        real.unlink()  # kubelet garbage-collects the container
        await wait_until(lambda: gauge(tail, "shipper_files_deleted_open") == 1)
        await wait_until(lambda: gauge(tail, "shipper_files_open") == 0, timeout=5,
                         what="descriptor released while reading is still blocked")
        assert collector.attempts == 1
        collector.gate.set()
        await asyncio.sleep(0.5)
    delivered = collector.logs()
    assert delivered == [f"line {i}" for i in range(len(delivered))]  # what was read, once
    shipped = sum(len(cri(i)) for i in range(len(delivered)))
    lost = metric(tail.metrics, "shipper_lost_bytes_total", source="tail",
                  reason="deleted_unread")
    assert 0 < len(delivered) < 200
    assert shipped + lost == len(written)


async def test_a_partial_last_line_across_a_restart_is_one_record(tail: Tail) -> None:
    path = tail.containers / "app.log"
    append(path, cri(1) + "2024-01-01T12:00:00.000000002Z stdout F abc")
    first_run = Collector()
    async with tail.running(first_run):
        await wait_until(lambda: len(first_run.records) == 1)
        await asyncio.sleep(0.3)
    append(path, "def\n")
    second_run = Collector()
    async with tail.running(second_run):
        await wait_until(lambda: len(second_run.records) == 1)
        await asyncio.sleep(0.3)
    assert first_run.logs() == ["line 1"] and second_run.logs() == ["abcdef"]
    assert first_run.records[0].doc_id != second_run.records[0].doc_id


async def test_bom_crlf_nul_and_a_missing_final_newline_are_handled(tail: Tail) -> None:
    real, _ = tail.pod_file()
    body = ("\ufeff" + cri(1).replace("\n", "\r\n") + cri(2, text="nul\0inside")
            + "\0\0\0" + cri(3) + "2024-01-01T12:00:00.000000004Z stdout F no newline")
    real.write_bytes(body.encode())
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 3)
        rotate(real, "20240101-000000")  # closing the old file completes its last line
        await wait_until(lambda: len(collector.records) == 4, timeout=5)
    assert collector.logs() == ["line 1", "nul\0inside", "line 3", "no newline"]
    assert all("shipper" not in r.body for r in collector.records)  # nothing malformed


async def test_docker_files_with_a_bom_are_still_json(tail: Tail) -> None:
    path = tail.containers / "docker.log"
    path.write_bytes(b'\xef\xbb\xbf{"log":"hi\\n","stream":"stdout","time":'
                     b'"2024-01-01T12:00:00.000000001Z"}\n')
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 1)
    assert collector.logs() == ["hi"] and collector.records[0].body["stream"] == "stdout"


JAVA = r"\d{4}-\d\d-\d\d \d\d:"


async def test_a_stack_trace_is_one_record_even_across_a_rotation(tail: Tail) -> None:
    real, _ = tail.pod_file("payments")
    rule = {"files": ["payments_*"], "start_pattern": JAVA, "flush_timeout_secs": 0.3}
    from shipper.sources.tail.config import MultilineConfig

    collector = Collector()
    async with tail.running(collector, multiline=[MultilineConfig(**rule)]):
        append(real, cri(1, text="2024-01-01 12:00:00 ERROR boom")
               + cri(2, text="java.lang.IllegalStateException: x")
               + cri(3, text="\tat a.B.c(B.java:10)"))
        await asyncio.sleep(0.1)
        rotate(real, "20240101-000000")
        append(real, cri(4, text="\tat a.B.main(B.java:3)")
               + cri(5, text="2024-01-01 12:00:01 INFO next"))
        await wait_until(lambda: len(collector.records) == 2, timeout=10)
    trace, following = collector.records
    assert trace.body["log"] == ("2024-01-01 12:00:00 ERROR boom\n"
                                 "java.lang.IllegalStateException: x\n"
                                 "\tat a.B.c(B.java:10)\n\tat a.B.main(B.java:3)")
    assert following.body["log"] == "2024-01-01 12:00:01 INFO next"
    assert trace.doc_id != following.doc_id


async def test_the_agents_own_pod_is_not_tailed(tail: Tail,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAME", "shipper-abcde")
    monkeypatch.setenv("POD_NAMESPACE", "logging")
    own, _ = tail.pod_file("shipper-abcde", "logging", "shipper", cid="c" * 64)
    other, _ = tail.pod_file("web", "default", "nginx", cid=CID)
    append(own, cri(1, text="agent log line"))
    append(other, cri(2))
    collector = Collector()
    async with tail.running(collector):
        await wait_until(lambda: len(collector.records) == 1)
        await asyncio.sleep(0.3)
        assert gauge(tail, "shipper_files_open") == 1
    assert collector.logs() == ["line 2"]


async def test_new_files_are_found_by_polling_when_file_events_are_unavailable(
        tail: Tail, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_events(self: Watcher, dirs: list[tuple[str, bool]]) -> None:
        self.complete = False  # as if inotify were missing or out of watches

    monkeypatch.setattr(Watcher, "ensure", no_events)
    collector = Collector()
    async with tail.running(collector, refresh_interval_secs=3600):
        await asyncio.sleep(0.2)
        real, _ = tail.pod_file("late")
        append(real, cri(7))
        await wait_until(lambda: len(collector.records) == 1, timeout=8)
    assert collector.logs() == ["line 7"]


async def test_3000_files_share_the_default_descriptor_cap_and_all_are_read(
        tail: Tail) -> None:
    files = 3000
    for n in range(files):
        path = tail.containers / f"f{n:04d}.log"
        path.write_text(cri(n) + cri(n + 100_000))
    fds = "/proc/self/fd"
    baseline = len(os.listdir(fds))
    peak = 0
    collector = Collector()
    cap = TailConfig().max_open_files
    async with tail.running(collector):
        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, len(os.listdir(fds)))
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        try:
            await wait_until(lambda: len(collector.records) == 2 * files, timeout=60,
                             what="every line of every file")
        finally:
            sampler.cancel()
        assert gauge(tail, "shipper_files_open") <= cap
    assert sorted(collector.logs()) == sorted(
        [f"line {n}" for n in range(files)] + [f"line {n + 100_000}" for n in range(files)])
    assert peak - baseline <= cap + 8  # +8: watch and checkpoint descriptors


@pytest.mark.slow
async def test_busy_files_beyond_the_cap_all_keep_progressing(tail: Tail) -> None:
    """T17 soak: 600 files written continuously with 50 descriptors; no file starves."""
    files, cap, rounds = 600, 50, 40
    paths = [tail.containers / f"busy{n:03d}.log" for n in range(files)]
    for path in paths:
        path.touch()
    collector = Collector()
    last: dict[str, float] = {}  # tag -> when a record of that file last arrived
    loop = asyncio.get_running_loop()
    worst = 0.0

    async def track() -> None:
        done = 0
        while True:
            now = loop.time()
            for batch in collector.batches[done:]:
                for record in batch.records:
                    last[record.tag] = now
            done = len(collector.batches)
            await asyncio.sleep(0.1)

    async with tail.running(collector, max_open_files=cap):
        tracker = asyncio.create_task(track())
        try:
            for round_ in range(rounds):
                for n, path in enumerate(paths):
                    append(path, cri(round_ * files + n))
                await asyncio.sleep(0.5)
                if round_ >= 10 and len(last) == files:  # every file keeps being written
                    worst = max(worst, loop.time() - min(last.values()))
            await wait_until(lambda: len(collector.records) == files * rounds, timeout=120)
        finally:
            tracker.cancel()
    assert len(last) == files
    assert 0 < worst < 60, f"a file waited {worst:.0f}s for its turn"
