"""The open-file cap: waiting files get descriptors fairly, rotated files first."""

from dataclasses import dataclass

from shipper.sources.tail.slots import SLICE_SECS, plan, wants


@dataclass
class R:
    attached: bool = True
    closed: bool = False
    given_up: bool = False
    busy: bool = False
    eof: bool = True
    offset: int = 10
    size_seen: int = 10
    identity: str | None = "id"
    draining_since: float | None = None
    wanted_since: float | None = None
    last_data: float = 0.0
    opened_at: float = 0.0


def test_a_file_without_descriptor_wants_one_only_with_work() -> None:
    assert not wants(R(attached=False))
    assert wants(R(attached=False, size_seen=20))  # grew
    assert wants(R(attached=False, identity=None))  # never looked at
    assert wants(R(attached=False, draining_since=1.0))  # rotated: read it before it goes
    assert not wants(R(attached=True, size_seen=20))
    assert not wants(R(attached=False, closed=True, size_seen=20))
    assert not wants(R(attached=False, given_up=True, draining_since=1.0))  # its data is gone


def test_free_descriptors_go_first_to_rotated_then_oldest_waiting() -> None:
    new = R(attached=False, identity=None, wanted_since=5.0)
    old = R(attached=False, size_seen=99, wanted_since=1.0)
    rotated = R(attached=False, draining_since=3.0, wanted_since=9.0)
    detach, attach = plan([new, old, rotated], cap=2, now=10.0)
    assert detach == [] and attach == [rotated, old]


def test_idle_files_give_their_descriptor_to_waiting_ones() -> None:
    idle_long = R(last_data=1.0)
    idle_short = R(last_data=5.0)
    waiting = R(attached=False, size_seen=50, wanted_since=2.0)
    detach, attach = plan([idle_short, idle_long, waiting], cap=2, now=10.0)
    assert detach == [idle_long] and attach == [waiting]


def test_busy_files_take_turns_after_a_slice() -> None:
    fresh = R(eof=False, opened_at=10.0 - SLICE_SECS / 2)
    held = R(eof=False, opened_at=1.0)
    waiting = R(attached=False, size_seen=50, wanted_since=2.0)
    detach, attach = plan([fresh, held, waiting], cap=2, now=10.0)
    assert detach == [held] and attach == [waiting]


def test_rotated_deleted_and_busy_readers_keep_their_descriptor() -> None:
    keep = [R(draining_since=1.0), R(busy=True, eof=False, opened_at=0.0)]
    waiting = R(attached=False, size_seen=50)
    detach, attach = plan([*keep, waiting], cap=2, now=10.0)
    assert detach == [] and attach == []


def test_nothing_moves_when_nobody_waits() -> None:
    assert plan([R(), R()], cap=1, now=10.0) == ([], [])
