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


async def read_request_path(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(method, path without query) of one request; None when the client sent nothing usable."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECS)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
            ConnectionError):
        return None
    if len(head) > MAX_REQUEST_BYTES:
        return None
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) < 2:
        return None
    return parts[0], parts[1].partition("?")[0]


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
