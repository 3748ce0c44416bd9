"""A file the tail finds but cannot open: counted apart from the files waiting for a
descriptor, warned about again every few minutes while it lasts, and its recovery logged.

The agent runs as root here, where file modes do not stop an open: the failure is injected
at ``os.open`` for that one path (every other open is the real one).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from shipper.metrics import Metrics
from shipper.sources.tail import TailConfig, TailSource
from shipper.sources.tail.unreadable import REPEAT_SECS

LINE = "2024-01-01T12:00:00.000000000Z stdout F hello\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def deny(monkeypatch: pytest.MonkeyPatch, path: Path) -> Callable[[], None]:
    """Make every open of ``path`` fail with EACCES until the returned function is called."""
    real_open = os.open
    denied = {str(path)}

    def fake_open(file: object, flags: int, *args: object, **kwargs: object) -> int:
        if str(file) in denied and os.path.exists(str(file)):  # gone: the real ENOENT
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", fake_open)
    return denied.clear


def gauge(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"source": "tail"})


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def test_an_unreadable_file_is_not_waiting_is_warned_again_and_recovers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    secret = logs / "secret.log"
    secret.write_text(LINE)
    (logs / "open.log").write_text(LINE)
    allow = deny(monkeypatch, secret)
    clock = Clock()
    metrics = Metrics()
    config = TailConfig(include=[str(logs / "*.log")], read_from_head=True)
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")

    source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 1
    assert gauge(metrics, "shipper_files_waiting") == 0, "max_open_files is not the cause"
    assert gauge(metrics, "shipper_files_open") == 1
    assert source.files.waiting == 0
    (first,) = events(caplog, "tail_open_failed")
    assert first.levelno == logging.WARNING and first.path == str(secret)  # type: ignore[attr-defined]

    for _ in range(int(REPEAT_SECS) - 1):  # a retry every second for just under the period
        clock.now += 1.0
        source.poll_files()
    assert len(events(caplog, "tail_open_failed")) == 1, "no flood while it lasts"
    clock.now += 1.0
    source.poll_files()
    warnings = events(caplog, "tail_open_failed")
    assert len(warnings) == 2, "warned again once the period is over"
    assert warnings[1].getMessage() == first.getMessage(), "one stable condition"
    assert warnings[1].failing_secs == REPEAT_SECS  # type: ignore[attr-defined]
    assert gauge(metrics, "shipper_files_unreadable") == 1

    allow()
    clock.now += 1.0
    source.poll_files()
    (recovered,) = events(caplog, "tail_open_recovered")
    assert recovered.path == str(secret)  # type: ignore[attr-defined]
    assert gauge(metrics, "shipper_files_unreadable") == 0
    assert gauge(metrics, "shipper_files_open") == 2
    for _ in range(3):
        clock.now += REPEAT_SECS
        source.poll_files()
    assert len(events(caplog, "tail_open_failed")) == 2
    assert len(events(caplog, "tail_open_recovered")) == 1


def test_an_unreadable_file_that_goes_away_is_no_longer_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    secret = logs / "secret.log"
    secret.write_text(LINE)
    deny(monkeypatch, secret)
    clock = Clock()
    metrics = Metrics()
    config = TailConfig(include=[str(logs / "*.log")], read_from_head=True)
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")
    source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 1

    secret.unlink()
    for _ in range(5):
        clock.now += 3.0  # past the fallback rescan period
        source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 0
    assert gauge(metrics, "shipper_files_waiting") == 0
    assert events(caplog, "tail_open_recovered") == []


def test_a_dangling_symlink_is_unreadable_named_with_its_target_and_recovers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """/var/log/containers/x.log -> a docker data-root the agent does not mount: counted
    in shipper_files_unreadable, warned with the missing target, again every REPEAT_SECS."""
    links = tmp_path / "containers"
    links.mkdir()
    target = tmp_path / "data-root" / "containers" / "abc" / "abc-json.log"
    link = links / "pod_ns_c-abc.log"
    link.symlink_to(target)
    clock = Clock()
    metrics = Metrics()
    config = TailConfig(include=[str(links / "*.log")], read_from_head=True)
    source = TailSource("tail", config, tmp_path / "state", metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")

    source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 1
    assert gauge(metrics, "shipper_files_waiting") == 0
    (first,) = events(caplog, "tail_open_failed")
    text = first.getMessage()
    assert first.levelno == logging.WARNING and first.path == str(link)  # type: ignore[attr-defined]
    assert str(target) in text and "does not exist" in text and "data-root" in text

    for _ in range(int(REPEAT_SECS // 2) - 1):  # rescans (every 2 s) within the period
        clock.now += 2.0
        source.poll_files()
    assert len(events(caplog, "tail_open_failed")) == 1
    assert gauge(metrics, "shipper_files_unreadable") == 1, "balance() keeps counting it"
    clock.now += 4.0
    source.poll_files()
    assert len(events(caplog, "tail_open_failed")) == 2

    target.parent.mkdir(parents=True)
    target.write_text(LINE)
    clock.now += 2.0
    source.poll_files()
    (recovered,) = events(caplog, "tail_open_recovered")
    assert recovered.path == str(link)  # type: ignore[attr-defined]
    assert gauge(metrics, "shipper_files_unreadable") == 0
    assert str(link) in source.files.by_path


def test_a_removed_dangling_symlink_is_forgotten_quietly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    links = tmp_path / "containers"
    links.mkdir()
    link = links / "gone.log"
    link.symlink_to(tmp_path / "nowhere.log")
    clock = Clock()
    metrics = Metrics()
    source = TailSource("tail", TailConfig(include=[str(links / "*.log")]), tmp_path / "state",
                        metrics, clock=clock)
    caplog.set_level(logging.INFO, logger="shipper")
    source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 1
    link.unlink()
    clock.now += 2.0
    source.poll_files()
    assert gauge(metrics, "shipper_files_unreadable") == 0
    assert events(caplog, "tail_open_recovered") == []
