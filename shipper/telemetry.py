"""The agent's small HTTP server: ``/metrics`` (Prometheus text), ``/healthz``, ``/readyz``.

It runs on the agent's own event loop, so ``/healthz`` answering proves the loop is not
starved or stuck. ``/readyz`` asks every output's health and says why it is not ready.
Deliberately tiny (GET only, one request per connection): it must never become the thing
that breaks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper.health import OutputHealth
from shipper.metrics import Metrics

log = logging.getLogger(__name__)

_MAX_REQUEST_BYTES = 8192
_READ_TIMEOUT_SECS = 5.0


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class TelemetryServer:
    """Serves metrics and health on ``telemetry.listen``."""

    def __init__(self, listen: str, metrics: Metrics, health: Sequence[OutputHealth],
                 before_scrape: Callable[[], None] | None = None) -> None:
        self._host, self._port = parse_listen(listen)
        self._metrics = metrics
        self._health = list(health)
        self._before_scrape = before_scrape
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("telemetry listening", extra={"event": "telemetry_listening",
                                               "listen": f"{self._host}:{self.port}"})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def readiness_problems(self) -> list[str]:
        problems = []
        for h in self._health:
            p = h.problem()
            if p:
                problems.append(p)
        return problems

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_SECS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            writer.close()
            return
        if len(head) > _MAX_REQUEST_BYTES:
            await self._respond(writer, 431, b"request too large\n")
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
            await self._respond(writer, 405, b"only GET\n")
            return
        path = parts[1].split("?", 1)[0]
        if path == "/metrics":
            if self._before_scrape is not None:
                self._before_scrape()
            await self._respond(writer, 200, generate_latest(self._metrics.registry),
                                CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            await self._respond(writer, 200, b"ok\n")
        elif path == "/readyz":
            problems = self.readiness_problems()
            if problems:
                await self._respond(writer, 503, ("\n".join(problems) + "\n").encode())
            else:
                await self._respond(writer, 200, b"ready\n")
        else:
            await self._respond(writer, 404, b"not found\n")

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes,
                       content_type: str = "text/plain; charset=utf-8") -> None:
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
                  431: "Request Header Fields Too Large", 503: "Service Unavailable"}[status]
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        try:
            writer.write(head + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
