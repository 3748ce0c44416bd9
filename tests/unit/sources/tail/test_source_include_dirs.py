"""An include directory that does not exist: warned about at start, its appearance logged,
counted by ``shipper_tail_include_dirs_missing`` meanwhile; its files are read once it is
there (readiness is not affected: a booting node creates it with its first container)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shipper.metrics import Metrics
from shipper.sources.tail import TailConfig, TailSource

LINE = "2024-01-01T12:00:00.000000000Z stdout F hello\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def test_a_missing_include_dir_is_warned_once_and_its_appearance_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    present = tmp_path / "present"
    present.mkdir()
    later = tmp_path / "later"
    clock = Clock()
    metrics = Metrics()
    config = TailConfig(include=[str(present / "*.log"), str(later / "*.log")])
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")

    def missing() -> float | None:
        return metrics.registry.get_sample_value("shipper_tail_include_dirs_missing",
                                                 {"source": "tail"})

    source.poll_files()
    (warning,) = events(caplog, "tail_include_dir_missing")
    assert warning.levelno == logging.WARNING
    assert warning.directory == str(later)  # type: ignore[attr-defined]
    assert missing() == 1
    for _ in range(10):  # rescans while it is still missing: no more lines
        clock.now += 3.0
        source.poll_files()
    assert len(events(caplog, "tail_include_dir_missing")) == 1
    assert events(caplog, "tail_include_dir_appeared") == []

    later.mkdir()
    (later / "app.log").write_text(LINE)
    clock.now += 3.0
    source.poll_files()
    (appeared,) = events(caplog, "tail_include_dir_appeared")
    assert appeared.directory == str(later)  # type: ignore[attr-defined]
    assert missing() == 0
    assert str(later / "app.log") in source.files.by_path, "its files are followed"
    for _ in range(3):
        clock.now += 3.0
        source.poll_files()
    assert len(events(caplog, "tail_include_dir_appeared")) == 1
    assert len(events(caplog, "tail_include_dir_missing")) == 1


def test_all_include_dirs_present_says_nothing(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    config = TailConfig(include=[str(tmp_path / "*.log")])
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=Clock())
    caplog.set_level(logging.INFO, logger="shipper")
    source.poll_files()
    assert events(caplog, "tail_include_dir_missing") == []
    assert metrics.registry.get_sample_value("shipper_tail_include_dirs_missing",
                                             {"source": "tail"}) == 0


def test_an_include_dir_the_agent_may_not_list_is_warned_counted_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Mode 000 for a non-root agent: ``glob`` finds nothing there and says nothing. As root
    here, the listing failure is injected at the discovery's directory probe."""
    import errno

    from shipper.sources.tail import discovery
    from shipper.sources.tail.unreadable import REPEAT_SECS

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "app.log").write_text(LINE)
    denied = {str(locked)}
    real_probe = discovery.probe_dir

    def probe(directory: str) -> None:
        if directory in denied:
            raise PermissionError(errno.EACCES, "Permission denied", directory)
        real_probe(directory)

    monkeypatch.setattr(discovery, "probe_dir", probe)
    clock = Clock()
    metrics = Metrics()
    config = TailConfig(include=[str(locked / "*.log")])
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")

    def gauge(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"source": "tail"})

    source.poll_files()
    (warning,) = events(caplog, "tail_include_dir_unreadable")
    assert warning.levelno == logging.WARNING
    assert warning.directory == str(locked)  # type: ignore[attr-defined]
    assert "Permission denied" in warning.getMessage()
    assert gauge("shipper_tail_include_dirs_unreadable") == 1
    assert gauge("shipper_tail_include_dirs_missing") == 0, "it exists"
    assert events(caplog, "tail_include_dir_missing") == []

    for _ in range(int(REPEAT_SECS // 3) - 1):  # rescans within the repeat period: quiet
        clock.now += 3.0
        source.poll_files()
    assert len(events(caplog, "tail_include_dir_unreadable")) == 1
    clock.now += 6.0
    source.poll_files()
    assert len(events(caplog, "tail_include_dir_unreadable")) == 2, "repeated while it lasts"

    denied.clear()
    clock.now += 3.0
    source.poll_files()
    (readable,) = events(caplog, "tail_include_dir_readable")
    assert readable.levelno == logging.INFO
    assert gauge("shipper_tail_include_dirs_unreadable") == 0
    clock.now += 3.0
    source.poll_files()
    assert len(events(caplog, "tail_include_dir_readable")) == 1
    assert len(events(caplog, "tail_include_dir_unreadable")) == 2
