"""Settings of a ``forward`` source: a Fluentd-compatible forward server (spec §1).

Names follow Fluentd's ``in_forward`` where one exists (``source_hostname_key``,
``add_tag_prefix``, ``<security>``, ``<transport tls>``), with our unit suffixes. The limits
have safe defaults because the port faces other pods: a frame, a decompressed payload and the
number of connections are all bounded, so a broken or hostile client costs a bounded amount
of memory and only ever loses its own connection.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from shipper.config import checks
from shipper.config.types import Bytes, Seconds

MIB = 1024 * 1024
DEFAULT_PORT = 24224


def _check_network(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"expected an IP address or CIDR network (10.0.0.0/8), got {value!r}"
    return None


def _check_tag_part(value: str | None) -> str | None:
    if value is not None and (not value or any(c.isspace() or not c.isprintable()
                                               for c in value)):
        return "must be a non-empty tag without spaces or control characters"
    return None


# The record field that carries a shipper document id from one shipper to the next.
ID_KEY = "_shipper_id"
MAX_ID_CHARS = 512
# Records nested deeper than this are refused (hardened msgpack decoders use similar bounds).
DEFAULT_MAX_NESTING_DEPTH = 32
# A log record holds tens to hundreds of values (Kubernetes metadata with many labels a few
# hundred); 65,536 leaves two orders of magnitude for odd but honest records while one record
# at the bound is a few MiB of Python objects, where an empty map costs 1 byte on the wire
# and ~64 bytes decoded.
DEFAULT_MAX_VALUES_PER_RECORD = 1 << 16
# A request decoded whole is held whole: 2 Mi values is an average of 4 bytes per value
# in a default 8 MiB frame (a minimal Fluent Bit event spends ~15) and ~150 MB of objects.
DEFAULT_MAX_VALUES_PER_REQUEST = 1 << 21


@dataclass(frozen=True)
class ForwardUser:
    """One user name and password accepted when `user_auth` is on."""

    username: str = field(default="", metadata={
        "doc": "User name the client sends in its PING.", "check": checks.non_empty})
    password: str = field(default="", repr=False, metadata={
        "doc": "Password (use ${ENV_VAR}); only its salted SHA-512 digest travels.",
        "secret": True})


@dataclass(frozen=True)
class ForwardClient:
    """Per-network settings (Fluentd `<client>`): a shared key and allowed users."""

    network: str = field(default="", metadata={
        "doc": "Client address or CIDR network this entry applies to (10.0.0.0/8, ::1).",
        "check": _check_network})
    shared_key: str | None = field(default=None, repr=False, metadata={
        "doc": "Shared key for these clients instead of the global one.", "secret": True})
    users: list[str] = field(default_factory=list, metadata={
        "doc": "With user_auth, only these user names may connect from this network "
               "(empty: any configured user)."})


@dataclass(frozen=True)
class ForwardSecurity:
    """The HELO/PING/PONG handshake (Fluentd `<security>`): a shared key, optionally users."""

    shared_key: str = field(default="", repr=False, metadata={
        "doc": "Key both sides know (use ${ENV_VAR}); proven with salted SHA-512 digests, "
               "never sent.", "secret": True, "check": checks.non_empty})
    self_hostname: str = field(default="", metadata={
        "doc": "Name this server sends in PONG; must differ from the client's hostname. "
               "Empty: the machine's hostname."})
    user_auth: bool = field(default=False, metadata={
        "doc": "Also require a user name and password from `users`."})
    allow_anonymous_source: bool = field(default=True, metadata={
        "doc": "Accept clients whose address matches no `clients` entry."})
    users: list[ForwardUser] = field(default_factory=list, metadata={
        "doc": "Accepted users when user_auth is on."})
    clients: list[ForwardClient] = field(default_factory=list, metadata={
        "doc": "Per-network keys and user lists, checked in order; the first match wins."})

    def validate(self) -> list[str]:
        problems = []
        if self.user_auth and not self.users:
            problems.append("users: at least one user is required when user_auth is true")
        if not self.allow_anonymous_source and not self.clients:
            problems.append("clients: required when allow_anonymous_source is false")
        return problems


@dataclass(frozen=True)
class ForwardTls:
    """TLS on the forward port (Fluentd `<transport tls>`)."""

    cert_file: str = field(default="", metadata={
        "doc": "PEM server certificate (with its chain).", "check": checks.non_empty})
    key_file: str = field(default="", metadata={
        "doc": "PEM private key of cert_file.", "check": checks.non_empty})
    ca_file: str | None = field(default=None, metadata={
        "doc": "PEM CA bundle that client certificates must chain to."})
    client_cert_auth: bool = field(default=False, metadata={
        "doc": "Require and verify a client certificate (mutual TLS)."})
    min_version: Literal["1.2", "1.3"] = field(default="1.2", metadata={
        "doc": "Oldest TLS version accepted."})

    def validate(self) -> list[str]:
        if self.client_cert_auth and not self.ca_file:
            return ["ca_file: required when client_cert_auth is true"]
        return []


@dataclass(frozen=True)
class ForwardConfig:
    """A Fluentd forward protocol server: fluent-logger libraries, Docker's fluentd log
    driver, Fluent Bit and Fluentd forwarders, and other shipper agents send to it."""

    __config_examples__: ClassVar[str] = """\
**Docker's fluentd log driver** sends each container's lines here (Message mode; `tag`
becomes the routing tag):

```yaml
sources:
  docker:
    type: forward
    listen: 0.0.0.0:24224
outputs:
  es:
    type: elasticsearch
    match: "docker.**"
```

```sh
docker run --log-driver=fluentd \\
  --log-opt fluentd-address=shipper.logging.svc:24224 \\
  --log-opt tag="docker.{{.Name}}" --log-opt fluentd-async=true nginx
```

**Fluent Bit forwarding with a shared key over TLS** (at-least-once with acks):

```yaml
sources:
  fluentbit:
    type: forward
    listen: 0.0.0.0:24224
    source_hostname_key: forwarder
    security:
      shared_key: ${FORWARD_SHARED_KEY}
      self_hostname: aggregator
    tls:
      cert_file: /etc/shipper/tls/tls.crt
      key_file: /etc/shipper/tls/tls.key
```

```ini
[OUTPUT]
    Name                 forward
    Match                *
    Host                 shipper.logging.svc
    Port                 24224
    Shared_Key           ${FORWARD_SHARED_KEY}
    Self_Hostname        fluent-bit
    Require_ack_response true
    tls                  on
    tls.verify           on
    tls.ca_file          /fluent-bit/tls/ca.crt
```

A client that asks for acks (`chunk` option: Fluentd `require_ack_response`, Fluent Bit
`Require_ack_response`) gets `{"ack": ...}` only once its events are safe: delivered with a
memory buffer, written with a disk buffer. Resent chunks map to the same document ids, so
Elasticsearch answers 409 instead of storing them twice.
"""

    type: Literal["forward"] = field(default="forward", metadata={"doc": "Source type."})
    listen: str = field(default=f"0.0.0.0:{DEFAULT_PORT}", metadata={
        "doc": "host:port for TCP and, on the same port, the UDP heartbeat ([::]:24224 for "
               "IPv6; port 0 picks a free port).",
        "check": checks.listen_address})
    tag: str | None = field(default=None, metadata={
        "doc": "Replace every client tag with this one (Fluentd `tag`).",
        "check": _check_tag_part})
    add_tag_prefix: str | None = field(default=None, metadata={
        "doc": "Routing tag becomes `<prefix>.<client tag>` (Fluentd `add_tag_prefix`).",
        "check": _check_tag_part})
    source_hostname_key: str | None = field(default=None, metadata={
        "doc": "Add the client's reverse-DNS hostname (its IP when it has none) to every "
               "record under this key."})
    id_key: str | None = field(default=ID_KEY, metadata={
        "doc": "A record carrying this field gets its value as document id (the field is "
               "removed): ids made by an upstream shipper agent survive the hop, so an agent "
               "that restarts and resends does not duplicate documents. null to disable."})
    tag_key: str | None = field(default=None, metadata={
        "doc": "Write each record's routing tag into it under this key, as the tail source "
               "writes `tag` (Fluentd's `include_tag_key` with `tag_key`); unset: the tag "
               "routes the record and is not stored."})
    source_address_key: str | None = field(default=None, metadata={
        "doc": "Add the client's IP address to every record under this key."})
    max_frame_bytes: Bytes = field(default=8 * MIB, metadata={
        "doc": "Largest request accepted; a client sending more loses its connection (no ack, "
               "so an acking client retries). This bounds each connection's receive buffer.",
        "check": checks.positive})
    max_decompressed_bytes: Bytes = field(default=64 * MIB, metadata={
        "doc": "Largest decompressed CompressedPackedForward payload (gzip bomb guard).",
        "check": checks.positive})
    max_connections: int = field(default=256, metadata={
        "doc": "Open connections at most; more are closed at once and counted.",
        "check": checks.positive})
    max_connections_per_address: int = field(default=128, metadata={
        "doc": "Open connections from one client IP address at most, so one host cannot take "
               "every slot; more are closed at once and counted (`per_address_limit`). Many "
               "clients behind one NAT address share this.",
        "check": checks.positive})
    idle_timeout_secs: Seconds = field(default=3600.0, metadata={
        "doc": "Close a connection that sent nothing for this long and waits for no ack. "
               "Idle between complete requests is normal for fluent-logger clients and the "
               "Docker log driver, which keep one connection open, so this is long; dead "
               "peers are also found by TCP keepalive.",
        "check": checks.positive})
    frame_timeout_secs: Seconds = field(default=30.0, metadata={
        "doc": "A request (and the handshake) must arrive completely within this long of "
               "waiting for its bytes, counted from its first byte; a client trickling a "
               "request byte by byte is closed (`slow_frame`). Time the server spends "
               "applying backpressure does not count. Also the TLS handshake timeout.",
        "check": checks.positive})
    max_nesting_depth: int = field(default=DEFAULT_MAX_NESTING_DEPTH, metadata={
        "doc": "Deepest nesting of maps and arrays in a record (the record itself is level "
               "1); a deeper record closes the connection (`too_deep`) without an ack.",
        "check": checks.positive})
    max_values_per_record: int = field(default=DEFAULT_MAX_VALUES_PER_RECORD, metadata={
        "doc": "Most values in one event (each array element and each map pair counts "
               "one, nested ones too) of a PackedForward request or a Forward-mode request "
               "larger than this many bytes; more closes the connection "
               "(`too_many_values`) without an ack. Bounds the memory one event can take "
               "when decoded (an empty map is 1 byte sent, ~64 bytes decoded).",
        "check": checks.positive})
    max_values_per_request: int = field(default=DEFAULT_MAX_VALUES_PER_REQUEST, metadata={
        "doc": "Most values in a request decoded whole (Message mode, small Forward-mode "
               "requests, odd shapes); more closes the connection (`too_many_values`) "
               "without an ack. Other requests are decoded an event at a time.",
        "check": checks.positive})
    max_batch_records: int = field(default=2000, metadata={
        "doc": "Most records per emitted batch; a large request is emitted in several batches "
               "and acknowledged when all of them are safe.",
        "check": checks.positive})
    security: ForwardSecurity | None = field(default=None, metadata={
        "doc": "Require the shared-key handshake (Fluentd `<security>`)."})
    tls: ForwardTls | None = field(default=None, metadata={
        "doc": "Serve TLS on the port (Fluentd `<transport tls>`)."})

    def validate(self) -> list[str]:
        problems = []
        if self.max_decompressed_bytes < self.max_frame_bytes:
            problems.append("max_decompressed_bytes: must be at least max_frame_bytes")
        if self.tag is not None and self.add_tag_prefix is not None:
            problems.append("add_tag_prefix: use either tag or add_tag_prefix, not both")
        return problems
