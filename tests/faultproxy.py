"""A fault-injecting TCP proxy on loopback, for outage tests against a real server.

It forwards to the real Elasticsearch in mode ``pass`` and produces, on demand, the faults a
healthy server will not: ``refuse`` (nothing listens: connection refused), ``reset`` (the
connection is accepted, then reset), ``hang`` (accepted, the request read, never answered),
``http:<status>`` (every request answered with that status, e.g. a 429 storm or 503s,
with an Elasticsearch-shaped error body), and ``slow:<secs>`` (forwarded, every answer held
back that long: a server that keeps up with less than the ingest rate). Every switch aborts
the connections in flight, so keep-alive connections meet the new mode at once.

It runs its own event loop in a daemon thread, so both in-process agents and agents started
as subprocesses can be pointed at it. ``seen`` counts the connections accepted per mode, so
a test can wait until the agent really met a fault instead of sleeping for a guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from typing import Any

_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}
_ERROR_TYPES = {429: "es_rejected_execution_exception", 503: "unavailable_shards_exception"}
_MAX_REQUEST_BYTES = 64 * 1024 * 1024


class FaultProxy:
    """``127.0.0.1:<port>`` → ``target``; switch faults with ``set_mode``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode = "pass"
        self.seen: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="faultproxy")
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()

    # -- control (any thread) -------------------------------------------------------------

    def start(self) -> int:
        self._thread.start()
        self._call(self._listen())
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        if mode not in ("pass", "refuse", "reset", "hang") and not mode.startswith(
                ("http:", "slow:")):
            raise ValueError(f"unknown mode {mode!r}")
        self._call(self._switch(mode))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # -- loop side ------------------------------------------------------------------------

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: str) -> None:
        self.mode = mode
        for writer in list(self._conns):
            _abort(writer)
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        for writer in list(self._conns):
            _abort(writer)
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      ) -> None:
        mode = self.mode
        self.seen[mode] += 1
        self._conns.add(writer)
        try:
            if mode == "pass":
                await self._pipe(reader, writer)
            elif mode.startswith("slow:"):
                await self._pipe(reader, writer, float(mode[5:]))
            elif mode == "reset":
                _abort(writer)
            elif mode == "hang":
                while await reader.read(65536):
                    pass
            elif mode.startswith("http:"):
                await self._answer(reader, writer, int(mode[5:]))
            else:  # refused while the listener was closing
                _abort(writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self._conns.discard(writer)
            if not writer.is_closing():
                writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    delay: float = 0.0) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._conns.add(up_writer)
        try:
            await asyncio.gather(_copy(reader, up_writer), _copy(up_reader, writer, delay))
        finally:
            self._conns.discard(up_writer)
            up_writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      status: int) -> None:
        """Read whole requests (so closing never resets unread data) and refuse each."""
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length > _MAX_REQUEST_BYTES:
                raise ValueError("request too large")
            await reader.readexactly(length)
            kind = _ERROR_TYPES.get(status, "proxy_fault")
            body = (f'{{"error":{{"root_cause":[],"type":"{kind}","reason":"injected {status}"}},'
                    f'"status":{status}}}').encode()
            reason = _REASONS.get(status, "Error")
            writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                         f"retry-after: 0\r\ncontent-length: {len(body)}\r\n\r\n".encode()
                         + body)
            await writer.drain()
            if self.mode != f"http:{status}":
                return


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: float = 0.0) -> None:
    try:
        while data := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    finally:
        if not writer.is_closing():
            writer.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset', not a clean EOF."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
