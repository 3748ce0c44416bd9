"""Named scenarios of the matrix that need a choreography of their own.

* Split messages and rotations written while the tail is blocked by a full buffer.
* SIGTERM with the output down and a full disk buffer, three times, then a run with the
  output up (the way an operator restarting a stuck agent during an outage lost lines).
* Malformed lines (timed at read time) replayed after a crash in a later index: the index
  date format changes every second here (every minute in the slow variant), so the replay
  always falls into another index than the first delivery.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from shipper.crashpoints import EXIT_STATUS
from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import unique_prefix
from tests.integration.matrix.bulkproxy import BulkFaultProxy
from tests.integration.matrix.scenario import (
    DAY,
    Agent,
    LogFiles,
    check_exactly_once,
    ts,
    wait_indexed,
)


@pytest.fixture
def proxy(es_url):
    parts = urlsplit(es_url)
    with BulkFaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as p:
        yield p


def wait_blocked(agent: Agent, limit: int, timeout: float = 30) -> None:
    """Until the buffer holds at least half its limit and the tail stopped reading."""
    assert agent.proc is not None
    deadline = time.monotonic() + timeout
    last = -2.0
    while True:
        assert agent.proc.poll() is None, f"agent exited {agent.proc.returncode}"
        read = agent.metric("shipper_records_read_total")
        held = agent.metric("shipper_buffer_bytes")
        if held >= limit // 2 and read == last:
            return
        last = read
        assert time.monotonic() < deadline, f"not blocked: {held} bytes held, {read} read"
        time.sleep(0.5)


def finish(agent: Agent, es: SearchClient, index: str, want: int) -> None:
    """Start with the output up, wait for ``want`` documents, stop with SIGTERM."""
    agent.write_config(deadline=10)
    agent.start()
    try:
        agent.wait_healthy()
        wait_indexed(es, index, want, agent, 120)
        time.sleep(1.0)  # anything still in flight would now show up as an extra
        code, _ = agent.sigterm(30)
        assert code == 0, f"final SIGTERM: exit {code}, see {agent.log}"
    finally:
        agent.kill()


@pytest.mark.parametrize("buffer,stop", [
    ("disk", "sigkill"),
    pytest.param("memory", "none", marks=pytest.mark.slow),
    pytest.param("memory", "sigkill", marks=pytest.mark.slow),
    pytest.param("disk", "none", marks=pytest.mark.slow),
    pytest.param("disk", "sigterm", marks=pytest.mark.slow),
])
def test_split_messages_and_rotations_written_while_the_tail_is_blocked(
        es_url, proxy, tmp_path, buffer, stop):
    limit = 64 * 1024
    prefix = unique_prefix()
    agent = Agent(tmp_path, proxy.url, prefix, "tail", buffer, limit="64KiB", chunk="16KiB")
    files = LogFiles(agent.logs)
    es = SearchClient(es_url)
    proxy.set_mode("down")
    files.write(600, hold_last_piece=True)
    agent.start()
    try:
        agent.wait_healthy()
        wait_blocked(agent, limit)
        # Blocked: a split message is open at the end of each file; rotate, so its last piece
        # lands in the next generation, write more, rotate again with another one open.
        files.rotate()
        files.write(300, hold_last_piece=True)
        files.rotate()
        files.write(300)
        files.write(50, hold_last_piece=True)
        time.sleep(1.0)
        files.finish()
        assert agent.proc is not None and agent.proc.poll() is None
        if stop == "sigkill":
            agent.kill()
        elif stop == "sigterm":
            code, _ = agent.sigterm(30)
            assert code == 0
    finally:
        if stop != "none":
            agent.kill()
    proxy.set_mode("up")
    if stop == "none":
        try:
            wait_indexed(es, f"{prefix}-{DAY}", len(files.expected), agent, 120)
            time.sleep(1.0)
            code, _ = agent.sigterm(30)
            assert code == 0
        finally:
            agent.kill()
    else:
        finish(agent, es, f"{prefix}-{DAY}", len(files.expected))
    check_exactly_once(es, f"{prefix}-{DAY}", files.expected, agent.state, set())


class BackgroundWriter:
    """Appends ``step`` messages per file every ``pause`` seconds until ``per_file`` more."""

    def __init__(self, files: LogFiles, per_file: int, step: int = 40,
                 pause: float = 0.1) -> None:
        self.files, self.left, self.step, self.pause = files, per_file, step, pause
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="logwriter")
        self._thread.start()

    def _run(self) -> None:
        try:
            while self.left > 0 and not self._stop.is_set():
                n = min(self.step, self.left)
                self.files.write(n)
                self.left -= n
                self._stop.wait(self.pause)
        except BaseException as exc:  # reported by join
            self.error = exc

    def join(self, timeout: float = 60) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the writer did not finish"
        assert self.error is None, repr(self.error)


@pytest.mark.parametrize("writes", [
    "between_runs",
    pytest.param("while_running", marks=pytest.mark.slow),
])
def test_sigterm_with_the_output_down_and_a_full_disk_buffer_three_times_then_up(
        es_url, proxy, tmp_path, writes):
    limit = 256 * 1024
    prefix = unique_prefix()
    agent = Agent(tmp_path, proxy.url, prefix, "tail", "disk", limit="256KiB", deadline=1)
    files = LogFiles(agent.logs)
    es = SearchClient(es_url)
    proxy.set_mode("down")
    files.write(1200 if writes == "between_runs" else 600)
    writer = BackgroundWriter(files, 2400) if writes == "while_running" else None
    for run in range(3):
        agent.start()
        try:
            agent.wait_healthy()
            wait_blocked(agent, limit)
            code, took = agent.sigterm(30)
            assert code == 0, f"run {run}: SIGTERM exit {code}"
            assert took <= 4.0, f"run {run}: SIGTERM with a 1 s deadline took {took:.1f}s"
        finally:
            agent.kill()
        if writer is None:
            files.write(600)
    if writer is not None:
        writer.join()
    assert len(files.expected) == 6000
    proxy.set_mode("up")
    finish(agent, es, f"{prefix}-{DAY}", 6000)
    check_exactly_once(es, f"{prefix}-{DAY}", files.expected, agent.state, set())


def write_with_malformed(path: Path, count: int, every: int) -> dict[str, str]:
    """CRI lines, every ``every`` th one not CRI at all; marker → expected text."""
    expected: dict[str, str] = {}
    lines = []
    for n in range(count):
        if n % every == every - 1:
            text = f"not a CRI line seq=bad:{n} {'!' * 20}"
            lines.append(text)
        else:
            text = f"seq=ok:{n} fine"
            lines.append(f"{ts(n)} stdout F {text}")
        expected[f"{'bad' if n % every == every - 1 else 'ok'}:{n}"] = text
    path.write_text("".join(line + "\n" for line in lines))
    return expected


@pytest.mark.parametrize("dateformat", [
    "%Y.%m.%d.%H.%M.%S",
    pytest.param("%Y.%m.%d.%H.%M", marks=pytest.mark.slow),
])
def test_malformed_lines_replayed_after_a_crash_land_once_across_an_index_boundary(
        es_url, proxy, tmp_path, dateformat):
    prefix = unique_prefix()
    agent = Agent(tmp_path, proxy.url, prefix, "tail", "memory", dateformat=dateformat)
    agent.logs.mkdir(parents=True)
    expected = write_with_malformed(agent.logs / f"web-2_default_bad-{'b' * 64}.log", 400, 10)
    es = SearchClient(es_url)
    # Delivered, then killed before the checkpoint moved: the restart reads it all again.
    agent.start("delivery_after_send:1")
    assert agent.wait_exit(60) == EXIT_STATUS
    es.refresh(f"{prefix}-*")
    first = es.count(f"{prefix}-*")
    assert first > 0, "the first chunk was delivered before the crash"
    # Wait for the next index (bounded: one period of the date format and a margin).
    period = 1 if dateformat.endswith("%S") else 60
    boundary = (int(time.time()) // period + 1) * period
    time.sleep(max(0.0, boundary - time.time()) + 0.1)
    finish(agent, es, f"{prefix}-*", len(expected))
    check_exactly_once(es, f"{prefix}-*", expected, agent.state, set())
