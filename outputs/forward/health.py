"""Which aggregator gets the next chunk: availability from sends and heartbeats (spec §1.9).

A server becomes unavailable when connecting, the handshake, a send or a heartbeat fails. It
is available again once heartbeats have succeeded for ``recover_wait_secs`` (without
heartbeats: once that long has passed since the failure), so a flapping server is not
hammered. Selection is weighted random among the available regular servers, then the
available standby ones; unavailable servers come last, least recently failed first, so that
a send still tries *something* when every server looks down. Pure: the clock is passed in.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from outputs.forward.config import ForwardServer


@dataclass
class ServerState:
    """What we know about one server."""

    server: ForwardServer
    available: bool = True
    failed_at: float | None = None
    healthy_since: float | None = None  # first heartbeat success after the last failure
    last_error: str = ""
    failures: int = 0

    @property
    def label(self) -> str:
        return self.server.label


@dataclass
class ForwardHealth:
    """Availability of every server of one output, and readiness for ``/readyz``."""

    servers: Sequence[ForwardServer]
    recover_wait_secs: float
    heartbeats: bool = True
    rng: random.Random = field(default_factory=random.Random)
    on_change: Callable[[ServerState], None] | None = None
    started: bool = False
    credentials_rejected: bool = False

    def __post_init__(self) -> None:
        self.states = [ServerState(s) for s in self.servers]

    def candidates(self, now: float) -> list[ServerState]:
        """Servers to try for one chunk, best first."""
        self._recover(now)
        regular = [s for s in self.states if s.available and not s.server.standby]
        standby = [s for s in self.states if s.available and s.server.standby]
        down = sorted((s for s in self.states if not s.available),
                      key=lambda s: s.failed_at or 0.0)
        return self._weighted(regular) + self._weighted(standby) + down

    def _weighted(self, states: list[ServerState]) -> list[ServerState]:
        """A weighted random order: each pick proportional to weight among those left."""
        left = list(states)
        ordered: list[ServerState] = []
        while left:
            pick = self.rng.choices(left, weights=[s.server.weight for s in left])[0]
            ordered.append(pick)
            left.remove(pick)
        return ordered

    def failure(self, state: ServerState, error: str, now: float) -> None:
        state.failed_at = now
        state.healthy_since = None
        state.last_error = error[:500]
        state.failures += 1
        if state.available:
            state.available = False
            self._changed(state)

    def success(self, state: ServerState) -> None:
        """A chunk was acknowledged: the server works, whatever heartbeats said."""
        state.failures = 0
        state.last_error = ""
        self.credentials_rejected = False
        if not state.available:
            state.available = True
            self._changed(state)

    def heartbeat(self, state: ServerState, ok: bool, now: float, error: str = "") -> None:
        if not ok:
            self.failure(state, error or "heartbeat failed", now)
            return
        if not state.available and state.healthy_since is None:
            state.healthy_since = now
        self._recover(now)

    def _recover(self, now: float) -> None:
        for state in self.states:
            if state.available or state.failed_at is None:
                continue
            since = state.healthy_since if self.heartbeats else state.failed_at
            if since is not None and now - since >= self.recover_wait_secs:
                state.available = True
                state.healthy_since = None
                self._changed(state)

    def _changed(self, state: ServerState) -> None:
        if self.on_change is not None:
            self.on_change(state)

    @property
    def ready(self) -> bool:
        return self.started and not self.credentials_rejected

    def snapshot(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "credentials_rejected": self.credentials_rejected,
            "servers": {s.label: {"available": s.available, "standby": s.server.standby,
                                  "last_error": s.last_error or None}
                        for s in self.states},
        }
