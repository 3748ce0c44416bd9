"""The agent's process settings: frozen start-up objects, a larger young generation, and a
fixed mmap threshold for glibc's allocator."""

from __future__ import annotations

import gc
import platform
from collections.abc import Iterator

import pytest

from shipper import tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tuning_freezes_existing_objects_and_raises_the_young_threshold(
        restore_gc: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tuning.DISABLE_ENV, raising=False)
    assert tuning.tune_for_throughput() is True
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (tuning.YOUNG_THRESHOLD, *tuning.OLDER_THRESHOLDS)


def test_cycles_are_still_collected_after_tuning(restore_gc: None,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tuning.DISABLE_ENV, raising=False)
    tuning.tune_for_throughput()

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
    monkeypatch.setenv(tuning.DISABLE_ENV, "1")
    before = gc.get_threshold()
    assert tuning.tune_for_throughput() is False
    assert gc.get_threshold() == before


def test_the_allocator_gets_a_fixed_mmap_threshold_unless_the_operator_set_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "4194304")
    assert tuning.tune_allocator() is False  # the operator's setting wins
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator setting is glibc's")
    assert tuning.tune_allocator() is True
