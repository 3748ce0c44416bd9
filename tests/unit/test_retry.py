import random

import pytest

from shipper.retry import Backoff


def test_ceiling_doubles_and_caps():
    b = Backoff(1.0, 30.0)
    assert [b.ceiling(a) for a in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_delay_is_full_jitter_within_ceiling():
    b = Backoff(0.5, 8.0, rng=random.Random(1))
    delays = [b.delay(4) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert min(delays) < 1.0 < max(delays)


def test_retry_after_is_a_floor():
    b = Backoff(0.1, 10.0, rng=random.Random(1))
    assert all(b.delay(1, retry_after=7.0) >= 7.0 for _ in range(50))


def test_huge_attempt_numbers_do_not_overflow():
    assert Backoff(1.0, 60.0).ceiling(10_000) == 60.0


def test_invalid_bounds_rejected():
    with pytest.raises(ValueError):
        Backoff(0, 1)
