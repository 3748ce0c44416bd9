"""The telemetry server over real sockets: metrics, readiness, liveness and the /tap stream.

Readiness and liveness are driven by a fake output (a stall or a hung request cannot be made
on a real server on demand) through the real buffer, delivery and HTTP server; time is an
injected clock, so no test waits for a timeout to pass.
"""

import asyncio
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence

import orjson
import pytest

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import MemoryBuffer
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.protocols import Outcome, Status
from shipper.retry import Backoff
from shipper.tap.config import TapConfig
from shipper.tap.hub import Tap
from shipper.telemetry import TelemetryServer, parse_listen
from tests.unit.tap.traffic import GATEWAY, ORDERS, Call, call_records


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
async def server():
    metrics = Metrics()
    backlog = {"value": False}
    clock = Clock()
    health = OutputHealth("es", 30, has_backlog=lambda: backlog["value"], clock=clock,
                          stuck_after_secs=600)
    srv = TelemetryServer("127.0.0.1:0", metrics, [health])
    await srv.start()
    yield srv, metrics, health, backlog, clock
    await srv.close()


async def fetch(srv, path, port=None):
    return await asyncio.to_thread(get, f"http://127.0.0.1:{port or srv.port}{path}")


async def until(condition, what, rounds=500):
    """Wait (bounded) for a condition the code under test makes true."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_metrics_are_prometheus_text(server):
    srv, metrics, *_ = server
    metrics.records_read.labels("containers").inc(3)
    status, body = await fetch(srv, "/metrics")
    assert status == 200
    assert 'shipper_records_read_total{source="containers"} 3.0' in body
    assert 'shipper_output_ready{output="es"} 1.0' in body


async def test_healthz_answers_from_the_event_loop(server):
    srv, *_ = server
    assert await fetch(srv, "/healthz") == (200, "ok\n")


async def test_readyz_turns_red_when_data_is_stuck(server):
    srv, _, health, backlog, clock = server
    assert (await fetch(srv, "/readyz"))[0] == 200
    backlog["value"] = True
    clock.now += 31
    health.record_failure("HTTP 503")
    status, body = await fetch(srv, "/readyz")
    assert status == 503
    assert "output es: no delivery for 31s with data buffered: HTTP 503" in body
    assert 'shipper_output_ready{output="es"} 0.0' in (await fetch(srv, "/metrics"))[1]
    health.record_success()
    assert (await fetch(srv, "/readyz"))[0] == 200


async def test_readyz_reports_rejected_credentials(server):
    srv, _, health, *_ = server
    health.record_failure("HTTP 401", credentials_rejected=True)
    status, body = await fetch(srv, "/readyz")
    assert status == 503 and "credentials rejected" in body


async def test_an_outage_keeps_the_agent_alive_a_stuck_pipeline_does_not(server):
    srv, _, health, backlog, clock = server
    backlog["value"] = True
    for _ in range(20):  # an hour and a half of failing attempts: not ready, but alive
        clock.now += 300
        health.record_failure("HTTP 503")
    assert (await fetch(srv, "/readyz"))[0] == 503
    assert await fetch(srv, "/healthz") == (200, "ok\n")
    clock.now += 601  # then no attempt ends at all
    status, body = await fetch(srv, "/healthz")
    assert status == 503
    assert "output es: no delivery attempt for 601s with data buffered" in body
    backlog["value"] = False  # nothing waiting: nothing can be stuck
    assert (await fetch(srv, "/healthz"))[0] == 200


def test_stall_durations_are_capped_by_the_age_of_the_buffered_data():
    clock = Clock()
    age = {"value": 0.0}
    health = OutputHealth("es", 30, clock=clock, backlog_age=lambda: age["value"],
                          stuck_after_secs=60)
    clock.now += 3600  # idle for an hour, then a line arrives
    age["value"] = 2.0
    assert health.problem() is None and health.stuck() is None
    age["value"] = 61.0
    assert health.problem() is not None and health.stuck() is not None
    assert OutputHealth("es", 30, clock=clock, backlog_age=lambda: math.inf).stuck() is None


async def test_unknown_path_is_404(server):
    srv, *_ = server
    assert (await fetch(srv, "/nope"))[0] == 404
    status, body = await fetch(srv, "/tap")
    assert status == 404 and "telemetry.tap.enabled" in body


def test_parse_listen_forms():
    assert parse_listen("127.0.0.1:24231") == ("127.0.0.1", 24231)
    assert parse_listen("[::1]:9") == ("::1", 9)
    assert parse_listen(":9") == ("0.0.0.0", 9)


# -- readiness and liveness driven by a fake output through real delivery ------------------

class SwitchableOutput:
    """Delivers, answers 503, or hangs without answering, as the test says."""

    name = "es"

    def __init__(self):
        self.mode = "ok"
        self.attempts = 0
        self.release = asyncio.Event()

    def encode(self, records):
        return [orjson.dumps(r) for r in records]

    async def start(self):
        return None

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        self.attempts += 1
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "down":
            return Outcome.all(len(payloads), Status.RETRY, http_status=503)
        return Outcome.all(len(payloads), Status.DELIVERED, http_status=200)

    def describe(self, payload):
        return {}

    async def close(self):
        return None


@pytest.fixture
async def agentlike(tmp_path):
    metrics = Metrics()
    clock = Clock()
    config = BufferConfig(flush_interval_secs=0.01)
    buffer = MemoryBuffer("es", config, metrics)
    output = SwitchableOutput()
    health = OutputHealth("es", 300, clock=clock, backlog_age=lambda: math.inf,
                          stuck_after_secs=900)
    delivery = Delivery(output, buffer, DeadLetterStore(tmp_path / "dlq", metrics), metrics,
                        config, health, backoff=Backoff(0.001, 0.005))
    srv = TelemetryServer("127.0.0.1:0", metrics, [health])
    await srv.start()
    task = asyncio.create_task(delivery.run())
    yield srv, buffer, output, clock
    output.mode = "ok"
    output.release.set()
    buffer.close()
    await asyncio.wait_for(task, 10)
    await srv.close()


async def put(buffer, n=3):
    group = AckGroup(lambda _group: None)
    await buffer.put([b"{}"] * n, group)
    group.seal()
    return group


async def test_readiness_flips_when_the_output_stalls_and_back_when_it_recovers(agentlike):
    srv, buffer, output, clock = agentlike
    await until(lambda: buffer.empty, "started")
    output.mode = "down"
    await put(buffer)
    await until(lambda: output.attempts >= 3, "retries")
    assert (await fetch(srv, "/readyz"))[0] == 200  # failing, but not for long yet
    clock.now += 301
    status, body = await fetch(srv, "/readyz")
    assert status == 503 and "no delivery for 301s with data buffered: HTTP 503" in body
    assert (await fetch(srv, "/healthz"))[0] == 200  # retrying: an outage, not a stuck agent
    output.mode = "ok"
    await until(lambda: buffer.empty, "delivered after recovery")
    assert await fetch(srv, "/readyz") == (200, "ready\n")


async def test_liveness_fails_when_delivery_stops_trying_and_recovers_after(agentlike):
    srv, buffer, output, clock = agentlike
    output.mode = "hang"
    await put(buffer)
    await until(lambda: output.attempts >= 1, "the hung attempt")
    clock.now += 901
    status, body = await fetch(srv, "/healthz")
    assert status == 503 and "the pipeline is stuck" in body
    output.release.set()
    await until(lambda: buffer.empty, "the hung request returned")
    assert await fetch(srv, "/healthz") == (200, "ok\n")


# -- /tap over HTTP -----------------------------------------------------------------------

def records(n, code=503):
    out = []
    for i in range(n):
        out += call_records(Call(GATEWAY, ORDERS, code=code, request_id=f"t{i}"), seed=i)
    return out


def open_stream(port, query=""):
    """A raw client: send the request, return the socket and the response head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET /tap{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head.decode()


def read_events(sock, n):
    """Decode chunked NDJSON until ``n`` events arrived."""
    data = b""
    events = []
    while len(events) < n:
        chunk = sock.recv(65536)
        assert chunk, "stream ended early"
        data += chunk
        while True:
            size_end = data.find(b"\r\n")
            if size_end < 0:
                break
            size = int(data[:size_end], 16)
            if len(data) < size_end + 2 + size + 2:
                break
            body = data[size_end + 2:size_end + 2 + size]
            data = data[size_end + 2 + size + 2:]
            events += [orjson.loads(line) for line in body.splitlines() if line.strip()]
    return events


@pytest.fixture
async def tap_server():
    metrics = Metrics()
    tap = Tap(metrics, TapConfig(enabled=True, max_subscribers=2))
    srv = TelemetryServer("127.0.0.1:0", metrics, [], tap=tap)
    await srv.start()
    yield srv, tap, metrics
    await srv.close()


async def test_tap_streams_matching_records_as_chunked_ndjson(tap_server):
    srv, tap, metrics = tap_server
    sock, head = await asyncio.to_thread(open_stream, srv.port, "?code=5xx&direction=inbound")
    try:
        assert head.startswith("HTTP/1.1 200") and "Transfer-Encoding: chunked" in head
        await until(lambda: tap.subscribers == 1, "subscribed")
        tap.offer(records(2, code=200) + records(3, code=503))
        events = await asyncio.to_thread(read_events, sock, 3)
        assert [e["envoy"]["request_id"] for e in events] == ["t0", "t1", "t2"]
        assert all(e["direction"] == "inbound" and e["workload"] == "orders" for e in events)
    finally:
        sock.close()
    await until(lambda: tap.subscribers == 0, "a closed client frees its slot")
    assert metrics.registry.get_sample_value("shipper_tap_records_total",
                                             {"result": "sent"}) == 3


async def test_tap_refuses_bad_filters_and_too_many_streams(tap_server):
    srv, tap, _ = tap_server
    status, body = await fetch(srv, "/tap?namspace=x")
    assert status == 400 and "unknown tap parameter" in body
    socks = [(await asyncio.to_thread(open_stream, srv.port))[0] for _ in range(2)]
    try:
        await until(lambda: tap.subscribers == 2, "two streams")
        status, body = await fetch(srv, "/tap")
        assert status == 503 and "max_subscribers" in body
    finally:
        for s in socks:
            s.close()


async def test_closing_the_server_ends_open_streams(tap_server):
    srv, tap, _ = tap_server
    sock, _ = await asyncio.to_thread(open_stream, srv.port)
    await until(lambda: tap.subscribers == 1, "subscribed")
    await srv.close()

    def rest():
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data

    assert (await asyncio.to_thread(rest)).endswith(b"0\r\n\r\n")  # a clean end of stream
    sock.close()


async def test_a_tap_listener_of_its_own_serves_only_the_tap():
    metrics = Metrics()
    tap = Tap(metrics)
    srv = TelemetryServer("127.0.0.1:0", metrics, [], tap=tap, tap_listen="127.0.0.1:0")
    await srv.start()
    try:
        assert srv.tap_port != srv.port
        assert (await fetch(srv, "/metrics", srv.tap_port))[0] == 404
        assert (await fetch(srv, "/tap"))[0] == 404  # not on the telemetry port then
        sock, head = await asyncio.to_thread(open_stream, srv.tap_port)
        sock.close()
        assert head.startswith("HTTP/1.1 200")
    finally:
        await srv.close()
