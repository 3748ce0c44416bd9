"""Counting and reporting disk buffer trouble without flooding the agent's own logs.

A full disk fails every write, many times a second; the condition is counted every time
(``shipper_buffer_storage_errors_total{op}``) but logged at most once per 10 s, and its end
is logged once. Damaged records are counted both in ``shipper_buffer_corrupt_records_total``
and, like every record the agent gives up on, in ``shipper_records_dropped_total``.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable

from shipper.metrics import Metrics

log = logging.getLogger("shipper.buffer.disk")

LOG_EVERY_SECS = 10.0


class StorageReporter:
    """Counters, throttled logs and retry delays of one disk buffer."""

    def __init__(self, output: str, metrics: Metrics, retry_secs: tuple[float, float],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._output = output
        self._metrics = metrics
        self._corrupt = metrics.buffer_corrupt_records.labels(output)
        self._retry = retry_secs
        self._clock = clock
        self._last_log = -1e9
        self.problems: dict[str, str] = {}  # failing operation -> its last error

    @property
    def problem(self) -> str | None:
        """The current storage fault (``/readyz`` reports it), or None."""
        return next(iter(self.problems.values()), None)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (capped doubling)."""
        first, cap = self._retry
        return float(min(cap, first * 2 ** min(max(failures - 1, 0), 16)))

    def dropped(self, n: int, reason: str) -> None:
        self._metrics.records_dropped.labels(self._output, reason).inc(n)

    def corrupt(self, n: int) -> None:
        if n:
            self._corrupt.inc(n)
            self.dropped(n, "buffer_corrupt")

    def failed(self, op: str, exc: OSError) -> None:
        """Count every failure; log at most once per 10 s while the condition lasts."""
        self._metrics.buffer_storage_errors.labels(self._output, op).inc()
        self.problems[op] = f"{op}: {exc}"
        now = self._clock()
        if now - self._last_log < LOG_EVERY_SECS:
            return
        self._last_log = now
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        log.error("disk buffer of output %s: %s failed (%s); inputs pause until it succeeds",
                  self._output, op, exc, extra={"event": "buffer_storage_error",
                                                "output": self._output, "op": op,
                                                "errno": code})

    def recovered(self, op: str) -> None:
        """``op`` succeeded; once nothing fails any more, say so once."""
        if self.problems.pop(op, None) is not None and not self.problems:
            log.info("disk buffer of output %s: storage works again", self._output,
                     extra={"event": "buffer_storage_recovered", "output": self._output})
            self._last_log = -1e9
