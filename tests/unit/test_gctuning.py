"""The agent's collector settings: frozen start-up objects, a larger young generation."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shipper import gctuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_existing_objects_and_raises_the_young_threshold(
        restore_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gctuning.DISABLE_ENV, raising=False)
    assert gctuning.tune_for_throughput() is True
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (gctuning.YOUNG_THRESHOLD, *gctuning.OLDER_THRESHOLDS)


def test_cycles_are_still_collected_after_tuning(restore_gc: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gctuning.DISABLE_ENV, raising=False)
    gctuning.tune_for_throughput()

    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    ref = id(a)
    del a, b
    assert gc.collect() >= 2
    assert all(id(o) != ref for o in gc.get_objects())


def test_the_environment_switch_keeps_the_defaults(restore_gc: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gctuning.DISABLE_ENV, "1")
    before = gc.get_threshold()
    assert gctuning.tune_for_throughput() is False
    assert gc.get_threshold() == before
