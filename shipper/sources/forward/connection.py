"""One client connection of the forward server (spec §1.1, §1.5-§1.8).

The loop is: (handshake) → read → frame → decode → ``await emit`` per batch → read again.
Awaiting ``emit`` before the next read is the backpressure: while the buffers are full this
connection's socket is not read, the kernel window fills and the client slows down.

A request with a ``chunk`` id is acknowledged once every batch made from it is safe (the
pipeline resolves their ack groups); a parent ``AckGroup`` fans the batches in. A request that
failed half-way (malformed tail, connection lost, shutdown) is never acknowledged, so the
client resends it, and the deterministic document ids absorb what had already been emitted.

Hostile clients cost bounded time and memory: a frame must arrive within
``frame_timeout_secs`` of waiting for its bytes (time spent emitting does not count, so
backpressure never trips it), replies a client does not read are capped, a chunk id the ack
could not echo is refused up front, and any unexpected error closes this connection only
(counted as ``internal_error``), never the server.

Acks may be due after the client stopped sending, after the source stopped reading, or after
malformed bytes followed good requests: the connection then *lingers* (socket open, no reads)
until its last ack is written or the source closes, so a client waiting for acks during a
graceful shutdown still gets them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson

from shipper.acks import AckGroup
from shipper.errors import InputProtocolError
from shipper.metrics import Metrics
from shipper.protocols import Emit
from shipper.record import Batch
from shipper.sources.forward.config import ForwardConfig
from shipper.sources.forward.decoder import (
    check_chunk,
    forward_shape,
    parse_request,
    split_forward,
    unpack_frame,
)
from shipper.sources.forward.events import EventConverter
from shipper.sources.forward.framing import JsonFramer, MsgpackFramer
from shipper.sources.forward.handshake import ServerHandshake

log = logging.getLogger(__name__)

READ_BYTES = 64 * 1024
MAX_PING_BYTES = 64 * 1024
# A client that stops reading its acks must not make us buffer without bound: an ack is a few
# dozen bytes, so this is thousands of acks the client never read.
MAX_UNREAD_REPLY_BYTES = 256 * 1024
# How long a closed connection may still try to send its last replies.
CLOSE_GRACE_SECS = 10.0
_JSON_START = frozenset(b"{[")
# PackedForward payloads larger than this are inflated and checked on a worker thread.
OFFLOAD_BYTES = 256 * 1024  # and gzip payloads above 1 KiB (they inflate to much more)
_GZIP = ("gzip", b"gzip")


class _Idle(Exception):
    """Nothing was received for idle_timeout_secs and no ack is due."""


class _SlowFrame(Exception):
    """A started frame (or the handshake) did not complete within frame_timeout_secs."""


@dataclass
class ServerContext:
    """What every connection of one source shares."""

    name: str
    config: ForwardConfig
    metrics: Metrics
    emit: Emit
    loop: asyncio.AbstractEventLoop
    warn: Callable[..., None]  # rate-limited warning: (event, message, **fields)
    linger: Callable[[Connection], None]
    done: Callable[[Connection], None]
    hostname_of: Callable[[str, int], Any]  # coroutine factory: ip, port -> hostname
    stopping: bool = False
    loop_thread: int = field(default_factory=threading.get_ident)


class Connection:
    """Serves one accepted socket until EOF, error, idle timeout or shutdown."""

    def __init__(self, ctx: ServerContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("", 0)
        self.peer_ip: str = str(peer[0])
        self.peer_port: int = int(peer[1]) if len(peer) > 1 else 0
        self.pending_acks = 0
        self.reading = False
        self.lingering = False
        self.task: asyncio.Task[None] | None = None
        self._json = False
        self._closed = False
        self._partial_waited = 0.0  # seconds spent waiting for the rest of a started frame
        self.last_request = ctx.loop.time()  # when the last complete request arrived
        self._evicted = False
        m = ctx.metrics
        self._m_records = m.records_read.labels(ctx.name)
        self._m_bytes = m.bytes_read.labels(ctx.name)
        self._m_acks = m.forward_acks.labels(ctx.name)

    # -- lifecycle ------------------------------------------------------------------------

    async def serve(self) -> None:
        self.task = asyncio.current_task()
        ctx = self.ctx
        reason = ""
        try:
            converter = await self._converter()
            framer: MsgpackFramer | JsonFramer | None = None
            if ctx.config.security is not None:
                secured = MsgpackFramer(ctx.config.max_frame_bytes)
                framer = secured
                backlog = await self._handshake(secured)
                if backlog is None:
                    reason = "auth_failed"
                    return
                await self._handle_all(backlog, converter)
            await self._read_loop(framer, converter)
        except InputProtocolError as exc:
            reason = exc.reason
            ctx.warn("forward_malformed_input", f"closing the connection: {exc}",
                     peer=self.peer_ip, reason=exc.reason)
        except _Idle:
            reason = "idle"
        except _SlowFrame:
            reason = "slow_frame"
            ctx.warn("forward_slow_frame", "closing a connection whose request did not complete "
                     f"within frame_timeout_secs ({ctx.config.frame_timeout_secs})",
                     peer=self.peer_ip)
        except (ConnectionError, TimeoutError):
            reason = "peer"
        except OSError as exc:  # TLS errors are OSErrors too
            reason = "peer"
            log.debug("forward connection error: %s", exc, extra={"event": "forward_conn_error"})
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        except Exception as exc:  # a bug must cost this connection, never the server
            reason = "internal_error"
            ctx.warn("forward_internal_error", f"closing the connection after an unexpected "
                     f"error: {exc!r}", peer=self.peer_ip)
            log.debug("forward connection failed", exc_info=True,
                      extra={"event": "forward_internal_error"})
        finally:
            self.reading = False
            if self._evicted:
                reason = "evicted"
            if reason and reason not in ("peer", "shutdown"):
                ctx.metrics.forward_connections_closed.labels(ctx.name, reason).inc()
            if self.pending_acks <= 0 or reason == "peer":
                self.close()
            else:
                self.lingering = True
                ctx.linger(self)
            ctx.done(self)

    def evictable_since(self) -> float | None:
        """Since when this connection has sent no complete request while the server waits
        on it, or None when it must not be closed for a newcomer (acks owed, emitting)."""
        if self.lingering or self.pending_acks > 0 or not self.reading or self._closed:
            return None
        return self.last_request

    def evict(self) -> None:
        """Make room for a new client: drop this connection (counted as ``evicted``)."""
        self._evicted = True
        self.close(abort=True)

    def stop_reading(self) -> None:
        """Shutdown: interrupt a read in progress; an emit in progress finishes first."""
        if self.reading and self.task is not None and not self.lingering:
            self.task.cancel()

    def close(self, abort: bool = False) -> None:
        """Close the socket once what was written is sent; ``abort`` drops it at once.

        A transport closes only after its write buffer drained, so a client that never
        reads would keep the socket and its buffer forever: an unsent buffer is dropped
        after ``CLOSE_GRACE_SECS``."""
        if self._closed:
            return
        self._closed = True
        transport = self.writer.transport
        with contextlib.suppress(Exception):
            if abort:
                transport.abort()
                return
            self.writer.close()
            if transport.get_write_buffer_size() > 0:
                self.ctx.loop.call_later(CLOSE_GRACE_SECS, transport.abort)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- reading --------------------------------------------------------------------------

    async def _read(self, partial: bool) -> bytes:
        """The next bytes. ``partial``: a frame has started, so the wait counts towards
        ``frame_timeout_secs``; otherwise only ``idle_timeout_secs`` applies (a client idle
        between complete requests is normal, and one owing acks is never idle)."""
        cfg = self.ctx.config
        loop = self.ctx.loop
        self.reading = True
        try:
            while True:
                if self.ctx.stopping:
                    return b""
                budget = cfg.idle_timeout_secs
                if partial:
                    budget = min(budget, cfg.frame_timeout_secs - self._partial_waited)
                started = loop.time()
                try:
                    async with asyncio.timeout(max(budget, 0.0)):
                        return await self.reader.read(READ_BYTES)
                except TimeoutError:
                    if partial and self._partial_waited + (loop.time() - started) \
                            >= cfg.frame_timeout_secs:
                        raise _SlowFrame() from None
                    if self.pending_acks == 0:
                        raise _Idle() from None
                finally:
                    if partial:
                        self._partial_waited += loop.time() - started
        finally:
            self.reading = False

    async def _read_loop(self, framer: MsgpackFramer | JsonFramer | None,
                         converter: EventConverter) -> None:
        ctx = self.ctx
        while not ctx.stopping:
            data = await self._read(framer is not None and framer.buffered > 0)
            if not data:
                return
            self._m_bytes.inc(len(data))
            if framer is None:
                self._json = data[0] in _JSON_START
                framer = (JsonFramer(ctx.config.max_frame_bytes) if self._json
                          else MsgpackFramer(ctx.config.max_frame_bytes))
            if isinstance(framer, JsonFramer):
                values = framer.feed(data)
                if values:
                    self.last_request = ctx.loop.time()
                if values or not framer.buffered:
                    self._partial_waited = 0.0  # the next frame's clock starts now
                await self._handle_all(values, converter)
            else:
                frames = framer.feed(data)
                if frames:
                    self.last_request = ctx.loop.time()
                if frames or not framer.buffered:
                    self._partial_waited = 0.0
                await self._handle_all(frames, converter)
            if framer.failed is not None:
                raise framer.failed
        if framer is not None and framer.buffered and not ctx.stopping:
            raise InputProtocolError("malformed", "the connection ended inside a request")

    async def _handle_all(self, items: list[bytes] | list[tuple[Any, bytes]],
                          converter: EventConverter) -> None:
        """Handle the requests of one read, emptying ``items`` as it goes: a connection
        waiting for its next read keeps no request (some are megabytes) alive."""
        items.reverse()
        while items:
            item = items.pop()
            if isinstance(item, tuple):
                await self._handle(item[0], item[1], converter)
            else:
                await self._handle(await self._unpack(item), item, converter)

    async def _unpack(self, frame: bytes) -> Any:
        """Decode a frame. A Forward-mode frame that could hold more values than one event
        may gets the PackedForward treatment (``split_forward``: bounds per event, lazy
        decode in slices); work on large frames runs on a worker thread, where the event
        loop gets its turns between entries and containers."""
        cfg = self.ctx.config
        message: Any = None
        if len(frame) > cfg.max_values_per_record and forward_shape(frame) is not None:
            args = (frame, cfg.max_values_per_record, cfg.max_frame_bytes,
                    cfg.max_values_per_request)
            message = (await asyncio.to_thread(split_forward, *args)
                       if len(frame) > OFFLOAD_BYTES else split_forward(*args))
        if message is not None:
            return message
        if len(frame) > cfg.max_values_per_request:
            # The counted decode of a large frame runs Python at each container it closes.
            return await asyncio.to_thread(unpack_frame, frame, cfg.max_values_per_request)
        return unpack_frame(frame, cfg.max_values_per_request)

    async def _handshake(self, framer: MsgpackFramer) -> list[bytes] | None:
        """HELO, then the client's PING; returns frames that followed the PING, or None
        when the client was refused (PONG false already written)."""
        security = self.ctx.config.security
        assert security is not None
        handshake = ServerHandshake(security, self.peer_ip)
        self.writer.write(handshake.helo())
        frames: list[bytes] = []
        while not frames:
            data = await self._read(True)  # HELO is sent: the PING is due
            if not data:
                raise ConnectionResetError("closed during the handshake")
            if framer.buffered + len(data) > MAX_PING_BYTES:
                raise InputProtocolError("malformed", "PING too large")
            frames = framer.feed(data)
        self._partial_waited = 0.0
        result = handshake.check_ping(unpack_frame(frames[0]))
        self.writer.write(result.reply)
        if not result.ok:
            self.ctx.warn("forward_auth_failed", f"handshake refused: {result.reason}",
                          peer=self.peer_ip)
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.writer.drain()
            return None
        return frames[1:]

    # -- requests -------------------------------------------------------------------------

    async def _converter(self) -> EventConverter:
        cfg = self.ctx.config
        extra: dict[str, str] = {}
        if cfg.source_address_key:
            extra[cfg.source_address_key] = self.peer_ip
        if cfg.source_hostname_key:
            extra[cfg.source_hostname_key] = await self.ctx.hostname_of(
                self.peer_ip, self.peer_port)
        return EventConverter(cfg.tag, cfg.add_tag_prefix, extra, id_key=cfg.id_key,
                              tag_key=cfg.tag_key,
                              max_depth=cfg.max_nesting_depth)

    async def _handle(self, message: Any, raw: bytes, converter: EventConverter) -> None:
        ctx = self.ctx
        if message is None:
            return  # heartbeat / no-op
        if not isinstance(message, list):
            ctx.metrics.forward_events_skipped.labels(ctx.name, "not_a_request").inc()
            ctx.warn("forward_broken_request", "ignored a request that is not an array",
                     peer=self.peer_ip)
            return
        cfg = ctx.config
        second = message[1] if len(message) > 1 else None
        option = message[2] if len(message) > 2 else None
        if isinstance(second, bytes | str) and (
                len(second) > OFFLOAD_BYTES or (len(second) > 1024 and type(option) is dict
                                                and option.get("compressed") in _GZIP)):
            # Inflating (zlib lets go of the GIL) and checking a large PackedForward payload
            # take up to a second at max_decompressed_bytes: off the event loop, so the
            # other connections keep being served and acked meanwhile.
            request = await asyncio.to_thread(
                parse_request, message, raw, cfg.max_decompressed_bytes,
                cfg.max_values_per_record, cfg.max_frame_bytes)
        else:
            request = parse_request(message, raw, cfg.max_decompressed_bytes,
                                    cfg.max_values_per_record, cfg.max_frame_bytes)
        chunk = request.chunk
        parent: AckGroup | None = None
        if chunk is not None:
            check_chunk(chunk, self._json)
            self.pending_acks += 1
            parent = AckGroup(on_safe=functools.partial(self._on_request_safe, chunk))
        try:
            for records in converter.batches(request, ctx.config.max_batch_records):
                if not records:  # a slice of skipped events: let other connections run
                    await asyncio.sleep(0)
                    continue
                group = None
                if parent is not None:
                    parent.hold()
                    # urgent: the client sends nothing more until this ack (fluent-bit,
                    # fluent-logger with acks), so the buffers must not sit on it.
                    group = AckGroup(on_safe=functools.partial(self._on_batch_safe, parent),
                                     urgent=True)
                self._m_records.inc(len(records))
                await ctx.emit(Batch(records, group, source=ctx.name))
        except BaseException:
            if parent is not None:
                self.pending_acks -= 1  # never sealed: no ack for a request cut short
            raise
        finally:
            self._flush_counters(converter)
        if parent is not None:
            parent.seal()

    def _flush_counters(self, converter: EventConverter) -> None:
        ctx = self.ctx
        for reason, n in converter.skipped.items():
            ctx.metrics.forward_events_skipped.labels(ctx.name, reason).inc(n)
        for flag, n in converter.flagged.items():
            ctx.metrics.records_flagged.labels(ctx.name, flag).inc(n)
        converter.skipped.clear()
        converter.flagged.clear()

    # -- acks (may be called from another thread by a disk buffer) ------------------------

    def _on_request_safe(self, chunk: Any, _group: AckGroup) -> None:
        self._acked(chunk)

    def _on_batch_safe(self, parent: AckGroup, _group: AckGroup) -> None:
        self._release(parent)

    def _release(self, parent: AckGroup) -> None:
        if threading.get_ident() != self.ctx.loop_thread:
            self.ctx.loop.call_soon_threadsafe(parent.release)
        else:
            parent.release()

    def _acked(self, chunk: Any) -> None:
        if threading.get_ident() != self.ctx.loop_thread:
            self.ctx.loop.call_soon_threadsafe(self._acked, chunk)
            return
        self.pending_acks -= 1
        if not self._closed and not self.writer.is_closing():
            transport = self.writer.transport
            if transport.get_write_buffer_size() > MAX_UNREAD_REPLY_BYTES:
                self.ctx.warn("forward_acks_unread", "client does not read its acks; closing",
                              peer=self.peer_ip)
                self.ctx.metrics.forward_connections_closed.labels(
                    self.ctx.name, "acks_unread").inc()
                self.close(abort=True)
            else:
                try:
                    ack = self._ack_bytes(chunk)
                except (TypeError, ValueError, OverflowError) as exc:
                    # check_chunk refuses such ids before their events are emitted; this
                    # keeps a missed case from reaching whoever made the events safe.
                    self.ctx.warn("forward_malformed_input", f"cannot acknowledge: {exc}",
                                  peer=self.peer_ip, reason="invalid_chunk")
                    self.ctx.metrics.forward_connections_closed.labels(
                        self.ctx.name, "invalid_chunk").inc()
                    self.close()
                else:
                    self.writer.write(ack)
                    self._m_acks.inc()
        if self.lingering and self.pending_acks <= 0:
            self.close()

    def _ack_bytes(self, chunk: Any) -> bytes:
        return ack_bytes(chunk, self._json)


def ack_bytes(chunk: Any, json_mode: bool) -> bytes:
    """The ack of a chunk id that passed ``check_chunk`` (JSON for the JSON variant)."""
    if json_mode:
        return orjson.dumps({"ack": chunk})
    # Echo the chunk byte for byte (Fluentd's ends in "\n"; clients compare exactly).
    return msgpack.packb({"ack": chunk}, use_bin_type=True, unicode_errors="surrogateescape")
