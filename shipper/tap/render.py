"""How ``shipper tap`` prints: one readable line per request, or one JSON object per line.

Text, one sidecar line::

    2026-11-22T01:02:04.801Z shop/productpage -> shop/orders POST /api/v1/orders 503 UC 12ms out

``out``/``in`` says which sidecar logged it (the same request appears once from each side).
An inbound line does not name its client, only its address. A pair (``--pair``)::

    2026-11-22T01:02:04.801Z shop/productpage -> shop/orders POST /api/v1/orders 503 UC
        client 12ms server 3ms

(on one line), with the server's code and flags added when they differ from what the client
saw. JSON output is the tap event itself (``shipper.tap.event``) or, for a pair,
``{"request_id", "client", "server"}``.
"""

from __future__ import annotations

from typing import Any

import orjson

from shipper.tap.pair import Item, Pair

_MAX_PATH = 120


def _place(event: dict[str, Any]) -> str:
    namespace = event.get("namespace")
    name = event.get("workload") or event.get("pod")
    if name is None:
        return "?"
    return f"{namespace}/{name}" if namespace else str(name)


def _peer(event: dict[str, Any]) -> str:
    peer = event.get("peer") or {}
    if peer.get("service"):
        return f"{peer.get('namespace', '?')}/{peer['service']}"
    return str(peer.get("host") or peer.get("address") or "?")


def _request(envoy: dict[str, Any]) -> str:
    method = envoy.get("method", "TCP")
    path = str(envoy.get("path", "-"))
    if len(path) > _MAX_PATH:
        path = path[:_MAX_PATH - 3] + "..."
    return f"{method} {path}"


def _outcome(envoy: dict[str, Any]) -> str:
    return f"{envoy.get('response_code', '-')} {envoy.get('response_flags', '-')}"


def _duration(envoy: dict[str, Any]) -> str:
    value = envoy.get("duration_ms")
    return f"{value}ms" if isinstance(value, int) else "-"


def text_line(item: Item) -> str:
    """One human-readable line for a tap event or a pair."""
    if isinstance(item, Pair):
        return pair_line(item)
    envoy = item.get("envoy") or {}
    inbound = item.get("direction") == "inbound"
    source, destination = (_peer(item), _place(item)) if inbound else \
        (_place(item), _peer(item))
    side = "in" if inbound else "out"
    return (f"{item.get('time', '-')} {source} -> {destination} {_request(envoy)} "
            f"{_outcome(envoy)} {_duration(envoy)} {side}")


def pair_line(pair: Pair) -> str:
    client, server = pair.client["envoy"], pair.server["envoy"]
    outcome = _outcome(client)
    if _outcome(server) != outcome:
        outcome += f" (server {_outcome(server)})"
    return (f"{pair.client.get('time', '-')} {_place(pair.client)} -> {_place(pair.server)} "
            f"{_request(client)} {outcome} client {_duration(client)} "
            f"server {_duration(server)}")


def json_line(item: Item) -> str:
    """One JSON object per line, for jq."""
    value = item.to_json() if isinstance(item, Pair) else item
    return orjson.dumps(value).decode()
