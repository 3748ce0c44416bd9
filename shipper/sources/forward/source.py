"""The ``forward`` source: a TCP (optionally TLS) forward server plus the UDP heartbeat.

``run`` listens until ``stop``. Each accepted socket is one ``Connection`` task; past
``max_connections`` a new socket is closed at once and counted. Idle connections cost one
suspended task each, so hundreds of slow or silent clients do not delay a busy one.

Shutdown follows the agent's order: ``stop`` closes the listeners and stops every connection
from reading (a batch being emitted is finished first); ``run`` returns once no connection is
reading or emitting. Connections that still owe acks stay open while the outputs drain and
write them as their events become safe; ``close`` then closes whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any, cast

from shipper.config.checks import split_host_port
from shipper.errors import SourceError
from shipper.metrics import Metrics
from shipper.protocols import Emit
from shipper.sources.forward.config import ForwardConfig, ForwardTls
from shipper.sources.forward.connection import Connection, ServerContext

log = logging.getLogger(__name__)

HOSTNAME_TIMEOUT_SECS = 2.0
# At max_connections, a connection that sent no complete request for this long (silent, or
# trickling one) is closed to make room for a newcomer instead of refusing the newcomer.
EVICT_AFTER_SECS = 10.0
_WARN_EVERY_SECS = 10.0


def server_ssl_context(tls: ForwardTls) -> ssl.SSLContext:
    """The server TLS context; unreadable files are a SourceError naming the setting."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = (ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3"
                           else ssl.TLSVersion.TLSv1_2)
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"tls.cert_file/key_file: cannot load {tls.cert_file}: {exc}") from exc
    if tls.ca_file:
        try:
            ctx.load_verify_locations(tls.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(f"tls.ca_file: cannot load {tls.ca_file}: {exc}") from exc
    if tls.client_cert_auth:
        ctx.verify_mode = ssl.CERT_REQUIRED
    # TLS 1.3 servers send session tickets after the handshake. A client that never reads
    # (no acks requested) leaves them unread in its socket, and closing a socket with unread
    # data sends a reset that discards what it sent last. Resumption buys nothing for the
    # long-lived connections of log forwarders, so send none.
    ctx.num_tickets = 0
    return ctx


class _Heartbeat(asyncio.DatagramProtocol):
    """Answers every UDP datagram with one 0x00 byte (spec §1.9)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(b"\x00", addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("forward heartbeat socket error: %s", exc, extra={"event": "forward_udp_error"})


class ForwardSource:
    """Source protocol implementation for the Fluentd forward protocol."""

    def __init__(self, name: str, config: ForwardConfig, metrics: Metrics) -> None:
        self.name = name
        self.config = config
        self.metrics = metrics
        self.port: int | None = None  # bound port, once listening
        self.ready = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._ctx: ServerContext | None = None
        self._active: set[Connection] = set()
        self._lingering: set[Connection] = set()
        self._idle = asyncio.Event()
        self._stop = asyncio.Event()
        self._last_warn: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._gauge = metrics.forward_connections.labels(name)

    # -- Source protocol ------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        cfg = self.config
        ssl_ctx = server_ssl_context(cfg.tls) if cfg.tls is not None else None
        host, port = split_host_port(cfg.listen, allow_any_port=True)
        loop = asyncio.get_running_loop()
        self._ctx = ServerContext(self.name, cfg, self.metrics, emit, loop, self._warn,
                                  self._on_linger, self._on_done, self._hostname_of,
                                  loop_thread=threading.get_ident())
        try:
            self._server = await asyncio.start_server(
                self._accept, host, port, ssl=ssl_ctx,
                ssl_handshake_timeout=cfg.frame_timeout_secs if ssl_ctx else None)
        except OSError as exc:
            raise SourceError(f"forward source {self.name}: cannot listen on {cfg.listen}: "
                              f"{exc}") from exc
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                _Heartbeat, local_addr=(host, self.port))
        except OSError as exc:
            log.warning("forward source %s: no UDP heartbeat on port %s: %s", self.name,
                        self.port, exc, extra={"event": "forward_udp_unavailable"})
        log.info("forward source %s listening on %s:%s%s", self.name, host, self.port,
                 " (TLS)" if ssl_ctx else "", extra={"event": "forward_listening"})
        self.ready.set()
        try:
            await self._stop.wait()
            while self._active and any(not c.lingering for c in self._active):
                self._idle.clear()
                await self._idle.wait()
        finally:
            self._close_listeners()
            for conn in list(self._active):
                if conn.task is not None and not conn.lingering:
                    conn.task.cancel()

    async def stop(self) -> None:
        """Stop accepting and reading; connections owing acks stay open until ``close``."""
        if self._ctx is not None:
            self._ctx.stopping = True
        self._close_listeners()
        for conn in list(self._active):
            conn.stop_reading()
        self._stop.set()

    async def close(self) -> None:
        """Close the connections that were kept open for their acks."""
        for conn in list(self._lingering) + list(self._active):
            conn.close()
        self._lingering.clear()

    # -- connections ----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ctx = self._ctx
        if ctx is not None and not ctx.stopping and len(self._active) + len(self._lingering) \
                >= self.config.max_connections:
            self._evict_one(ctx.loop.time())
        if ctx is None or ctx.stopping or len(self._active) + len(self._lingering) \
                >= self.config.max_connections:
            self.metrics.forward_connections_closed.labels(self.name, "limit").inc()
            self._warn("forward_connection_limit", "refused a connection: max_connections "
                       f"({self.config.max_connections}) reached or shutting down")
            with contextlib.suppress(Exception):
                writer.close()
            return
        peer = writer.get_extra_info("peername") or ("",)
        ip = str(peer[0])
        limit = self.config.max_connections_per_address
        if sum(1 for c in self._active if c.peer_ip == ip) + sum(
                1 for c in self._lingering if c.peer_ip == ip and not c.closed) >= limit:
            self.metrics.forward_connections_closed.labels(self.name, "per_address_limit").inc()
            self._warn("forward_connection_limit_per_address",
                       f"refused a connection: {ip} already has {limit} "
                       "(max_connections_per_address)", peer=ip)
            with contextlib.suppress(Exception):
                writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:  # find dead peers of idle connections
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.metrics.forward_connections_accepted.labels(self.name).inc()
        conn = Connection(ctx, reader, writer)
        self._active.add(conn)
        self._update_gauge()
        with contextlib.suppress(asyncio.CancelledError):  # we cancelled it: shutdown
            await conn.serve()

    def _evict_one(self, now: float) -> None:
        """Close the connection quiet the longest (no complete request for at least
        ``EVICT_AFTER_SECS``, no ack owed), so silent or trickling sockets cannot keep
        every slot from clients that have something to send."""
        oldest: Connection | None = None
        oldest_since = now - EVICT_AFTER_SECS
        for conn in self._active:
            since = conn.evictable_since()
            if since is not None and since <= oldest_since:
                oldest, oldest_since = conn, since
        if oldest is None:
            return
        self._warn("forward_connection_evicted", "closed a connection without a request for "
                   f"{now - oldest_since:.0f} s to make room (max_connections "
                   f"{self.config.max_connections})", peer=oldest.peer_ip)
        oldest.evict()
        self._active.discard(oldest)  # its task finishes on its own; the slot is free now
        self._update_gauge()

    def _on_done(self, conn: Connection) -> None:
        self._active.discard(conn)
        self._update_gauge()
        self._idle.set()

    def _on_linger(self, conn: Connection) -> None:
        self._lingering = {c for c in self._lingering if not c.closed}
        self._lingering.add(conn)

    def _update_gauge(self) -> None:
        self._gauge.set(len(self._active) + sum(1 for c in self._lingering if not c.closed))

    def _close_listeners(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def _hostname_of(self, ip: str, port: int) -> str:
        """Reverse DNS of the client (Fluentd ``source_hostname_key``); its IP if none."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(HOSTNAME_TIMEOUT_SECS):
                host, _ = await loop.getnameinfo((ip, port), socket.NI_NAMEREQD)
            return str(host)
        except (OSError, TimeoutError):
            return ip

    def _warn(self, event: str, message: str, **fields: Any) -> None:
        """At most one line per event name every 10 s; the rest are counted in the next."""
        now = time.monotonic()
        if now - self._last_warn.get(event, -1e9) < _WARN_EVERY_SECS:
            self._suppressed[event] = self._suppressed.get(event, 0) + 1
            return
        self._last_warn[event] = now
        suppressed = self._suppressed.pop(event, 0)
        log.warning("forward source %s: %s", self.name, message,
                    extra={"event": event, "source": self.name, "suppressed": suppressed,
                           **fields})
