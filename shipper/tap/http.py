"""``GET /tap?...``: one subscriber's stream as chunked NDJSON, until the client goes away.

Chunked transfer encoding (not "read until close") so that proxies on the way, the API
server's pod proxy among them, pass each batch on as it comes. Every ``KEEPALIVE_SECS``
without records an empty line is sent: readers skip it, and writing it is what notices a
client that vanished without closing.

What one stream can cost the agent is bounded: its queue (``queue_records`` events), the
transport's write buffer and a small kernel send buffer. A client that reads nothing for
``STALLED_SECS`` is disconnected so its slot is not held forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

import orjson

from shipper.tap.hub import Tap, TapFull
from shipper.tap.query import TapQuery

log = logging.getLogger(__name__)

KEEPALIVE_SECS = 15.0
STALLED_SECS = 60.0
SEND_BUFFER_BYTES = 64 * 1024
MAX_BATCH = 500

Respond = Callable[[asyncio.StreamWriter, int, bytes], Awaitable[None]]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve_tap(tap: Tap, query_string: str, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, respond: Respond) -> None:
    """Stream matching records to this connection; ``respond`` answers errors."""
    try:
        query = TapQuery.parse(query_string)
    except ValueError as exc:
        await respond(writer, 400, f"{exc}\n".encode())
        return
    try:
        sub = tap.subscribe(query)
    except TapFull as exc:
        await respond(writer, 503, f"{exc}\n".encode())
        return
    _limit_buffers(writer)
    peer = writer.get_extra_info("peername")
    log.info("tap stream opened", extra={"event": "tap_opened", "peer": str(peer),
                                         "query": query_string})
    eof = asyncio.ensure_future(reader.read(1))  # the client never sends a body: data = gone
    eof.add_done_callback(lambda _: sub.close())
    sent = 0
    try:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n"
                     b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n")
        await asyncio.wait_for(writer.drain(), STALLED_SECS)
        while True:
            events = await sub.take(KEEPALIVE_SECS, MAX_BATCH)
            if events is None:
                break
            data = b"".join(orjson.dumps(e) + b"\n" for e in events) if events else b"\n"
            writer.write(_chunk(data))
            await asyncio.wait_for(writer.drain(), STALLED_SECS)
            if events:
                sent += len(events)
                tap.sent(len(events))
        if not writer.is_closing():
            writer.write(b"0\r\n\r\n")
            await asyncio.wait_for(writer.drain(), 1.0)
    except (ConnectionError, TimeoutError, OSError):
        pass
    finally:
        tap.unsubscribe(sub)
        eof.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        log.info("tap stream closed", extra={"event": "tap_closed", "peer": str(peer),
                                             "sent": sent, "dropped": sub.dropped})


def _limit_buffers(writer: asyncio.StreamWriter) -> None:
    """Keep what a slow reader can pin small: the queue is the buffer, not the socket."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    transport = writer.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=SEND_BUFFER_BYTES)
