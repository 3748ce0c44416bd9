"""The top-level configuration of the agent (the whole YAML file).

Sources and outputs are open sets: ``sources`` and ``outputs`` map an operator-chosen name to a
component whose dataclass is picked by its ``type:`` key from the registries the application
passes to the loader, so this module knows no component and components know nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shipper.config import checks
from shipper.config.dump import to_plain
from shipper.config.types import Seconds
from shipper.tap.config import TapConfig

#: Upper bound of ``workers``: each worker lists and watches the node's pods and holds its
#: own buffers, so more processes than this cost more than they bring on any node.
MAX_WORKERS = 64


@dataclass(frozen=True, kw_only=True)
class TelemetryConfig:
    """The agent's own HTTP endpoint: /metrics (Prometheus), /healthz, /readyz and /tap."""

    listen: str = field(default="127.0.0.1:24231", metadata={
        "doc": "host:port to serve on ([::]:port for IPv6); 0.0.0.0:24231 to be scraped "
               "from other pods.",
        "check": checks.listen_address})
    tap: TapConfig = field(default_factory=TapConfig, metadata={
        "doc": "Live stream of parsed Envoy access logs on /tap (shipper tap); off by default."})


@dataclass(frozen=True, kw_only=True, repr=False)
class AgentConfig:
    """The whole configuration file."""

    sources: dict[str, Any] = field(metadata={
        "doc": "Named sources; each is a mapping whose type key picks the kind of source.",
        "by_type": "source",
        "check": checks.at_least_one("source")})
    outputs: dict[str, Any] = field(metadata={
        "doc": "Named outputs; each is a mapping whose type key picks the kind of output. "
               "Every record goes to each output whose match pattern matches its tag.",
        "by_type": "output",
        "check": checks.at_least_one("output")})
    filters: dict[str, Any] = field(default_factory=dict, metadata={
        "doc": "Named filters, applied in the order written to the records whose tag matches "
               "their match pattern; each mapping's type key picks the kind of filter.",
        "by_type": "filter"})
    state_dir: str = field(default="/var/lib/shipper", metadata={
        "doc": "Directory for checkpoints, disk buffers and dead letters (a hostPath volume, "
               "so progress survives pod restarts).",
        "check": checks.non_empty})
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig, metadata={
        "doc": "The metrics and health endpoint."})
    shutdown_deadline_secs: Seconds = field(default=25.0, metadata={
        "doc": "On SIGTERM, stop reading and flush for at most this long; keep it below the "
               "pod's terminationGracePeriodSeconds (30 by default).",
        "check": checks.positive})
    stall_after_secs: Seconds = field(default=300.0, metadata={
        "doc": "/readyz reports an output as not ready when it holds buffered data and has "
               "delivered nothing for this long.",
        "check": checks.positive})
    stuck_after_secs: Seconds = field(default=900.0, metadata={
        "doc": "/healthz fails (so the kubelet restarts the agent) when an output holds "
               "buffered data and no delivery attempt, successful or not, has ended for this "
               "long: a stuck pipeline, not an outage. Keep it above 5 x retry_max_secs plus "
               "the request timeout; 0 turns the check off.",
        "check": checks.non_negative})
    workers: int = field(default=1, metadata={
        "doc": "Processes that share the node's log files (Fluentd's workers). 1 runs the agent "
               "in this process; N > 1 makes it a supervisor of N worker processes, each "
               "reading the tail files whose path hashes to it, with its own checkpoints, "
               "buffers and dead letters under state_dir/worker-<i>. Forward and other "
               "non-tail sources run in worker 0 only. Use it when one core cannot keep up "
               "(about 100k lines/s); see docs/OPERATIONS.md (Workers).",
        "check": checks.between(1, MAX_WORKERS)})
    log_level: Literal["debug", "info", "warning", "error"] = field(default="info", metadata={
        "doc": "Least severe level of the agent's own JSON log lines."})
    config_file: str = field(default="", metadata={
        "doc": "The file this configuration was read from, for messages.",
        "internal": True})

    def validate(self) -> list[str]:
        """Refuse a config that cannot start: two listeners on one address."""
        listeners = [("telemetry.listen", self.telemetry.listen)]
        if self.telemetry.tap.listen:
            listeners.append(("telemetry.tap.listen", self.telemetry.tap.listen))
        for name, source in self.sources.items():
            listen = getattr(source, "listen", None)
            if isinstance(listen, str):
                listeners.append((f"source {name}", listen))
        return [f"sources: {p}" for p in checks.shared_listeners(listeners)]

    def __repr__(self) -> str:
        """Mask every secret (``metadata={"secret": True}``) of every component, so that
        logging the config, or a test failure printing it, cannot leak a password."""
        return f"AgentConfig({to_plain(self)!r})"
