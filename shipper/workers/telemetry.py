"""The supervisor's telemetry: the configured address answers for every worker.

The DaemonSet probes ``/healthz`` and ``/readyz`` and Prometheus scrapes ``/metrics`` on
``telemetry.listen``; with ``workers: N`` the supervisor owns that address and asks each
worker on the loopback port it reported:

* ``/healthz`` is 200 only when every worker runs and its own ``/healthz`` is 200, so a
  worker that is stuck, or keeps dying, gets the pod restarted like a single agent would;
* ``/readyz`` likewise, listing each worker's reasons;
* ``/metrics`` is every worker's exposition with ``worker="<i>"`` on each sample
  (``metrics_merge``), then the supervisor's own metrics (``shipper_worker_up``,
  ``shipper_worker_restarts_total``). A worker that does not answer is left out of that
  scrape and shows ``shipper_worker_up 0``.

``/tap`` is not proxied: each worker serves it on its own port (see docs/OPERATIONS.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST

from shipper import httpwire as http
from shipper.metrics import SupervisorMetrics
from shipper.telemetry import parse_listen
from shipper.workers.metrics_merge import merge_exposition
from shipper.workers.role import LOOPBACK

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECS = 3.0


class SupervisorTelemetry:
    """Serves the node's telemetry address on behalf of the worker processes."""

    def __init__(self, listen: str, ports: Callable[[], Sequence[int | None]],
                 metrics: SupervisorMetrics) -> None:
        """``ports()``: each worker's telemetry port, by index; None while it has none."""
        self._host, self._port = parse_listen(listen)
        self._ports = ports
        self._metrics = metrics
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

    async def ask_all(self, path: str) -> list[tuple[int, int, bytes] | str]:
        """Each worker's answer to ``path``: (index, status, body), or why there is none."""
        async def one(index: int, port: int | None) -> tuple[int, int, bytes] | str:
            if port is None:
                return f"worker {index}: not running"
            try:
                status, body = await http.get(LOOPBACK, port, path, PROBE_TIMEOUT_SECS)
            except (OSError, TimeoutError) as exc:
                return f"worker {index}: no answer on {path} ({exc or type(exc).__name__})"
            return index, status, body

        ports = list(self._ports())
        return list(await asyncio.gather(*(one(i, p) for i, p in enumerate(ports))))

    async def probe(self, path: str) -> list[str]:
        """Problems of ``/healthz`` or ``/readyz`` over all workers (empty: all fine)."""
        problems = []
        for answer in await self.ask_all(path):
            if isinstance(answer, str):
                problems.append(answer)
            elif answer[1] != 200:
                index, _, body = answer
                for line in body.decode("utf-8", "replace").splitlines() or ["failed"]:
                    problems.append(f"worker {index}: {line}")
        return problems

    async def scrape(self) -> bytes:
        texts: dict[int, str] = {}
        answers = await self.ask_all("/metrics")
        for index, answer in enumerate(answers):
            ok = not isinstance(answer, str) and answer[1] == 200
            self._metrics.worker_up.labels(str(index)).set(1 if ok else 0)
            if not isinstance(answer, str) and ok:
                texts[index] = answer[2].decode("utf-8", "replace")
        return merge_exposition(texts, self._metrics.registry.collect())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await http.read_request(reader, writer)
        if request is None:
            return
        _, path, _ = request
        if path == "/metrics":
            await http.respond(writer, 200, await self.scrape(), CONTENT_TYPE_LATEST)
        elif path in ("/healthz", "/readyz"):
            await http.respond_probe(writer, await self.probe(path),
                                     b"ok\n" if path == "/healthz" else b"ready\n")
        elif path == "/tap":
            await http.respond(writer, 404, b"with workers > 1 each worker serves /tap on its "
                                            b"own loopback port (telemetry.json in its state "
                                            b"directory)\n")
        else:
            await http.respond(writer, 404, b"not found\n")
