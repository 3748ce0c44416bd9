"""The ``logzio`` output: newline-delimited JSON to the Logz.io bulk HTTP listener (spec §2).

Glue only: ``request`` encodes and checks lines, ``response`` classifies answers, ``token``
supplies and hides the token, ``health`` holds readiness and the listener's line counts.

The client is urllib3, already installed with the elasticsearch transport: a thread-safe
keep-alive pool (one connection per in-flight chunk), TLS through an ``ssl`` context we build
and check at start (so a bad ``ca_file`` is a clear error, not a retry loop), no retries and
no redirects of its own (only delivery retries; a redirect would carry the token elsewhere).
Requests run in a worker thread so the event loop never waits on the network. Its exceptions
never reach a message unredacted, and its debug log lines (which print the URL) are filtered.

``send`` makes one attempt per request body and never raises: lines that break a limit are
REJECTED before anything is sent, the rest go in bodies of at most ``max_request_bytes``.
The one exception to "one attempt" is a 413, which stored nothing: the body is halved and
each half sent, recursively, within the same call.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import urllib3

from outputs.logzio.config import LogzioConfig
from outputs.logzio.health import Health
from outputs.logzio.request import (
    LineEncoder,
    check_line,
    decode_payload,
    group_bodies,
    join_body,
)
from outputs.logzio.response import (
    BAD_REQUEST,
    CREDENTIAL_STATUSES,
    classify,
    combine,
    needs_split,
    parse_line_counts,
)
from outputs.logzio.token import TokenSource, install_log_redaction, redact
from shipper import __version__
from shipper.blocking import DaemonThreads
from shipper.errors import (
    TLS_ERROR_TYPE,
    OutputCredentialsError,
    OutputPermanentError,
    OutputTLSError,
    tls_verify_failure,
)
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Status
from shipper.record import Record

__all__ = ["Health", "LogzioConfig", "LogzioOutput"]

log = logging.getLogger(__name__)

USER_AGENT = f"shipper-logs/{__version__}"
CONTENT_TYPE = "text/plain"  # what fluent-plugin-logzio sends; the listener reads NDJSON
MAX_RESPONSE_BYTES = 64 * 1024  # listener answers are tiny; never buffer a proxy's page whole
_ALERT_EVERY_SECS = 30.0
#: ``close`` gives up on the pool after this long (the agent is stopping).
CLOSE_TIMEOUT_SECS = 1.0
_KINDS = ("successful", "malformed", "oversized", "empty")


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifying TLS context: ``ca_file`` if given, else certifi's bundle, else the system's."""
    if ca_file is None:
        try:
            import certifi
            ca_file = certifi.where()
        except ImportError:  # the system store is the fallback
            return ssl.create_default_context()
    return ssl.create_default_context(cafile=ca_file)


class LogzioOutput:
    """Implements ``shipper.protocols.Output``; ``health`` holds readiness and line counts.

    Delivery counts requests and records from the Outcome; this output adds what only it
    knows: the listener's own line counts and the records it truncated.
    ``pool`` replaces the HTTP connection pool (tests).
    """

    #: Dead-letter reasons (error types) exported at zero from the start.
    DEAD_LETTER_REASONS = ("logzio_unidentified", "logzio_refused", "logzio_malformed",
                           "logzio_oversized", "logzio_empty", "bad_request",
                           "payload_too_large", "line_too_large", "empty_line",
                           "malformed_line")

    def __init__(self, name: str, config: LogzioConfig, metrics: Metrics | None = None,
                 *, pool: urllib3.HTTPConnectionPool | None = None) -> None:
        self.name = name
        self.config = config
        self.endpoint = config.endpoint()
        self.health = Health()
        self._encoder = LineEncoder(config)
        self._tokens = TokenSource(name, config.token, config.token_file)
        self._pool = pool
        self._own_pool = pool is None  # ours to rebuild (re-reading ca_file) after a TLS refusal
        self._timeout = urllib3.Timeout(connect=min(10.0, config.request_timeout_secs),
                                        total=config.request_timeout_secs)
        self._credentials_retry_after = config.buffer.retry_max_secs
        # Requests run in daemon threads: one the listener never answers must not hold the
        # process past its shutdown deadline (an abandoned request's chunk stays unsettled).
        self._io = DaemonThreads(f"logzio-{name}")
        self._last_alert = -1e18
        self._truncated = metrics.records_truncated.labels(name) if metrics else None
        self._lines = ({k: metrics.logzio_lines.labels(name, k) for k in _KINDS}
                       if metrics else None)
        install_log_redaction()

    # -- Output protocol -----------------------------------------------------------------

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        out = self._encoder.encode(records)
        if self._encoder.truncated:
            if self._truncated is not None:
                self._truncated.inc(self._encoder.truncated)
            self._encoder.truncated = 0
        return out

    async def start(self) -> None:
        """Load the token and set up TLS. Raises OutputCredentialsError without a token (kept
        retrying by delivery: a Secret may appear later), OutputTLSError when the listener's
        certificate fails verification (a TLS handshake, which sends no line), and
        OutputPermanentError on a TLS setup that retrying cannot fix. An unreachable listener
        does not stop the start: records wait in the buffer and delivery retries."""
        try:
            self._tokens.current()
        except OutputCredentialsError as exc:
            self.health.credentials_rejected = True
            self.health.credentials_problem = str(exc)
            raise
        self._ensure_pool()
        if self.endpoint.scheme == "https":
            tls = await self._io.run(self._handshake_failure)
            if tls is not None:
                self._discard_pool()
                self.health.tls_problem = tls
                raise OutputTLSError(f"output {self.name}: {tls}")
            self.health.tls_problem = None
        if self.endpoint.scheme == "http":
            log.warning("output %s: plain http to %s (allow_insecure): the token can be read "
                        "on the network", self.name, self.endpoint,
                        extra={"event": "logzio_insecure", "output": self.name})
        self.health.started = True
        log.info("output %s: shipping to %s as type %s, token from %s", self.name,
                 self.endpoint, self.config.log_type, self._tokens.origin,
                 extra={"event": "logzio_started", "output": self.name})

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        n = len(payloads)
        if not n:
            return Outcome([])
        limit = self.config.max_line_bytes
        rejected: dict[int, ItemError] = {}
        valid: list[int] = []
        for i, payload in enumerate(payloads):
            error = check_line(payload, limit)
            if error is None:
                valid.append(i)
            else:
                rejected[i] = error
        parts: list[tuple[Sequence[int], Outcome]] = []
        if valid:
            try:
                token = self._tokens.current()
            except OutputCredentialsError as exc:
                outcome = Outcome.all(len(valid), Status.RETRY,
                                      ItemError(401, "token_unavailable", str(exc)),
                                      retry_after=self._credentials_retry_after,
                                      http_status=401)
                self._observe(outcome)
                return combine(n, [(valid, outcome)], rejected)
            ranges = group_bodies([len(payloads[i]) for i in valid],
                                  self.config.max_request_bytes)
            for start, end in ranges:
                indices = valid[start:end]
                outcome = await self._send_lines([payloads[i] for i in indices], token)
                parts.append((indices, outcome))
                rest = valid[end:]
                if rest and _hopeless(outcome):
                    # Unreachable, or the token is refused: the rest would fail the same way.
                    parts.append((rest, _same_failure(outcome, len(rest))))
                    break
        return combine(n, parts, rejected)

    def describe(self, payload: bytes) -> dict[str, Any]:
        return {"listener": str(self.endpoint), "log_type": self.config.log_type,
                **decode_payload(payload)}

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            # Closing only drops idle connections; bounded all the same, as shutdown is.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._io.run(pool.close), CLOSE_TIMEOUT_SECS)
        self._io.shutdown()

    # -- internals -----------------------------------------------------------------------

    def _ensure_pool(self) -> urllib3.HTTPConnectionPool:
        if self._pool is None:
            ep = self.endpoint
            size = max(1, self.config.buffer.max_in_flight)
            if ep.scheme == "https":
                try:
                    context = ssl_context(self.config.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise OutputPermanentError(
                        f"output {self.name}: cannot use ca_file {self.config.ca_file}: "
                        f"{exc}") from None
                self._pool = urllib3.HTTPSConnectionPool(
                    ep.host, ep.port, maxsize=size, block=False, timeout=self._timeout,
                    retries=False, ssl_context=context)
            else:
                self._pool = urllib3.HTTPConnectionPool(
                    ep.host, ep.port, maxsize=size, block=False, timeout=self._timeout,
                    retries=False)
        return self._pool

    def _discard_pool(self) -> None:
        """Drop a pool we built, so that the next request builds a new TLS context: the
        operator may have fixed ``ca_file``. Requests still using it finish normally."""
        if self._own_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def _handshake_failure(self) -> str | None:
        """Blocking: why the listener's certificate fails verification, or None (also when
        the listener cannot be reached now: delivery retries that like any outage)."""
        pool = self._ensure_pool()
        context = pool.conn_kw.get("ssl_context") or ssl_context(self.config.ca_file)
        ep = self.endpoint
        timeout = min(10.0, self.config.request_timeout_secs)
        try:
            with socket.create_connection((ep.host, ep.port), timeout=timeout) as sock, \
                    context.wrap_socket(sock, server_hostname=ep.host):
                return None
        except ssl.SSLCertVerificationError as exc:
            return f"{tls_verify_failure(exc)} (listener {ep})"
        except OSError as exc:
            log.info("output %s: cannot check the listener's certificate now: %s", self.name,
                     exc, extra={"event": "logzio_tls_check_skipped", "output": self.name})
            return None

    def _url(self, token: str) -> str:
        """Path and query of a bulk request: the one string that holds the token."""
        return (f"{self.endpoint.path}/?token={quote(token, safe='')}"
                f"&type={quote(self.config.log_type, safe='')}")

    async def _send_lines(self, lines: Sequence[bytes], token: str) -> Outcome:
        """One request; on 413 split in halves and send each (nothing was stored)."""
        outcome = await self._post(lines, token)
        if not needs_split(outcome):
            return outcome
        mid = len(lines) // 2
        log.warning("output %s: request of %d lines too large (413); splitting", self.name,
                    len(lines), extra={"event": "logzio_split", "output": self.name})
        left = await self._send_lines(lines[:mid], token)
        if _hopeless(left):
            right = _same_failure(left, len(lines) - mid)
        else:
            right = await self._send_lines(lines[mid:], token)
        return combine(len(lines), [(range(mid), left), (range(mid, len(lines)), right)])

    async def _post(self, lines: Sequence[bytes], token: str) -> Outcome:
        body = join_body(lines, self.config.gzip)
        headers = {"content-type": CONTENT_TYPE, "user-agent": USER_AGENT}
        if self.config.gzip:
            headers["content-encoding"] = "gzip"
        try:
            status, resp_headers, raw = await self._io.run(
                self._request, self._url(token), body, headers)
        except OutputPermanentError as exc:  # ca_file unreadable when the pool was rebuilt
            error = ItemError(0, TLS_ERROR_TYPE, str(exc))
            outcome = Outcome.all(len(lines), Status.RETRY, error)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            tls = tls_verify_failure(exc)
            if tls is not None:
                self._discard_pool()  # the next attempt re-reads ca_file
                error = ItemError(0, TLS_ERROR_TYPE, f"{tls} (listener {self.endpoint})")
            else:
                # urllib3's NewConnectionError (refused, unresolvable) subclasses its
                # TimeoutError.
                timeout = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError) \
                    and not isinstance(exc, urllib3.exceptions.NewConnectionError)
                text = redact(f"{type(exc).__name__}: {exc}", self._tokens.known)
                error = ItemError(0, "timeout" if timeout else "connection_error",
                                  f"{self.endpoint}: {text}")
            outcome = Outcome.all(len(lines), Status.RETRY, error)
        else:
            outcome = classify(status, raw, lines, resp_headers,
                               credentials_retry_after=self._credentials_retry_after,
                               secrets=self._tokens.known)
            self._count_lines(status, raw, len(lines))
        self._observe(outcome)
        return outcome

    def _request(self, url: str, body: bytes, headers: Mapping[str, str],
                 ) -> tuple[int, dict[str, str], bytes]:
        """Blocking; runs in a worker thread."""
        pool = self._ensure_pool()
        resp = pool.urlopen("POST", url, body=body, headers=dict(headers), retries=False,
                            redirect=False, timeout=self._timeout, preload_content=False)
        try:
            data = resp.read(MAX_RESPONSE_BYTES)
            if resp.read(1):  # an unexpectedly large answer: do not reuse the connection
                resp.close()
        finally:
            resp.release_conn()
        return resp.status, dict(resp.headers), data

    def _count_lines(self, status: int, raw: bytes, n_sent: int) -> None:
        """The listener's own accounting: exact, whatever we guessed about which lines."""
        if 200 <= status < 300:
            counts = None
        elif status == BAD_REQUEST:
            counts = parse_line_counts(raw)
            if counts is None:
                return
        else:
            return
        self.health.count_lines(n_sent, counts)
        if self._lines is None:
            return
        if counts is None:
            self._lines["successful"].inc(n_sent)
            return
        self._lines["successful"].inc(counts.accepted_of(n_sent))
        self._lines["malformed"].inc(counts.malformed)
        self._lines["oversized"].inc(counts.oversized)
        self._lines["empty"].inc(counts.empty)
        accepted = counts.accepted_of(n_sent)
        log.warning("output %s: the listener stored %d of %d lines and refused %d (%s) "
                    "without saying which; nothing is resent, and the lines it may have "
                    "refused are in the dead-letter store", self.name, accepted, n_sent,
                    n_sent - accepted, counts,
                    extra={"event": "logzio_lines_refused", "output": self.name})

    def _observe(self, outcome: Outcome) -> None:
        self.health.observe(outcome)
        if outcome.http_status not in CREDENTIAL_STATUSES:
            return
        now = time.monotonic()
        if now - self._last_alert < _ALERT_EVERY_SECS:
            return
        self._last_alert = now
        error = next(iter(outcome.errors.values()), None)
        reason = error.reason if error is not None else f"HTTP {outcome.http_status}"
        log.error("output %s: Logz.io refused the token from %s (%s: %s); records are kept "
                  "and retried every %.0fs until it is accepted", self.name,
                  self._tokens.origin, outcome.http_status, reason,
                  self._credentials_retry_after,
                  extra={"event": "logzio_credentials_rejected", "output": self.name,
                         "http_status": outcome.http_status})


def _hopeless(outcome: Outcome) -> bool:
    """The listener cannot be reached, or refuses the token: other requests would fail too."""
    return outcome.http_status is None or outcome.http_status in CREDENTIAL_STATUSES


def _same_failure(outcome: Outcome, n: int) -> Outcome:
    error = next(iter(outcome.errors.values()), None)
    return Outcome.all(n, Status.RETRY, error, retry_after=outcome.retry_after,
                       http_status=outcome.http_status)
