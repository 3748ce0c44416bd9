"""The acknowledged-prefix rule: a checkpoint never passes an unacknowledged batch."""

from shipper.sources.tail.progress import AckTracker


def test_in_order_acks_advance_to_each_batch_end() -> None:
    tracker = AckTracker(0)
    first, second = tracker.add(100), tracker.add(250)
    assert tracker.ack(first) and tracker.committed == 100
    assert tracker.ack(second) and tracker.committed == 250
    assert tracker.pending == 0


def test_a_later_ack_waits_for_the_earlier_batches() -> None:
    tracker = AckTracker(10)
    first, second, third = tracker.add(100), tracker.add(200), tracker.add(300)
    assert not tracker.ack(third)
    assert not tracker.ack(second)
    assert tracker.committed == 10
    assert tracker.ack(first)
    assert tracker.committed == 300 and tracker.pending == 0


def test_gaps_hold_the_prefix() -> None:
    tracker = AckTracker(0)
    tokens = [tracker.add(end) for end in (10, 20, 30, 40)]
    tracker.ack(tokens[0])
    tracker.ack(tokens[2])
    tracker.ack(tokens[3])
    assert tracker.committed == 10
    tracker.ack(tokens[1])
    assert tracker.committed == 40


def test_advance_without_records_is_ordered_like_a_batch() -> None:
    tracker = AckTracker(0)
    token = tracker.add(100)
    assert not tracker.advance(150)
    assert tracker.committed == 0
    tracker.ack(token)
    assert tracker.committed == 150


def test_an_end_that_stays_at_a_partial_group_start_does_not_move_back() -> None:
    tracker = AckTracker(500)
    assert not tracker.ack(tracker.add(400))
    assert tracker.committed == 500


def test_duplicate_and_unknown_acks_are_ignored() -> None:
    tracker = AckTracker(0)
    token = tracker.add(5)
    assert tracker.ack(token)
    assert not tracker.ack(token)
    assert not tracker.ack(99)
    assert tracker.committed == 5
