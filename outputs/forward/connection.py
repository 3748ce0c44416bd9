"""One client connection to a forward server: connect, TLS, handshake, write, read acks.

Every exchange is bounded in time (``connect_timeout_secs`` for connect + TLS + handshake,
``ack_response_timeout_secs`` for acks). A connection whose acks timed out is closed, never
reused: a late ack on it could not be told apart from the next one. Third-party and socket
errors are translated into the shipper error tree here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterable

import msgpack

from outputs.forward.config import ForwardClientTls, ForwardOutputConfig, ForwardServer
from outputs.forward.request import ping
from outputs.forward.response import ack_of, check_pong, parse_helo
from shipper.errors import (
    OutputError,
    OutputPermanentError,
    OutputRetryableError,
    OutputTLSError,
    tls_verify_failure,
)

READ_BYTES = 64 * 1024
MAX_REPLY_BYTES = 1024 * 1024


def client_ssl_context(tls: ForwardClientTls) -> ssl.SSLContext:
    """The client TLS context; unreadable files are a permanent error naming the setting."""
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_file)
        if tls.cert_file and tls.key_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise OutputPermanentError(f"tls: cannot load the certificate files: {exc}") from exc
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ClientConnection:
    """An established connection (handshake done when a shared key is set)."""

    def __init__(self, server: ForwardServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.last_used = time.monotonic()
        # Fluent Bit's in_forward packs its HELO nonce and salt as msgpack str holding
        # random bytes; surrogateescape keeps them decodable and exactly recoverable.
        self._unpacker = msgpack.Unpacker(raw=False, unicode_errors="surrogateescape",
                                          max_buffer_size=MAX_REPLY_BYTES)

    @classmethod
    async def open(cls, server: ForwardServer, config: ForwardOutputConfig,
                   ssl_ctx: ssl.SSLContext | None, hostname: str) -> ClientConnection:
        """Connect and authenticate within ``connect_timeout_secs``."""
        server_name = None
        if ssl_ctx is not None:
            server_name = (config.tls.server_name if config.tls and config.tls.server_name
                           else server.host)
        try:
            async with asyncio.timeout(config.connect_timeout_secs):
                reader, writer = await asyncio.open_connection(
                    server.host, server.port, ssl=ssl_ctx, server_hostname=server_name,
                    limit=MAX_REPLY_BYTES)
                conn = cls(server, reader, writer)
                try:
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    if config.shared_key:
                        await conn._handshake(config, hostname)
                except BaseException:
                    conn.close()
                    raise
                return conn
        except TimeoutError as exc:
            raise OutputRetryableError(
                f"{server.label}: no connection within {config.connect_timeout_secs}s") from exc
        except ssl.SSLCertVerificationError as exc:  # a configuration problem: not ready
            raise OutputTLSError(f"{server.label}: {tls_verify_failure(exc)}") from exc
        except ssl.SSLError as exc:
            raise OutputRetryableError(f"{server.label}: TLS failed: {exc}") from exc
        except OSError as exc:
            raise OutputRetryableError(f"{server.label}: cannot connect: {exc}") from exc

    async def _handshake(self, config: ForwardOutputConfig, hostname: str) -> None:
        nonce, auth, _ = parse_helo(await self.read_message())
        message, salt = ping(hostname, nonce, auth, config.shared_key or "", config.username,
                             config.password)
        self.writer.write(message)
        await self.writer.drain()
        check_pong(await self.read_message(), salt, nonce, config.shared_key or "", hostname)

    async def read_message(self) -> object:
        """The next msgpack object from the server."""
        while True:
            try:
                return next(self._unpacker)
            except StopIteration:
                pass
            except (ValueError, msgpack.UnpackException) as exc:
                raise OutputRetryableError(
                    f"{self.server.label}: undecodable reply: {exc}") from exc
            data = await self.reader.read(READ_BYTES)
            if not data:
                raise OutputRetryableError(f"{self.server.label}: connection closed by server")
            try:
                self._unpacker.feed(data)
            except msgpack.BufferFull as exc:
                raise OutputRetryableError(f"{self.server.label}: reply too large") from exc

    async def write(self, data: Iterable[bytes]) -> None:
        try:
            self.writer.writelines(data)
            await self.writer.drain()
        except OSError as exc:
            raise OutputRetryableError(f"{self.server.label}: write failed: {exc}") from exc
        self.last_used = time.monotonic()

    async def read_acks(self, expected: set[str], timeout: float, acked: set[str]) -> None:
        """Add acks to ``acked`` until every expected chunk is in it; raises TimeoutError,
        OutputError (connection lost, unexpected reply) otherwise, keeping what arrived."""
        async with asyncio.timeout(timeout):
            while not expected <= acked:
                try:
                    chunk = ack_of(await self.read_message())
                except OSError as exc:
                    raise OutputRetryableError(f"{self.server.label}: {exc}") from exc
                if isinstance(chunk, bytes):
                    chunk = chunk.decode("utf-8", "replace")
                if chunk in expected:
                    acked.add(chunk)
        self.last_used = time.monotonic()

    @property
    def usable(self) -> bool:
        """Still open, nothing unread: the server has not closed it meanwhile."""
        return not (self.writer.is_closing() or self.reader.at_eof())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def probe(server: ForwardServer, config: ForwardOutputConfig,
                ssl_ctx: ssl.SSLContext | None, hostname: str) -> str | None:
    """One heartbeat: None when the server answered, else why not."""
    if config.heartbeat_type == "udp":
        return await _probe_udp(server, min(config.connect_timeout_secs,
                                            max(0.5, config.heartbeat_interval_secs)))
    try:
        conn = await ClientConnection.open(server, config, ssl_ctx, hostname)
    except OutputError as exc:
        return str(exc)
    conn.close()
    return None


class _UdpProbe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answered.done():
            self.answered.set_result(True)

    def error_received(self, exc: Exception) -> None:
        if not self.answered.done():
            self.answered.set_exception(exc)


async def _probe_udp(server: ForwardServer, timeout: float) -> str | None:
    loop = asyncio.get_running_loop()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await loop.create_datagram_endpoint(
                _UdpProbe, remote_addr=(server.host, server.port))
            transport.sendto(b"\x00")
            await protocol.answered
        return None
    except TimeoutError:
        return f"{server.label}: no UDP heartbeat answer within {timeout}s"
    except OSError as exc:
        return f"{server.label}: UDP heartbeat failed: {exc}"
    finally:
        if transport is not None:
            transport.close()
