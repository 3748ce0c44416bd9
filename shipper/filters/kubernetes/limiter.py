"""A request budget shared by the watchers of one filter (token bucket).

Backoff alone does not bound the request rate: a server that accepts a watch and closes it at
once, or a flapping 410, resets nothing yet costs a request each time. Every list and watch
first takes a token; tokens refill at ``rate`` per second up to ``burst``, so a whole outage
costs at most ``burst + rate * seconds`` requests per node (spec: never more than about one
request per second in a storm). Thread-safe: each watcher runs in its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestBudget:
    """Token bucket; ``reserve`` is pure bookkeeping, ``acquire`` waits for the token."""

    def __init__(self, rate: float, burst: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token (possibly one not yet refilled); return how long to wait for it."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for a token; False if ``stop`` was set meanwhile (the token is then spent)."""
        delay = self.reserve()
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()
