"""Settings of the ``logzio`` output (spec §2: the Logz.io bulk HTTP listener).

Names follow the rest of shipper (unit suffixes, ``match``, ``buffer``); the migration table
in ``__config_examples__`` maps every logzio-k8s environment variable onto them. The
Logz.io log type is ``log_type`` because ``type`` picks the kind of output.

Validation is pure. No message about ``token`` or ``listener`` ever repeats the value: the
token is a credential and a listener URL pasted from an old Fluentd config may carry
``?token=...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal, NamedTuple
from urllib.parse import urlsplit

from shipper.buffer.config import BufferConfig
from shipper.config import checks
from shipper.config.types import Bytes, Seconds

# Region code -> listener host (spec §2.1); Logz.io's own exporters use the same map.
REGION_HOSTS: dict[str, str] = {
    "us": "listener.logz.io",
    "au": "listener-au.logz.io",
    "ca": "listener-ca.logz.io",
    "eu": "listener-eu.logz.io",
    "uk": "listener-uk.logz.io",
    "nl": "listener-nl.logz.io",
    "wa": "listener-wa.logz.io",
}
HTTPS_PORT = 8071
HTTP_PORT = 8070
MAX_BODY_BYTES = 10_485_760  # the listener answers 413 above this (spec §2.3)
MAX_LINE_BYTES = 500_000  # longer lines are counted as oversizedLines and not indexed
MIN_LINE_BYTES = 1024  # room for the metadata of a record plus a useful part of its message

_LOG_TYPE = re.compile(r"[A-Za-z0-9_.:@-]{1,100}")


class Endpoint(NamedTuple):
    """Where requests go; carries no credential, so it is safe to log."""

    scheme: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path or '/'}"


def parse_listener(url: str) -> Endpoint:
    """Split a listener URL; a missing port is 8071 for https and 8070 for http.

    Raises ValueError with a message that never repeats the URL (it may hold a token).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("is not a valid URL (expected https://<listener-host>:8071)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be a URL like https://listener.logz.io:8071")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment: put the token in "
                         "token or token_file, and the type in log_type")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials: put the token in token or token_file")
    default = HTTPS_PORT if parts.scheme == "https" else HTTP_PORT
    return Endpoint(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/"))


def _check_listener(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parse_listener(url)
    except ValueError as exc:
        return str(exc)
    return None


def _check_region(region: str | None) -> str | None:
    if region is None or region.lower() in REGION_HOSTS:
        return None
    return f"unknown region {region!r}; one of: {', '.join(REGION_HOSTS)}"


def _check_token(token: str | None) -> str | None:
    if token is None:
        return None
    if not token:
        return "must not be empty"
    if any(c.isspace() or not c.isprintable() for c in token):
        return "must not contain spaces or control characters"
    return None


def _check_log_type(value: str) -> str | None:
    if not _LOG_TYPE.fullmatch(value):
        return ("must be 1-100 characters among letters, digits and _ . : @ - "
                "(Logz.io refuses spaces)")
    return None


def _check_line_bytes(value: int) -> str | None:
    if not MIN_LINE_BYTES <= value <= MAX_LINE_BYTES:
        return f"must be between {MIN_LINE_BYTES} and {MAX_LINE_BYTES} (the listener's limit)"
    return None


def _check_body_bytes(value: int) -> str | None:
    if not MIN_LINE_BYTES <= value <= MAX_BODY_BYTES:
        return f"must be between {MIN_LINE_BYTES} and {MAX_BODY_BYTES} (the listener's limit)"
    return None


def _check_tag_key(value: str | None) -> str | None:
    if value is not None and not value:
        return "must not be empty; use null to leave the tag out"
    return None


@dataclass(frozen=True)
class LogzioConfig:
    """Ship records to a Logz.io account through its bulk HTTP listener."""

    type: Literal["logzio"] = field(default="logzio", metadata={
        "doc": "Output type: the Logz.io bulk HTTP listener (newline-delimited JSON)."})
    region: str | None = field(default=None, metadata={
        "doc": "Account region code: us, au, ca, eu, uk (nl, wa: legacy Azure). Picks "
               "https://listener[-<code>].logz.io:8071; unset means us. Your region is in "
               "the app URL (app-eu.logz.io is eu).",
        "check": _check_region})
    listener: str | None = field(default=None, metadata={
        "doc": "Full listener URL instead of region, e.g. ${LOGZIO_URL} from logzio-k8s. "
               "Without a port, https uses 8071 and http 8070. No query string: the token "
               "has its own keys.",
        "check": _check_listener})
    allow_insecure: bool = field(default=False, metadata={
        "doc": "Allow a plain http:// listener (port 8070). The token travels in the URL, "
               "so over http anyone on the path can read it; only for a local proxy."})
    token: str | None = field(default=None, repr=False, metadata={
        "doc": "Log shipping token (use ${LOGZIO_TOKEN}). Set this or token_file.",
        "secret": True, "check": _check_token})
    token_file: str | None = field(default=None, metadata={
        "doc": "File holding the token, e.g. a Kubernetes Secret mounted as a volume. Read at "
               "start and again whenever the file changes (Secret rotation needs no restart); "
               "surrounding whitespace is ignored."})
    log_type: str = field(default="k8s", metadata={
        "doc": "Logz.io log type (selects the parsing pipeline): sent as the URL type and "
               "added as `type` to records that have none. k8s is what logzio-k8s sends.",
        "check": _check_log_type})
    tag_key: str | None = field(default="fluentd_tags", metadata={
        "doc": "Field that receives the record's tag when it has none, like "
               "fluent-plugin-logzio's output_include_tags; null leaves it out.",
        "check": _check_tag_key})
    gzip: bool = field(default=False, metadata={
        "doc": "Compress request bodies (Content-Encoding: gzip). Limits are still measured "
               "on the uncompressed body."})
    ca_file: str | None = field(default=None, metadata={
        "doc": "PEM file of the CA that signs the listener's certificate (default: the "
               "system/certifi bundle); for a TLS-intercepting proxy or a test listener."})
    request_timeout_secs: Seconds = field(default=30.0, metadata={
        "doc": "Give up on one request after this long; its records are retried (the "
               "listener may have stored them, so a timeout can duplicate lines).",
        "check": checks.positive})
    max_request_bytes: Bytes = field(default=MAX_BODY_BYTES, metadata={
        "doc": "Split a chunk so that no request body exceeds this (uncompressed). At most "
               "the listener's 10 MB; buffer.chunk_limit_bytes usually keeps requests smaller.",
        "check": _check_body_bytes})
    max_line_bytes: Bytes = field(default=MAX_LINE_BYTES, metadata={
        "doc": "Longest JSON line sent. A longer record gets its message (or log) cut and "
               "flagged `truncated` with `shipper.original_bytes`; one that still does not "
               "fit goes to the dead-letter store whole. At most the listener's 500,000.",
        "check": _check_line_bytes})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this output receives (Fluentd match syntax)."})
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata={
        "doc": "How records are buffered before delivery (this output's own buffer: an "
               "outage here never holds back another output's records)."})

    __config_examples__: ClassVar[str] = """\
**Migrating from logzio-k8s.** Its Fluentd DaemonSet builds
`endpoint_url "#{ENV['LOGZIO_URL']}?token=#{ENV['LOGZIO_TOKEN']}"` and sets `type k8s`,
`message` from `log`, `@timestamp` and `fluentd_tags` on every record. This output does all of
that by default; keep the same Secret and environment variables:

```yaml
outputs:
  logzio:
    type: logzio
    listener: ${LOGZIO_URL}          # https://listener-eu.logz.io:8071
    token: ${LOGZIO_TOKEN}           # or token_file (below), which follows Secret rotation
    buffer:
      chunk_limit_bytes: 2MiB        # LOGZIO_CHUNK_LIMIT_SIZE
      flush_interval_secs: 5s        # LOGZIO_FLUSH_INTERVAL
      retry_max_secs: 30s            # LOGZIO_RETRY_MAX_INTERVAL
      max_in_flight: 4               # LOGZIO_FLUSH_THREAD_COUNT
```

Every logzio-k8s / fluent-plugin-logzio setting, and where it went:

- `LOGZIO_TOKEN`, `LOGZIO_LOG_SHIPPING_TOKEN` (Secret key `logzio-log-shipping-token`):
  `token: ${LOGZIO_TOKEN}`, or the Secret mounted as a file and `token_file`.
- `LOGZIO_URL`, `LOGZIO_LOG_LISTENER` (Secret key `logzio-log-listener`):
  `listener: ${LOGZIO_URL}`, or `region: eu`.
- `endpoint_url ...&type=T`, record_modifier `type k8s`: `log_type: k8s` (the default).
- record_modifier `message ${record["log"]}` with `remove_keys log`: automatic, `log` becomes
  `message` (a record that already has a `message` keeps both).
- `output_include_time true`: automatic, `@timestamp` (millisecond precision) when the record
  has none.
- `output_include_tags true` (field `fluentd_tags`): `tag_key: fluentd_tags` (the default).
- `gzip true`: `gzip: true`.
- `bulk_limit`, `max_log_field_size_bytes`: `max_request_bytes`, `max_line_bytes`; an
  oversized message is truncated and flagged, never dropped.
- `LOGZIO_CHUNK_LIMIT_SIZE` (2M): `buffer.chunk_limit_bytes`.
- `LOGZIO_FLUSH_INTERVAL` (5s): `buffer.flush_interval_secs`.
- `LOGZIO_RETRY_MAX_INTERVAL` (30): `buffer.retry_max_secs`.
- `LOGZIO_RETRY_FOREVER` (true): always; retries never give up, after a 401 too.
- `LOGZIO_FLUSH_THREAD_COUNT` (4): `buffer.max_in_flight`.
- `LOGZIO_OVERFLOW_ACTION` (block): `buffer.when_full: block`.
- `LOGZIO_QUEUE_LIMIT_LENGTH` (chunks): `buffer.total_limit_bytes` (bytes).
- `LOGZIO_BUFFER_TYPE` (file), `LOGZIO_BUFFER_PATH`: `buffer.type: disk` (its files live under
  `state_dir`), or `memory`, where file checkpoints advance only after delivery, so a restart
  reads again instead of losing.
- `INCLUDE_NAMESPACE` (a match pattern): `match`.
- `LOGZIO_LOG_LEVEL`: the top-level `log_level`.

**Token from a mounted Secret.** With a Secret whose key `token` is mounted at
`/etc/shipper/logzio` and the listener URL in the environment:

```yaml
outputs:
  logzio:
    type: logzio
    listener: ${LOGZIO_URL}
    token_file: /etc/shipper/logzio/token
```

When the Secret is updated, the kubelet swaps the file and the next request uses the new token.
A rejected token (401/403) never drops data: the records stay buffered, `/readyz` reports the
output not ready, and the request is retried at `buffer.retry_max_secs` until the token works.
"""

    def endpoint(self) -> Endpoint:
        """The listener this output sends to (region host unless ``listener`` is set)."""
        if self.listener is not None:
            return parse_listener(self.listener)
        host = REGION_HOSTS[(self.region or "us").lower()]
        return Endpoint("https", host, HTTPS_PORT, "")

    def validate(self) -> list[str]:
        """Problems that involve several fields, each as ``"<key>: <message>"``."""
        problems: list[str] = []
        if self.token is None and self.token_file is None:
            problems.append("token: set token (e.g. ${LOGZIO_TOKEN}) or token_file")
        if self.token is not None and self.token_file is not None:
            problems.append("token_file: set either token or token_file, not both")
        if self.token_file is not None and not self.token_file.strip():
            problems.append("token_file: must not be empty")
        if self.region is not None and self.listener is not None:
            problems.append("listener: set either region or listener, not both")
        if self.listener is not None and _check_listener(self.listener) is None:
            if parse_listener(self.listener).scheme == "http" and not self.allow_insecure:
                problems.append("listener: plain http sends the token in clear text; use "
                                "https (port 8071) or set allow_insecure: true")
        if self.max_line_bytes > self.max_request_bytes:
            problems.append("max_line_bytes: must not exceed max_request_bytes")
        return problems
