"""Readiness of the ``logzio`` output, and the exact accounting of listener answers.

The listener has no health endpoint and a probe request would put a line into the account,
so readiness is learned from real requests: a 401/403 sets ``credentials_rejected`` (with
which of the two documented messages it was) until a request is accepted again. Delivery
marks the agent's ``/readyz`` from the same ``http_status``; this object adds the detail for
logs and tests.

``lines`` accumulates what the listener said about the lines it received: every line of a
200 is ``successful``; a 400 adds its own counts. The record counters cannot be that exact for
a 400 that stored some lines: which ones is unknown, so all of that request's lines are
dead-lettered (``logzio_unidentified``) and these counts say how many of them were stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from outputs.logzio.response import CREDENTIAL_STATUSES, LineCounts
from shipper.errors import TLS_ERROR_TYPE
from shipper.protocols import Outcome, Status


@dataclass
class Health:
    """Readiness of one output, updated after every request."""

    started: bool = False
    last_success: float | None = None
    credentials_rejected: bool = False
    credentials_problem: str | None = None
    #: Why the listener's certificate was refused (verification failed), until it is accepted.
    tls_problem: str | None = None
    last_error: str | None = None
    last_http_status: int | None = None
    lines: dict[str, int] = field(default_factory=lambda: {
        "successful": 0, "malformed": 0, "oversized": 0, "empty": 0})
    _clock: Callable[[], float] = field(default=time.time, repr=False)

    def observe(self, outcome: Outcome) -> None:
        """Fold one request's outcome into the state (``errors`` are already redacted)."""
        status = outcome.http_status
        self.last_http_status = status
        if status is not None:
            self.tls_problem = None  # an HTTP answer: the handshake was accepted
        else:
            tls = next((e for e in outcome.errors.values() if e.type == TLS_ERROR_TYPE), None)
            self.tls_problem = tls.reason if tls is not None else None
        if status is not None and status in CREDENTIAL_STATUSES:
            self.credentials_rejected = True
            error = next(iter(outcome.errors.values()), None)
            self.credentials_problem = error.reason if error is not None else f"HTTP {status}"
        elif status is not None and (200 <= status < 300 or status == 400):
            self.credentials_rejected = False
            self.credentials_problem = None
            self.last_success = self._clock()
        if any(s != Status.DELIVERED for s in outcome.statuses) and outcome.errors:
            error = next(iter(outcome.errors.values()))
            self.last_error = f"{error.status} {error.type}: {error.reason}"[:500]

    def count_lines(self, n_sent: int, counts: LineCounts | None = None) -> None:
        """Add a request's lines: all ``n_sent`` on a 200, or a 400's counts."""
        if counts is None:
            self.lines["successful"] += n_sent
            return
        self.lines["successful"] += counts.accepted_of(n_sent)
        self.lines["malformed"] += counts.malformed
        self.lines["oversized"] += counts.oversized
        self.lines["empty"] += counts.empty

    @property
    def ready(self) -> bool:
        """Started, the listener is not refusing our token, and its certificate is
        trusted."""
        return self.started and not self.credentials_rejected and self.tls_problem is None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly view for the health endpoint and tests."""
        return {
            "ready": self.ready,
            "last_success": self.last_success,
            "credentials_rejected": self.credentials_rejected,
            "credentials_problem": self.credentials_problem,
            "tls_problem": self.tls_problem,
            "last_http_status": self.last_http_status,
            "last_error": self.last_error,
            "lines": dict(self.lines),
        }
