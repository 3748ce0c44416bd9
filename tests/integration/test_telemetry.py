import asyncio
import urllib.request

import pytest

from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.telemetry import TelemetryServer, parse_listen


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
async def server():
    metrics = Metrics()
    backlog = {"value": False}
    clock = {"now": 1000.0}
    health = OutputHealth("es", 30, has_backlog=lambda: backlog["value"],
                          clock=lambda: clock["now"])
    srv = TelemetryServer("127.0.0.1:0", metrics, [health])
    await srv.start()
    yield srv, metrics, health, backlog, clock
    await srv.close()


async def fetch(srv, path):
    return await asyncio.to_thread(get, f"http://127.0.0.1:{srv.port}{path}")


async def test_metrics_are_prometheus_text(server):
    srv, metrics, *_ = server
    metrics.records_read.labels("containers").inc(3)
    status, body = await fetch(srv, "/metrics")
    assert status == 200
    assert 'shipper_records_read_total{source="containers"} 3.0' in body


async def test_healthz_answers_from_the_event_loop(server):
    srv, *_ = server
    assert await fetch(srv, "/healthz") == (200, "ok\n")


async def test_readyz_turns_red_when_data_is_stuck(server):
    srv, _, health, backlog, clock = server
    assert (await fetch(srv, "/readyz"))[0] == 200
    backlog["value"] = True
    clock["now"] += 31
    health.record_failure("HTTP 503")
    status, body = await fetch(srv, "/readyz")
    assert status == 503
    assert "output es: no delivery for 31s with data buffered: HTTP 503" in body
    health.record_success()
    assert (await fetch(srv, "/readyz"))[0] == 200


async def test_readyz_reports_rejected_credentials(server):
    srv, _, health, *_ = server
    health.record_failure("HTTP 401", credentials_rejected=True)
    status, body = await fetch(srv, "/readyz")
    assert status == 503 and "credentials rejected" in body


async def test_unknown_path_is_404(server):
    srv, *_ = server
    assert (await fetch(srv, "/nope"))[0] == 404


def test_parse_listen_forms():
    assert parse_listen("127.0.0.1:24231") == ("127.0.0.1", 24231)
    assert parse_listen("[::1]:9") == ("::1", 9)
    assert parse_listen(":9") == ("0.0.0.0", 9)
