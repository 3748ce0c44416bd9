"""The read pass tells a failure to read a file from a failure of the pipeline it emits to.

An OSError while reading the file gives that file up (logged ``tail_read_failed``). One
raised by ``emit`` (a buffer, a filter) is not the file's: it propagates, the file is kept,
and the batch it was emitting is never acknowledged, so its checkpoint stays before it and
a restart reads it again.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from shipper.metrics import Metrics
from shipper.record import Batch
from shipper.sources.tail import TailConfig, TailSource

CID = "ab" * 32
LINES = [f"2024-01-01T12:00:00.{i:09d}Z stdout F line {i}\n" for i in range(6)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path) -> TailSource:
    config = TailConfig(include=[str(tmp_path / "logs" / "*.log")], max_batch_records=2,
                        exclude_own_pod=False)
    return TailSource("tail", config, tmp_path / "state", Metrics(), clock=Clock())


@pytest.fixture
def logfile(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / f"app_ns_c-{CID}.log"
    path.parent.mkdir()
    path.write_text("".join(LINES))
    return path


def sealed(batch: Batch) -> list[str]:
    assert batch.ack is not None
    batch.ack.seal()
    return [r.body["log"] for r in batch.records]


async def test_an_oserror_raised_by_emit_propagates_and_the_file_is_kept(
        tmp_path: Path, logfile: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = make(tmp_path)
    await source.open()
    source.poll_files()
    shipped: list[str] = []

    async def emit(batch: Batch) -> None:
        if shipped:  # the second batch: the pipeline fails
            raise OSError(errno.ENOSPC, "No space left on device")
        shipped.extend(sealed(batch))

    with caplog.at_level(logging.INFO), pytest.raises(OSError) as raised:
        await source.reading.read_pass(emit)
    assert raised.value.errno == errno.ENOSPC
    assert shipped == ["line 0", "line 1"]
    (reader,) = source.files.readers
    assert not reader.given_up and reader.attached and not reader.closed
    assert not [r for r in caplog.records if getattr(r, "event", "") == "tail_read_failed"]
    (entry,) = source.store.entries.values()
    assert entry.offset == len(LINES[0]) + len(LINES[1]), "only the acknowledged batch"
    assert not entry.gone
    await source.stop()

    again = make(tmp_path)  # the agent restarts: the failed batch is read again
    await again.open()
    again.poll_files()
    delivered: list[str] = []

    async def collect(batch: Batch) -> None:
        delivered.extend(sealed(batch))

    await again.read_available(collect)
    assert delivered == [f"line {i}" for i in range(2, 6)]
    await again.stop()


async def test_an_oserror_reading_the_file_gives_that_file_up(
        tmp_path: Path, logfile: Path, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = make(tmp_path)
    await source.open()
    source.poll_files()  # opened and identified
    (reader,) = source.files.readers
    assert reader.identity is not None
    real_pread = os.pread

    def failing_pread(fd: int, length: int, offset: int) -> bytes:
        if fd == reader.fd:
            raise OSError(errno.EIO, "Input/output error")
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", failing_pread)
    emitted: list[Batch] = []

    async def emit(batch: Batch) -> None:
        emitted.append(batch)

    with caplog.at_level(logging.INFO):
        await source.reading.read_pass(emit)
    monkeypatch.undo()
    assert emitted == []
    assert reader.given_up and not reader.attached
    assert [r for r in caplog.records if getattr(r, "event", "") == "tail_read_failed"]
    await source.stop()
