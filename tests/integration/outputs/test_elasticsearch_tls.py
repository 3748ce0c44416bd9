"""A server certificate the elasticsearch output does not trust is a configuration problem, like
rejected credentials: the output is not ready at once, with the reason and the host, and keeps
retrying until the certificate is fixed. The real server (tests/es_server.py) sits behind a
TLS front on loopback whose certificate can change."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from outputs.elasticsearch import ElasticsearchConfig, ElasticsearchOutput
from shipper.app import Agent
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import Chunk, MemoryBuffer
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.errors import OutputTLSError
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.record import Record
from shipper.retry import Backoff
from tests.integration.agent_harness import load
from tests.integration.outputs.test_elasticsearch_output import count
from tests.integration.outputs.tlsfront import TlsFront

UNKNOWN_CA = "certificate verify failed: unable to get local issuer certificate"
DAY_NS = 1_795_305_600 * 1_000_000_000  # 2026-11-22T00:00:00Z
FAST = BufferConfig(retry_initial_secs=0.01, retry_max_secs=0.05)


async def until(condition: Callable[[], Any], timeout_secs: float = 10.0) -> Any:
    """Poll ``condition`` until it returns something truthy (bounded in time)."""
    async with asyncio.timeout(timeout_secs):
        while not (found := condition()):
            await asyncio.sleep(0.01)
    return found


class Harness:
    """Delivery (the real retry loop) to one elasticsearch output, with the health that
    ``/readyz`` reads; the stall timer is far away, so it cannot be the reason."""

    def __init__(self, hosts: list[str], ca_file: str, state: Path) -> None:
        self.prefix = f"tls-{uuid.uuid4().hex[:10]}"
        self.metrics = Metrics()
        config = ElasticsearchConfig(hosts=hosts, ca_file=ca_file, logstash_prefix=self.prefix,
                                     template_name=self.prefix, buffer=FAST,
                                     request_timeout_secs=5)
        self.output = ElasticsearchOutput("es", config, self.metrics)
        self.health = OutputHealth("es", 300.0, has_backlog=lambda: True)
        self.delivery = Delivery(self.output, MemoryBuffer("es", FAST, self.metrics),
                                 DeadLetterStore(state / "dead-letter", self.metrics),
                                 self.metrics, FAST, self.health,
                                 Backoff(FAST.retry_initial_secs, FAST.retry_max_secs))

    def value(self, name: str, **labels: str) -> float:
        sample = self.metrics.registry.get_sample_value(name, {"output": "es", **labels})
        return 0.0 if sample is None else sample

    async def deliver(self, n: int) -> None:
        recs = [Record({"log": f"line {i}", "stream": "stdout"}, DAY_NS + i, "kube.web",
                       f"{self.prefix}-{i}") for i in range(n)]
        chunk = Chunk(1, time.monotonic())
        chunk.payloads.extend(self.output.encode(recs))
        await self.delivery.deliver(chunk)


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[trustme.CA, str]:
    """The CA the output trusts, and its ``ca_file``."""
    ca = trustme.CA()
    path = tmp_path / "trusted-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def es_address(es_url: str) -> tuple[str, int]:
    parts = urlsplit(es_url)
    return parts.hostname or "127.0.0.1", parts.port or 9200


async def test_an_untrusted_certificate_at_start_is_not_ready_at_once_and_retried(
        es_url: str, tmp_path: Path, trusted: tuple[trustme.CA, str]) -> None:
    ca, ca_file = trusted
    stranger = trustme.CA().issue_cert("127.0.0.1")
    with TlsFront(*es_address(es_url), stranger) as front:
        h = Harness([front.url], ca_file, tmp_path)
        start = asyncio.create_task(h.delivery.start_output())
        try:
            problem = await until(h.health.problem)  # not after the stall timer: now
            assert problem == (f"output es: TLS certificate rejected ({UNKNOWN_CA} "
                               f"(hosts[0] {front.url}))")
            assert h.value("shipper_output_start_attempts_total", result="tls_rejected") >= 1
            assert h.output.health.tls_problem == f"{UNKNOWN_CA} (hosts[0] {front.url})"
            assert not start.done()  # still retrying
            # The server gets a certificate from the trusted CA: the next attempt starts.
            front.use(ca.issue_cert("127.0.0.1"))
            await asyncio.wait_for(start, 10)
        finally:
            start.cancel()
        assert h.health.problem() is None
        assert h.output.health.ready
        assert h.value("shipper_output_start_attempts_total", result="ok") == 1
        await h.deliver(3)
        await h.output.close()
    assert count(es_url, f"{h.prefix}-*") == 3


async def test_a_host_name_mismatch_is_not_ready_at_once(
        es_url: str, tmp_path: Path, trusted: tuple[trustme.CA, str]) -> None:
    ca, ca_file = trusted
    with TlsFront(*es_address(es_url), ca.issue_cert("es.example")) as front:
        h = Harness([front.url], ca_file, tmp_path)
        start = asyncio.create_task(h.delivery.start_output())
        try:
            problem = await until(h.health.problem)
        finally:
            start.cancel()
        await h.output.close()
    assert problem.startswith("output es: TLS certificate rejected (certificate verify "
                              "failed: hostname '127.0.0.1' doesn't match 'es.example'")
    assert problem.endswith(f"(hosts[0] {front.url}))")


async def test_among_several_hosts_the_one_with_the_wrong_certificate_is_named(
        es_url: str, tmp_path: Path, trusted: tuple[trustme.CA, str]) -> None:
    ca, ca_file = trusted
    host, port = es_address(es_url)
    with TlsFront(host, port, ca.issue_cert("127.0.0.1")) as good, \
            TlsFront(host, port, ca.issue_cert("es.example")) as wrong:
        h = Harness([good.url, wrong.url], ca_file, tmp_path)
        refused = None
        try:
            for _ in range(20):  # the transport picks a host per request
                try:
                    await h.output.start()
                except OutputTLSError as exc:
                    refused = str(exc)
                    break
        finally:
            await h.output.close()
    assert refused is not None
    assert refused.startswith("output es: certificate verify failed: hostname '127.0.0.1' "
                              "doesn't match 'es.example'")
    assert refused.endswith(f"(hosts[1] {wrong.url})")
    assert good.url not in refused


async def test_an_untrusted_certificate_during_delivery_keeps_the_records_and_retries(
        es_url: str, tmp_path: Path, trusted: tuple[trustme.CA, str]) -> None:
    ca, ca_file = trusted
    with TlsFront(*es_address(es_url), ca.issue_cert("127.0.0.1")) as front:
        h = Harness([front.url], ca_file, tmp_path)
        await h.delivery.start_output()
        front.use(trustme.CA().issue_cert("127.0.0.1"))  # replaced by an unknown CA's
        sending = asyncio.create_task(h.deliver(4))
        try:
            problem = await until(h.health.problem)
            assert problem == (f"output es: TLS certificate rejected (tls_error: {UNKNOWN_CA} "
                               f"(hosts[0] {front.url}))")
            await until(lambda: h.value("shipper_records_retried_total", reason="tls") >= 8)
            assert h.value("shipper_output_requests_total", status="tls_error") >= 2
            assert h.value("shipper_records_retried_total", reason="connection") == 0
            assert not sending.done()
            front.use(ca.issue_cert("127.0.0.1"))
            await asyncio.wait_for(sending, 10)
        finally:
            sending.cancel()
        await h.output.close()
    assert h.health.problem() is None
    assert h.value("shipper_records_delivered_total") == 4
    assert count(es_url, f"{h.prefix}-*") == 4


AGENT_CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    ca_file: {ca_file}
    buffer: {{retry_initial_secs: 0.05, retry_max_secs: 0.2}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_the_agent_readyz_names_the_refused_certificate_at_once(
        es_url: str, tmp_path: Path, trusted: tuple[trustme.CA, str]) -> None:
    ca, ca_file = trusted
    (tmp_path / "logs").mkdir()
    with TlsFront(*es_address(es_url), trustme.CA().issue_cert("127.0.0.1")) as front:
        agent = Agent(load(AGENT_CONFIG.format(state=tmp_path / "state", logs=tmp_path / "logs",
                                               url=front.url, ca_file=ca_file)))
        stop = asyncio.Event()
        began = time.monotonic()
        task = asyncio.create_task(agent.run(stop))
        try:
            async with asyncio.timeout(20):
                while not agent.telemetry.port:
                    await asyncio.sleep(0.01)
                while (answer := await asyncio.to_thread(readyz, agent.telemetry.port))[0] \
                        == 200:
                    await asyncio.sleep(0.02)
                took = time.monotonic() - began
                front.use(ca.issue_cert("127.0.0.1"))  # fixed: ready again
                while (await asyncio.to_thread(readyz, agent.telemetry.port))[0] != 200:
                    await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    status, body = answer
    assert status == 503
    assert (f"output es: TLS certificate rejected ({UNKNOWN_CA} (hosts[0] {front.url}))"
            in body)
    assert took < 10  # not the 300 s stall timer
