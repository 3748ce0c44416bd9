"""``shipper tap --pair``: join the two sidecar lines of one request.

In a mesh every request between two pods is logged twice: by the client's sidecar (outbound)
and by the server's (inbound), usually on different nodes, so by different agents. Both lines
carry the same ``x-request-id``. Pairing them shows, on one line, who called whom, what the
caller saw and how long each side took (the difference is the network plus the server
sidecar).

A request id alone is not enough when an application forwards the header to its own calls
(A -> B -> C share one id): a client line is paired with a server line of the same id from
another pod whose address is where the client sent it (outbound ``upstream_host`` = inbound
``downstream_local_address``), else whose workload is the Service the client called.

Bounded: a line waits at most ``window_secs`` (then it is printed alone) and at most
``max_pending`` lines wait at once (the oldest go first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]


@dataclass(frozen=True)
class Pair:
    """Both sides of one request."""

    client: Event
    server: Event

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.client["envoy"].get("request_id"),
                "client": self.client, "server": self.server}


Item = Pair | Event


def _ip(address: Any) -> str | None:
    if not isinstance(address, str) or not address:
        return None
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def fit(client: Event, server: Event) -> int:
    """How well an outbound and an inbound line of one request id belong together:
    2 same address, 1 same service name or nothing to compare, 0 not the same call."""
    if client.get("pod") is not None and client.get("pod") == server.get("pod"):
        return 0
    sent_to = _ip(client["envoy"].get("upstream_host"))
    received_on = _ip(server["envoy"].get("downstream_local_address"))
    if sent_to and received_on:
        return 2 if sent_to == received_on else 0
    service = (client.get("peer") or {}).get("service")
    if service and server.get("workload"):
        return 1 if server["workload"] == service or \
            str(server["workload"]).startswith(f"{service}-") else 0
    return 1


class Pairer:
    """Feed tap events in arrival order; get back pairs, and lines that found no partner."""

    def __init__(self, window_secs: float = 5.0, max_pending: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_secs
        self._max = max_pending
        self._clock = clock
        self._pending: OrderedDict[int, tuple[float, str, Event]] = OrderedDict()
        self._by_id: dict[str, list[int]] = {}
        self._seq = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, event: Event) -> list[Item]:
        """The event's pair if its partner is waiting; else it waits (and [] is returned).
        Lines without a request id or direction are returned at once."""
        envoy = event.get("envoy") or {}
        request_id = envoy.get("request_id")
        direction = event.get("direction")
        if not request_id or direction not in ("inbound", "outbound"):
            return [event]
        best, best_fit = None, 0
        for seq in self._by_id.get(request_id, ()):
            _, other_dir, other = self._pending[seq]
            if other_dir == direction:
                continue
            client, server = (event, other) if direction == "outbound" else (other, event)
            score = fit(client, server)
            if score > best_fit:
                best, best_fit = seq, score
        if best is not None:
            _, _, other = self._remove(best)
            return [Pair(event, other) if direction == "outbound" else Pair(other, event)]
        out: list[Item] = []
        while len(self._pending) >= self._max:
            out.append(self._remove(next(iter(self._pending)))[2])
        self._seq += 1
        self._pending[self._seq] = (self._clock(), direction, event)
        self._by_id.setdefault(request_id, []).append(self._seq)
        return out

    def expire(self) -> list[Item]:
        """Lines that waited ``window_secs`` without a partner, oldest first."""
        deadline = self._clock() - self._window
        out: list[Item] = []
        while self._pending:
            seq, (arrived, _, _) = next(iter(self._pending.items()))
            if arrived > deadline:
                break
            out.append(self._remove(seq)[2])
        return out

    def drain(self) -> list[Item]:
        """Every waiting line (the streams ended)."""
        out: list[Item] = [event for _, _, event in self._pending.values()]
        self._pending.clear()
        self._by_id.clear()
        return out

    def _remove(self, seq: int) -> tuple[float, str, Event]:
        entry = self._pending.pop(seq)
        request_id = entry[2]["envoy"]["request_id"]
        waiting = self._by_id[request_id]
        waiting.remove(seq)
        if not waiting:
            del self._by_id[request_id]
        return entry
