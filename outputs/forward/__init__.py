"""The ``forward`` output: PackedForward to Fluentd-protocol aggregators (spec forward §1).

Glue only: ``request`` builds payloads and messages, ``response`` reads the handshake and
classifies acks, ``health`` picks servers, ``connection`` does the socket work.

``send`` makes one attempt per call, like every output: it picks the best server, and only
when a connection cannot even be established (nothing sent) does it move on to the next
server within the same call. Once messages are written, the outcome is what the acks say:
acked messages are DELIVERED, the rest RETRY — a timed-out ack is a retry, and delivery sends
those payloads again after its backoff (at-least-once). Connections are pooled per server
(``keepalive``); a background task probes every server (``heartbeat_type``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

from outputs.forward.config import ForwardOutputConfig
from outputs.forward.connection import ClientConnection, client_ssl_context, probe
from outputs.forward.health import ForwardHealth, ServerState
from outputs.forward.request import EntryEncoder, build_messages, decode_payload
from outputs.forward.response import AUTH_FAILED_STATUS, classify, failed
from shipper.errors import (
    TLS_ERROR_TYPE,
    OutputCredentialsError,
    OutputError,
    OutputPermanentError,
    OutputRetryableError,
    OutputTLSError,
)
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome
from shipper.record import Record

__all__ = ["ForwardOutput", "ForwardOutputConfig"]

log = logging.getLogger(__name__)


class ForwardOutput:
    """Implements ``shipper.protocols.Output``; ``health`` holds per-server availability."""

    def __init__(self, name: str, config: ForwardOutputConfig,
                 metrics: Metrics | None = None) -> None:
        self.name = name
        self.config = config
        self._metrics = metrics
        self._encoder = EntryEncoder(config.time_as_integer, config.id_key)
        self.health = ForwardHealth(config.servers, config.recover_wait_secs,
                                    heartbeats=config.heartbeat_type != "none",
                                    on_change=self._server_changed)
        self._hostname = config.self_hostname or socket.gethostname()
        self._ssl: ssl.SSLContext | None = None
        self._pool: dict[str, list[ClientConnection]] = {s.label: [] for s in config.servers}
        self._heartbeat: asyncio.Task[None] | None = None
        for state in self.health.states:
            self._server_changed(state)

    # -- Output protocol -----------------------------------------------------------------

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        return self._encoder.encode(records)

    async def start(self) -> None:
        """Load TLS files (permanent error if unreadable), start heartbeats, and reach one
        server (retryable error while none answers; credentials error when refused)."""
        if self.config.tls is not None and self._ssl is None:
            self._ssl = client_ssl_context(self.config.tls)
            if not self.config.tls.verify:
                log.warning("output %s: TLS verification is disabled; the connection can be "
                            "intercepted", self.name, extra={"event": "forward_tls_unverified"})
        if self._heartbeat is None and self.config.heartbeat_type != "none":
            self._heartbeat = asyncio.create_task(self._heartbeats(),
                                                  name=f"forward-heartbeat-{self.name}")
        errors = []
        tls_refused = False
        for state in self.health.candidates(time.monotonic()):
            try:
                conn = await self._connect(state)
            except OutputCredentialsError:
                raise
            except OutputError as exc:
                errors.append(str(exc))
                tls_refused = tls_refused or isinstance(exc, OutputTLSError)
                continue
            self._release(state, conn)
            self.health.started = True
            log.info("output %s: connected to %s", self.name, state.label,
                     extra={"event": "forward_connected", "output": self.name})
            return
        message = f"output {self.name}: no server reachable: " + "; ".join(errors)
        if tls_refused:  # a certificate we do not trust is a configuration problem
            raise OutputTLSError(message)
        raise OutputRetryableError(message)

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        n = len(payloads)
        if not n:
            return Outcome([])
        cfg = self.config
        messages = build_messages(payloads, cfg.compress == "gzip", cfg.require_ack_response)
        errors: list[str] = []
        tls_refused = False
        for state in self.health.candidates(time.monotonic()):
            try:
                conn = await self._acquire(state)
            except OutputCredentialsError as exc:
                self.health.credentials_rejected = True
                self.health.failure(state, str(exc), time.monotonic())
                return failed(n, ItemError(AUTH_FAILED_STATUS, "auth_failed", str(exc)))
            except OutputError as exc:
                errors.append(str(exc))
                tls_refused = tls_refused or isinstance(exc, OutputTLSError)
                continue
            return await self._exchange(state, conn, messages, n)
        detail = "; ".join(errors) or "no server configured"
        kind = TLS_ERROR_TYPE if tls_refused else "connection_error"
        return failed(n, ItemError(0, kind, f"no server reachable: {detail}"))

    def describe(self, payload: bytes) -> dict[str, Any]:
        return decode_payload(payload)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
            self._heartbeat = None
        for conns in self._pool.values():
            for conn in conns:
                conn.close()
            conns.clear()

    # -- internals -----------------------------------------------------------------------

    async def _exchange(self, state: ServerState, conn: ClientConnection,
                        messages: list[Any], n: int) -> Outcome:
        """Write the messages, then wait for their acks; the outcome follows the acks."""
        cfg = self.config
        acked: set[str] = set()
        try:
            await conn.write(m.data for m in messages)
            if cfg.require_ack_response:
                expected = {m.chunk for m in messages if m.chunk is not None}
                await conn.read_acks(expected, cfg.ack_response_timeout_secs, acked)
        except TimeoutError:
            conn.close()
            error = ItemError(0, "ack_timeout", f"{state.label}: no ack within "
                                                f"{cfg.ack_response_timeout_secs}s")
            self.health.failure(state, error.reason, time.monotonic())
            return classify(messages, acked, n, error)
        except OutputCredentialsError as exc:
            conn.close()
            self.health.credentials_rejected = True
            self.health.failure(state, str(exc), time.monotonic())
            return classify(messages, acked, n, ItemError(AUTH_FAILED_STATUS, "auth_failed",
                                                          str(exc)))
        except OutputError as exc:
            conn.close()
            self.health.failure(state, str(exc), time.monotonic())
            return classify(messages, acked, n, ItemError(0, "connection_error", str(exc)))
        self.health.success(state)
        self._release(state, conn)
        return classify(messages, acked, n)

    async def _connect(self, state: ServerState) -> ClientConnection:
        try:
            return await ClientConnection.open(state.server, self.config, self._ssl,
                                               self._hostname)
        except OutputCredentialsError as exc:
            self.health.credentials_rejected = True
            self.health.failure(state, str(exc), time.monotonic())
            raise
        except OutputPermanentError:
            raise
        except OutputError as exc:
            self.health.failure(state, str(exc), time.monotonic())
            raise

    async def _acquire(self, state: ServerState) -> ClientConnection:
        """A pooled connection that is still open and fresh, else a new one."""
        pool = self._pool[state.label]
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if conn.usable and now - conn.last_used < self.config.keepalive_timeout_secs:
                return conn
            conn.close()
        return await self._connect(state)

    def _release(self, state: ServerState, conn: ClientConnection) -> None:
        if self.config.keepalive and conn.usable:
            self._pool[state.label].append(conn)
        else:
            conn.close()

    async def _heartbeats(self) -> None:
        """Probe every server each interval, concurrently, for ever (cancelled by close)."""
        cfg = self.config
        while True:
            results = await asyncio.gather(
                *(probe(s.server, cfg, self._ssl, self._hostname) for s in self.health.states),
                return_exceptions=True)
            now = time.monotonic()
            for state, result in zip(self.health.states, results, strict=True):
                if isinstance(result, BaseException):
                    result = f"{state.label}: {result}"
                self.health.heartbeat(state, result is None, now, result or "")
            await asyncio.sleep(cfg.heartbeat_interval_secs)

    def _server_changed(self, state: ServerState) -> None:
        if self._metrics is not None:
            self._metrics.forward_server_up.labels(self.name, state.label).set(
                1 if state.available else 0)
        if not state.available:
            log.warning("output %s: server %s unavailable: %s", self.name, state.label,
                        state.last_error, extra={"event": "forward_server_down",
                                                 "output": self.name, "server": state.label})
        elif state.failures:
            log.info("output %s: server %s available again", self.name, state.label,
                     extra={"event": "forward_server_up", "output": self.name,
                            "server": state.label})
