import pytest

from shipper.acks import AckGroup


def test_group_resolves_once_after_seal_and_all_releases():
    calls = []
    g = AckGroup(on_safe=calls.append)
    g.hold()
    g.hold()
    g.seal()
    assert calls == []
    g.release()
    assert calls == []
    g.release()
    assert calls == [g]
    assert g.done


def test_group_without_holds_resolves_at_seal():
    calls = []
    g = AckGroup(on_safe=calls.append)
    g.seal()
    assert calls == [g]


def test_over_release_is_a_bug_not_a_silent_ack():
    g = AckGroup()
    g.seal()
    with pytest.raises(RuntimeError):
        g.release()


def test_an_abandoned_group_never_resolves_even_when_every_hold_is_released():
    calls = []
    g = AckGroup(on_safe=calls.append)
    g.hold(2)
    g.abandon()
    g.release()
    g.release()
    assert calls == []
    assert g.abandoned and not g.done


def test_abandoning_a_resolved_group_is_a_bug():
    g = AckGroup()
    g.seal()
    with pytest.raises(RuntimeError):
        g.abandon()
