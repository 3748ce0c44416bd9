"""The few bytes of HTTP the telemetry endpoints need: serve GET, and GET from a worker.

Deliberately tiny (GET only, one request per connection, bounded reads): the endpoints the
kubelet and Prometheus probe must never be the thing that breaks. Used by the agent's
telemetry server and by the ``workers: N`` supervisor, which also reads its workers'.
"""

from __future__ import annotations

import asyncio
import contextlib

MAX_REQUEST_BYTES = 8192
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # a worker's /metrics is far smaller
READ_TIMEOUT_SECS = 5.0
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}


async def read_request(reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> tuple[str, str, str] | None:
    """(method, path, query) of one GET or HEAD request. None when there is nothing to serve:
    the connection is then already answered (too large, not GET) or closed (nothing usable)."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECS)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
            ConnectionError):
        writer.close()
        return None
    if len(head) > MAX_REQUEST_BYTES:
        await respond(writer, 431, b"request too large\n")
        return None
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
        await respond(writer, 405, b"only GET\n")
        return None
    path, _, query = parts[1].partition("?")
    return parts[0], path, query


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes,
                  content_type: str = "text/plain; charset=utf-8") -> None:
    head = (f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        writer.write(head + body)
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def get(host: str, port: int, path: str,
              timeout_secs: float = READ_TIMEOUT_SECS) -> tuple[int, bytes]:
    """GET ``path`` from ``host:port``; (status, body). Raises OSError or TimeoutError when
    the worker does not answer in time."""
    async with asyncio.timeout(timeout_secs):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
            data = await reader.read(MAX_RESPONSE_BYTES + 1)
            while len(data) <= MAX_RESPONSE_BYTES:
                more = await reader.read(MAX_RESPONSE_BYTES + 1 - len(data))
                if not more:
                    break
                data += more
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    head, sep, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if not sep or len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"malformed answer from {host}:{port}{path}")
    if len(data) > MAX_RESPONSE_BYTES:
        raise OSError(f"answer from {host}:{port}{path} is larger than {MAX_RESPONSE_BYTES}")
    return int(status_line[1]), body


async def respond_probe(writer: asyncio.StreamWriter, problems: list[str], ok: bytes) -> None:
    """A health probe's answer: 200 with ``ok``, or 503 listing the problems."""
    if problems:
        await respond(writer, 503, ("\n".join(problems) + "\n").encode())
    else:
        await respond(writer, 200, ok)
