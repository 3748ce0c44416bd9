"""The agent's small HTTP server: ``/metrics``, ``/healthz``, ``/readyz`` and ``/tap``.

It runs on the agent's own event loop, so ``/healthz`` answering at all proves the loop is
not starved or blocked. ``/healthz`` also fails (503) when an output holds data and no
delivery attempt has ended for ``stuck_after_secs``: the agent that is alive but stuck
(fluent-bit#11847) gets restarted by the kubelet, while a plain outage (attempts keep
failing) does not restart anything. ``/readyz`` says why an output is not shipping.

``/tap`` (``telemetry.tap.enabled``) streams parsed Envoy access-log records as chunked
NDJSON (``shipper.tap.http``); with ``telemetry.tap.listen`` it is served on its own
listener instead, which answers nothing else.

Deliberately tiny (GET only, one request per connection): it must never become the thing
that breaks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper.health import OutputHealth, SourceHealth
from shipper.httpwire import read_request, respond, respond_probe
from shipper.metrics import Metrics
from shipper.tap.http import serve_tap
from shipper.tap.hub import Tap

log = logging.getLogger(__name__)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class TelemetryServer:
    """Serves metrics, health and (when given a tap) the traffic tap."""

    def __init__(self, listen: str, metrics: Metrics, health: Sequence[OutputHealth],
                 before_scrape: Callable[[], None] | None = None, tap: Tap | None = None,
                 tap_listen: str = "", sources: Sequence[SourceHealth] = ()) -> None:
        self._host, self._port = parse_listen(listen)
        self._metrics = metrics
        self._health = list(health)
        self._sources = list(sources)  # storage faults of sources (not ready, no gauge)
        self._before_scrape = before_scrape
        self._tap = tap
        self._tap_address = parse_listen(tap_listen) if tap is not None and tap_listen else None
        self._server: asyncio.Server | None = None
        self._tap_server: asyncio.Server | None = None
        self._streams: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        return _bound_port(self._server, self._port)

    @property
    def tap_port(self) -> int:
        """Port serving /tap: its own listener's, or the telemetry port."""
        if self._tap_address is None:
            return self.port
        return _bound_port(self._tap_server, self._tap_address[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("telemetry listening", extra={"event": "telemetry_listening",
                                               "listen": f"{self._host}:{self.port}"})
        if self._tap_address is not None:
            host, port = self._tap_address
            self._tap_server = await asyncio.start_server(self._handle_tap_only, host, port)
        if self._tap is not None:
            host = self._tap_address[0] if self._tap_address else self._host
            log.info("tap listening", extra={"event": "tap_listening",
                                             "listen": f"{host}:{self.tap_port}"})

    async def close(self) -> None:
        if self._tap is not None:
            self._tap.close()  # every stream ends; their handlers finish on their own
        for server in (self._server, self._tap_server):
            if server is not None:
                server.close()
                await server.wait_closed()
        if self._streams:
            _, pending = await asyncio.wait(self._streams, timeout=2.0)
            for task in pending:
                task.cancel()

    def readiness_problems(self) -> list[str]:
        """Why outputs are not ready (empty when all are); also updates the ready gauges."""
        problems = []
        for h in self._health:
            p = h.problem()
            self._metrics.output_ready.labels(h.name).set(0 if p else 1)
            if p:
                problems.append(p)
        problems.extend(p for p in (s.problem() for s in self._sources) if p)
        return problems

    def liveness_problems(self) -> list[str]:
        """Outputs whose pipeline is stuck (empty when the agent is alive)."""
        return [p for p in (h.stuck() for h in self._health) if p]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, tap_only=False)

    async def _handle_tap_only(self, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter) -> None:
        await self._serve(reader, writer, tap_only=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     tap_only: bool) -> None:
        request = await read_request(reader, writer)
        if request is None:
            return
        method, path, query = request
        if path == "/tap" and method == "HEAD":
            await respond(writer, 405, b"/tap is a stream: GET it\n")
        elif path == "/tap" and self._tap is not None and (tap_only or self._tap_address is None):
            task = asyncio.current_task()
            if task is not None:
                self._streams.add(task)
            try:
                await serve_tap(self._tap, query, reader, writer, respond)
            finally:
                if task is not None:
                    self._streams.discard(task)
        elif tap_only:
            await respond(writer, 404, b"not found: this listener serves /tap only\n")
        elif path == "/metrics":
            if self._before_scrape is not None:
                self._before_scrape()
            self.readiness_problems()
            await respond(writer, 200, generate_latest(self._metrics.registry),
                          CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            await respond_probe(writer, self.liveness_problems(), b"ok\n")
        elif path == "/readyz":
            await respond_probe(writer, self.readiness_problems(), b"ready\n")
        elif path == "/tap":
            await respond(writer, 404, b"the tap is off (telemetry.tap.enabled) or on "
                                 b"its own listener (telemetry.tap.listen)\n")
        else:
            await respond(writer, 404, b"not found\n")


def _bound_port(server: asyncio.Server | None, configured: int) -> int:
    if server is None or not server.sockets:
        return configured
    return int(server.sockets[0].getsockname()[1])
