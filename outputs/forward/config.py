"""Settings of the ``forward`` output: send records to Fluentd-protocol aggregators (spec §1).

Names follow Fluentd's ``out_forward`` (``<server>``, ``require_ack_response``,
``ack_response_timeout``, ``heartbeat_type``, ``recover_wait``, ``<security>``) with our unit
suffixes. Validation is pure; building the output reads the TLS files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from shipper.buffer.config import BufferConfig
from shipper.config import checks
from shipper.config.types import Seconds

DEFAULT_PORT = 24224


@dataclass(frozen=True)
class ForwardServer:
    """One aggregator (Fluentd `<server>`)."""

    host: str = field(default="", metadata={
        "doc": "Host name or IP address.", "check": checks.non_empty})
    port: int = field(default=DEFAULT_PORT, metadata={
        "doc": "TCP port; the UDP heartbeat uses the same number.", "check": checks.port})
    weight: int = field(default=60, metadata={
        "doc": "Share of the chunks this server gets among the available ones.",
        "check": checks.positive})
    standby: bool = field(default=False, metadata={
        "doc": "Used only while no regular server is available."})

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class ForwardClientTls:
    """TLS towards the servers."""

    ca_file: str | None = field(default=None, metadata={
        "doc": "PEM CA bundle that server certificates must chain to (default: the system's)."})
    verify: bool = field(default=True, metadata={
        "doc": "Verify the server certificate and host name. Turning this off is insecure."})
    server_name: str | None = field(default=None, metadata={
        "doc": "Name expected in the server certificate (default: the server's host)."})
    cert_file: str | None = field(default=None, metadata={
        "doc": "PEM client certificate for mutual TLS."})
    key_file: str | None = field(default=None, metadata={
        "doc": "PEM private key of cert_file."})

    def validate(self) -> list[str]:
        if (self.cert_file is None) != (self.key_file is None):
            return ["key_file: set both cert_file and key_file, or neither"]
        return []


@dataclass(frozen=True)
class ForwardOutputConfig:
    """Forward records to Fluentd, Fluent Bit or another shipper with the forward protocol."""

    __config_examples__: ClassVar[str] = """\
**Agent → aggregator** (at-least-once: a chunk is resent until the aggregator acks it, and a
shipper aggregator turns resends into 409s, so Elasticsearch stores each record once):

```yaml
outputs:
  aggregator:
    type: forward
    servers:
      - {host: aggregator-0.aggregator.logging.svc, port: 24224}
      - {host: aggregator-1.aggregator.logging.svc, port: 24224}
      - {host: aggregator-dr.example.com, standby: true}
    shared_key: ${FORWARD_SHARED_KEY}
    self_hostname: ${NODE_NAME}
    tls: {ca_file: /etc/shipper/tls/ca.crt}
    compress: gzip
```
"""

    type: Literal["forward"] = field(default="forward", metadata={"doc": "Output type."})
    servers: list[ForwardServer] = field(default_factory=list, metadata={
        "doc": "Aggregators; chunks go to the available ones by weight, fail over to the next "
               "on a connection error, and to standby servers when no other is available.",
        "check": checks.at_least_one("server")})
    require_ack_response: bool = field(default=True, metadata={
        "doc": "Ask for an ack per chunk and resend what was not acked (at-least-once). Off: "
               "a chunk counts as delivered once written to the socket."})
    ack_response_timeout_secs: Seconds = field(default=60.0, metadata={
        "doc": "Resend a chunk whose ack did not arrive within this long (Fluentd "
               "ack_response_timeout).", "check": checks.positive})
    connect_timeout_secs: Seconds = field(default=10.0, metadata={
        "doc": "Give up connecting (TCP, TLS and handshake) to one server after this long.",
        "check": checks.positive})
    compress: Literal["text", "gzip"] = field(default="text", metadata={
        "doc": "gzip: send CompressedPackedForward (saves bandwidth for CPU)."})
    time_as_integer: bool = field(default=False, metadata={
        "doc": "Send whole seconds instead of EventTime, for Fluentd v0.12 receivers."})
    keepalive: bool = field(default=True, metadata={
        "doc": "Reuse connections between chunks instead of connecting for each."})
    keepalive_timeout_secs: Seconds = field(default=15.0, metadata={
        "doc": "Close a pooled connection unused for this long (keep it below the server's "
               "idle timeout: 30 s for a shipper server).", "check": checks.positive})
    heartbeat_type: Literal["transport", "udp", "none"] = field(default="transport", metadata={
        "doc": "How servers are probed: transport connects (and completes the handshake), "
               "udp sends one byte to the same port, none relies on sends alone."})
    heartbeat_interval_secs: Seconds = field(default=1.0, metadata={
        "doc": "Probe every server this often.", "check": checks.positive})
    recover_wait_secs: Seconds = field(default=10.0, metadata={
        "doc": "A failed server is used again after it answered heartbeats for this long.",
        "check": checks.non_negative})
    shared_key: str | None = field(default=None, repr=False, metadata={
        "doc": "Shared key of the server's security section (use ${ENV_VAR}); enables the "
               "handshake.", "secret": True})
    self_hostname: str = field(default="", metadata={
        "doc": "Name sent in PING; must differ from the server's. Empty: this machine's "
               "hostname."})
    username: str = field(default="", metadata={
        "doc": "User name, when the server has user_auth on."})
    password: str = field(default="", repr=False, metadata={
        "doc": "Password (use ${ENV_VAR}); only a salted digest is sent.", "secret": True})
    tls: ForwardClientTls | None = field(default=None, metadata={
        "doc": "Connect with TLS."})
    id_key: str | None = field(default="_shipper_id", metadata={
        "doc": "Send each record's deterministic document id in this field, so a shipper "
               "aggregator indexes a resent record under the same id (no duplicates after an "
               "agent restart). null to send records unchanged (e.g. to Fluentd)."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this output receives (Fluentd match syntax)."})
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata={
        "doc": "How records are buffered before delivery."})

    def validate(self) -> list[str]:
        problems: list[str] = []
        if (self.username or self.password) and not self.shared_key:
            problems.append("username: user authentication needs shared_key too")
        labels = [s.label for s in self.servers]
        if len(set(labels)) != len(labels):
            problems.append("servers: the same host:port is listed twice")
        if self.servers and all(s.standby for s in self.servers):
            problems.append("servers: at least one server must not be standby")
        return problems
