"""Backoff policy: capped exponential with full jitter, honouring a server's Retry-After.

Full jitter (a uniform draw between 0 and the exponential ceiling) spreads the retries of many
agents after a cluster-wide outage instead of synchronising them into waves.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime


class Backoff:
    """Delays for successive failed attempts of one piece of work."""

    def __init__(self, initial_secs: float, max_secs: float, rng: random.Random | None = None,
                 ) -> None:
        if initial_secs <= 0 or max_secs < initial_secs:
            raise ValueError("backoff needs 0 < initial_secs <= max_secs")
        self._initial = initial_secs
        self._max = max_secs
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay after ``attempt`` failures (1-based)."""
        exponent = min(max(attempt - 1, 0), 62)
        return min(self._max, self._initial * (2 ** exponent))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt; never below the server's Retry-After."""
        jittered = self._rng.uniform(0.0, self.ceiling(attempt))
        if retry_after is not None and retry_after > 0:
            return max(jittered, min(retry_after, self._max * 5))
        return jittered


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
