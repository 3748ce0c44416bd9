"""Per-output health: is data moving, or is the agent "up but not shipping"?

Delivery updates this state; the telemetry server's ``/readyz`` reads it. An output is not
ready while its credentials are rejected, or while it holds data and has had no successful
delivery for longer than the configured stall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class OutputHealth:
    """What ``/readyz`` needs to know about one output."""

    def __init__(self, name: str, stall_after_secs: float, has_backlog: Callable[[], bool],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._stall_after = stall_after_secs
        self._has_backlog = has_backlog
        self._clock = clock
        self.started = False
        self.last_success = clock()
        self.credentials_rejected = False
        self.last_error = ""

    def record_success(self) -> None:
        self.last_success = self._clock()
        self.credentials_rejected = False
        self.last_error = ""

    def record_failure(self, error: str, credentials_rejected: bool = False) -> None:
        self.last_error = error
        self.credentials_rejected = credentials_rejected

    def problem(self) -> str | None:
        """Why this output is not ready, or ``None``."""
        if self.credentials_rejected:
            return f"output {self.name}: credentials rejected ({self.last_error})"
        if self._has_backlog() and self._clock() - self.last_success > self._stall_after:
            since = self._clock() - self.last_success
            detail = f": {self.last_error}" if self.last_error else ""
            return f"output {self.name}: no delivery for {since:.0f}s with data buffered{detail}"
        return None
