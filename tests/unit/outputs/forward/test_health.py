"""Server selection: weights, standby, failure and recovery, with a fake clock."""

from __future__ import annotations

import random
from collections import Counter

from outputs.forward.config import ForwardServer
from outputs.forward.health import ForwardHealth

A = ForwardServer("a", weight=90)
B = ForwardServer("b", weight=10)
S = ForwardServer("s", standby=True)


def health(heartbeats: bool = True) -> ForwardHealth:
    return ForwardHealth([A, B, S], recover_wait_secs=10, heartbeats=heartbeats,
                         rng=random.Random(7))


def test_weights_decide_the_first_choice_and_standby_comes_after() -> None:
    h = health()
    firsts = Counter(h.candidates(0)[0].label for _ in range(1000))
    assert firsts["a:24224"] > 800 and firsts["b:24224"] > 50 and "s:24224" not in firsts
    assert h.candidates(0)[-1].label == "s:24224"


def test_a_failed_server_goes_last_and_recovers_after_heartbeats() -> None:
    h = health()
    a = h.states[0]
    h.failure(a, "refused", now=100)
    assert [s.label for s in h.candidates(100)] == ["b:24224", "s:24224", "a:24224"]
    h.heartbeat(a, True, now=101)
    assert not a.available
    h.heartbeat(a, True, now=105)
    assert h.candidates(110)[-1] is a and not a.available  # 9 s of heartbeats: not yet
    assert h.candidates(111)[-1].label == "s:24224" and a.available


def test_standby_is_used_when_every_regular_server_failed() -> None:
    h = health()
    h.failure(h.states[0], "x", now=1)
    h.failure(h.states[1], "y", now=2)
    assert [s.label for s in h.candidates(3)] == ["s:24224", "a:24224", "b:24224"]


def test_without_heartbeats_a_server_is_retried_after_the_wait() -> None:
    h = health(heartbeats=False)
    h.failure(h.states[1], "x", now=0)
    assert not h.states[1].available
    h.candidates(10)
    assert h.states[1].available


def test_a_success_restores_at_once_and_snapshot_shows_state() -> None:
    changes: list[str] = []
    h = ForwardHealth([A], 10, on_change=lambda s: changes.append(f"{s.label}={s.available}"))
    h.failure(h.states[0], "boom", now=0)
    h.success(h.states[0])
    assert changes == ["a:24224=False", "a:24224=True"]
    h.started = True
    assert h.snapshot()["servers"]["a:24224"] == {"available": True, "standby": False,
                                                 "last_error": None}
    assert h.ready
