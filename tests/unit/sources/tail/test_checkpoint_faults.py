"""A checkpoint write that fails never moves or damages the saved positions."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from shipper.errors import StorageError
from shipper.metrics import CHECKPOINT_OPS, Metrics
from shipper.sources.tail.checkpoints import CheckpointFiles, CheckpointStore, Entry
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.source import TailSource
from shipper.telemetry import TelemetryServer

STEPS = ["mkdir", "create", "write", "fsync", "rename", "fsync_dir"]


class FaultyFiles(CheckpointFiles):
    """Fails one step with an errno; ``write`` lands half its bytes first."""

    def __init__(self) -> None:
        self.faults: dict[str, int] = {}

    def _maybe(self, step: str) -> None:
        code = self.faults.get(step)
        if code is not None:
            raise OSError(code, os.strerror(code))

    def makedirs(self, directory: Path) -> None:
        self._maybe("mkdir")
        super().makedirs(directory)

    def create(self, path: Path) -> int:
        self._maybe("create")
        return super().create(path)

    def write(self, fd: int, data: bytes) -> None:
        if "write" in self.faults:
            os.write(fd, data[: len(data) // 2])
        self._maybe("write")
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe("fsync")
        super().fsync(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self._maybe("rename")
        super().replace(src, dst)

    def fsync_dir(self, directory: Path) -> None:
        self._maybe("fsync_dir")
        super().fsync_dir(directory)


def saved_offset(directory: Path) -> int:
    store = CheckpointStore(directory)
    store.load()
    return store.entries["a"].offset


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EEXIST, errno.EACCES])
def test_a_failed_write_keeps_the_saved_position_and_a_later_write_succeeds(
        tmp_path: Path, step: str, code: int) -> None:
    files = FaultyFiles()
    store = CheckpointStore(tmp_path / "src", files)
    store.put("a", Entry("/p", "/real", "cid", 1, 2, "fp", 0, 100))
    store.write(store.snapshot())
    store.set_offset("a", 200)
    files.faults[step] = code
    with pytest.raises(StorageError, match=step):
        store.write(store.snapshot())
    if step == "fsync_dir":  # renamed already: the new file is whole, only not yet durable
        assert saved_offset(tmp_path / "src") == 200
    else:
        assert saved_offset(tmp_path / "src") == 100, "a failed write never moves it"
    assert not (tmp_path / "src" / "positions.json.tmp").exists(), "no partial file left"
    del files.faults[step]
    store.set_offset("a", 300)
    store.write(store.snapshot())
    assert saved_offset(tmp_path / "src") == 300
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["positions.json"]


def checkpoint_errors(metrics: Metrics, op: str) -> float | None:
    return metrics.registry.get_sample_value(
        "shipper_checkpoint_storage_errors_total", {"source": "tail", "op": op})


async def faulty_source(tmp_path: Path) -> tuple[TailSource, FaultyFiles, Metrics]:
    metrics = Metrics()
    metrics.declare_tail_source("tail")
    source = TailSource("tail", TailConfig(include=[str(tmp_path / "logs" / "*.log")]),
                        tmp_path / "state", metrics)
    await source.open()
    files = FaultyFiles()
    source.store.files = files
    source.store.put("a", Entry("/p", "/real", "cid", 1, 2, "fp", 0, 100))
    return source, files, metrics


def events(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(1 for r in caplog.records if getattr(r, "event", None) == name)


@pytest.mark.parametrize("step", STEPS)
async def test_a_failed_positions_write_is_counted_and_not_ready_until_one_succeeds(
        tmp_path: Path, step: str, caplog: pytest.LogCaptureFixture) -> None:
    assert step in CHECKPOINT_OPS, "declared at zero up front"
    source, files, metrics = await faulty_source(tmp_path)
    telemetry = TelemetryServer("127.0.0.1:0", metrics, [], sources=[source.health])
    assert checkpoint_errors(metrics, step) == 0
    assert telemetry.readiness_problems() == []
    files.faults[step] = errno.ENOSPC
    caplog.set_level(logging.INFO)
    await source._save(force=True)
    await source._save(force=True)
    assert checkpoint_errors(metrics, step) == 2
    [problem] = telemetry.readiness_problems()
    assert problem.startswith("source tail: positions file cannot be written")
    assert os.strerror(errno.ENOSPC) in problem and f"({step})" in problem
    assert events(caplog, "tail_checkpoint_failed") == 1, "logged once while it lasts"
    files.faults.clear()
    await source._save(force=True)
    await source._save(force=True)
    assert telemetry.readiness_problems() == []
    assert events(caplog, "tail_checkpoint_recovered") == 1, "recovery logged once"
    assert checkpoint_errors(metrics, step) == 2


async def test_a_failed_write_at_exit_is_counted(tmp_path: Path) -> None:
    source, files, metrics = await faulty_source(tmp_path)
    files.faults["write"] = errno.ENOSPC
    source._shutdown_sync()
    assert checkpoint_errors(metrics, "write") == 1
    assert source.health.problem() is not None
