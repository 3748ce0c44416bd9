"""Per-output health: is data moving, or is the agent "up but not shipping"?

Delivery updates this state; the telemetry server's ``/readyz`` and ``/healthz`` read it.
Two different questions, two probes:

* **Ready** (``problem``): not ready while credentials are rejected, or while the output holds
  data and has delivered nothing for ``stall_after_secs``. An outage makes the agent
  not ready, which is what an alert should see; restarting would not help.
* **Storage** (``storage_failed``): a dead letter or buffer write that fails (ENOSPC, EIO,
  EACCES) makes the output not ready at once, with the reason, until it succeeds again:
  delivery waits for it like for an unreachable output, and an operator has to free space.
* **Source storage** (``SourceHealth``): a tail source that cannot save its file positions
  keeps shipping, but a crash then would read everything since the last saved positions
  again. Not ready with the reason until a write succeeds again.
* **Alive** (``stuck``): dead when the output holds data and no delivery *attempt* has ended
  at all, successful or not, for ``stuck_after_secs``. During an outage attempts keep
  failing, so the agent stays alive and keeps its buffer; a pipeline that stopped trying
  (a hung request, a deadlocked buffer, a chunk nobody picks up: fluent-bit#11847, the pod
  that runs but ships nothing) fails the liveness probe and the kubelet restarts it.

Both durations are capped by the age of the oldest buffered data: an output that was idle
for an hour and just received a line has not been stalled for an hour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class OutputHealth:
    """What ``/readyz`` and ``/healthz`` need to know about one output."""

    def __init__(self, name: str, stall_after_secs: float,
                 has_backlog: Callable[[], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic, *,
                 backlog_age: Callable[[], float] | None = None,
                 stuck_after_secs: float = 0.0,
                 storage_problem: Callable[[], str | None] | None = None) -> None:
        """``backlog_age``: seconds the oldest buffered data has waited (0 when empty); when
        only ``has_backlog`` is given, data is assumed to have waited forever.
        ``stuck_after_secs`` 0 turns the liveness check off. ``storage_problem``: the
        buffer's current storage fault, if it has storage (the disk buffer)."""
        self.name = name
        self._stall_after = stall_after_secs
        self._stuck_after = stuck_after_secs
        if backlog_age is None:
            probe = has_backlog or (lambda: False)
            backlog_age = lambda: math.inf if probe() else 0.0  # noqa: E731
        self._backlog_age = backlog_age
        self._clock = clock
        self.started = False
        self.last_success = clock()
        self.last_attempt = self.last_success
        self.credentials_rejected = False
        self.tls_rejected = False
        self.last_error = ""
        self._storage_problem = storage_problem
        self.storage_faults: dict[str, str] = {}  # component -> its current error

    def storage_failed(self, component: str, error: str) -> None:
        """A write of ``component`` failed; a failed attempt is still an attempt (alive)."""
        self.last_attempt = self._clock()
        self.storage_faults[component] = error

    def storage_recovered(self, component: str) -> None:
        self.storage_faults.pop(component, None)

    def record_success(self) -> None:
        self.last_success = self.last_attempt = self._clock()
        self.credentials_rejected = False
        self.tls_rejected = False
        self.last_error = ""

    def record_failure(self, error: str, credentials_rejected: bool = False, *,
                       tls_rejected: bool = False) -> None:
        """A failed attempt. ``credentials_rejected`` and ``tls_rejected`` (the server's
        certificate failed verification) are configuration problems: not ready at once,
        until an attempt ends otherwise."""
        self.last_attempt = self._clock()
        self.last_error = error
        self.credentials_rejected = credentials_rejected
        self.tls_rejected = tls_rejected

    def stalled_for(self) -> float:
        """Seconds data has been waiting without any successful delivery (0 when empty)."""
        return min(self._clock() - self.last_success, self._backlog_age())

    def idle_for(self) -> float:
        """Seconds data has been waiting without any attempt ending (0 when empty)."""
        return min(self._clock() - self.last_attempt, self._backlog_age())

    def problem(self) -> str | None:
        """Why this output is not ready, or ``None``."""
        if self.credentials_rejected:
            return f"output {self.name}: credentials rejected ({self.last_error})"
        if self.tls_rejected:
            error = self.last_error.removeprefix(f"output {self.name}: ")
            return f"output {self.name}: TLS certificate rejected ({error})"
        if self.storage_faults:
            component, error = next(iter(self.storage_faults.items()))
            return f"output {self.name}: {component} cannot be written ({error})"
        buffer_problem = self._storage_problem() if self._storage_problem else None
        if buffer_problem:
            return f"output {self.name}: disk buffer cannot be written ({buffer_problem})"
        since = self.stalled_for()
        if since > self._stall_after:
            detail = f": {self.last_error}" if self.last_error else ""
            return f"output {self.name}: no delivery for {since:.0f}s with data buffered{detail}"
        return None

    def stuck(self) -> str | None:
        """Why this output's pipeline looks stuck (restart it), or ``None``."""
        if self._stuck_after <= 0:
            return None
        since = self.idle_for()
        if since > self._stuck_after:
            return (f"output {self.name}: no delivery attempt for {since:.0f}s with data "
                    "buffered; the pipeline is stuck")
        return None


class SourceHealth:
    """What ``/readyz`` needs to know about one source: its current storage faults."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.storage_faults: dict[str, str] = {}  # component -> its current error

    def storage_failed(self, component: str, error: str) -> None:
        self.storage_faults[component] = error

    def storage_recovered(self, component: str) -> None:
        self.storage_faults.pop(component, None)

    def problem(self) -> str | None:
        """Why this source makes the agent not ready, or ``None``."""
        if self.storage_faults:
            component, error = next(iter(self.storage_faults.items()))
            return f"source {self.name}: {component} cannot be written ({error})"
        return None
