"""Settings of the traffic tap (``telemetry.tap``): off unless enabled, bounded per subscriber.

The tap streams parsed Envoy access-log records to whoever connects, so it is off by default
and, when on, should listen only where the operator means it to: on the telemetry port, or on
its own ``listen`` address (in Kubernetes the pod IP, ``${POD_IP}:24232``, so that it never
answers on the node's address or on loopback).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipper.config import checks


def _listen_or_empty(value: str) -> str | None:
    return checks.listen_address(value) if value else None


@dataclass(frozen=True, kw_only=True)
class TapConfig:
    """Live stream of parsed Envoy access-log records on /tap, read with `shipper tap`."""

    enabled: bool = field(default=False, metadata={
        "doc": "Serve /tap. Off by default: request paths and authorities can be sensitive."})
    listen: str = field(default="", metadata={
        "doc": "host:port of a listener serving only /tap; empty serves /tap on "
               "telemetry.listen. In Kubernetes: \"${POD_IP}:24232\" (POD_IP from the "
               "downward API).",
        "check": _listen_or_empty})
    max_subscribers: int = field(default=8, metadata={
        "doc": "Concurrent /tap streams; more are refused with 503.",
        "check": checks.positive})
    queue_records: int = field(default=1000, metadata={
        "doc": "Records waiting for one slow subscriber; past this, that subscriber loses "
               "records (shipper_tap_records_total{result=\"dropped\"}), shipping never waits.",
        "check": checks.positive})
