"""Our forward output against our forward server over real sockets: acks, resends that keep
their chunk ids, the handshake, TLS, gzip, failover, heartbeats."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import trustme

from outputs.forward import ForwardOutput
from outputs.forward.config import ForwardClientTls, ForwardOutputConfig, ForwardServer
from shipper.errors import OutputCredentialsError, OutputRetryableError, OutputTLSError
from shipper.metrics import Metrics
from shipper.protocols import Status
from shipper.record import Record
from shipper.sources.forward.config import ForwardSecurity, ForwardTls
from tests.integration.sources.forward.conftest import Certs, Collector, running, wait_for

NS = 1_000_000_000


def records(n: int, tag: str = "app.log", start: int = 0) -> list[Record]:
    return [Record({"log": f"line {i}", "i": i}, 1_700_000_000 * NS + i, tag)
            for i in range(start, start + n)]


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def output(*ports: int, **settings: object) -> ForwardOutput:
    settings.setdefault("heartbeat_type", "none")
    settings.setdefault("connect_timeout_secs", 2.0)
    servers = [ForwardServer("127.0.0.1", p) for p in ports]
    return ForwardOutput("fwd-out", ForwardOutputConfig(servers=servers, **settings),  # type: ignore[arg-type]
                         Metrics())


async def test_records_arrive_with_their_tags_times_and_acks() -> None:
    async with running() as srv:
        out = output(srv.port)
        await out.start()
        payloads = out.encode(records(3, "a") + records(2, "b", start=3))
        outcome = await out.send(payloads)
        assert outcome.statuses == [Status.DELIVERED] * 5
        got = sorted((r.tag, r.body["i"], r.time_ns) for r in srv.collector.records)
        assert got == [("a", i, 1_700_000_000 * NS + i) for i in range(3)] + \
            [("b", i, 1_700_000_000 * NS + i) for i in range(3, 5)]
        assert srv.counter("shipper_forward_acks_total") == 2  # one message per tag
        await out.close()


async def test_an_unacked_chunk_is_retried_and_its_resend_maps_to_the_same_ids() -> None:
    collector = Collector(auto_ack=False)
    async with running(collector) as srv:
        out = output(srv.port, ack_response_timeout_secs=0.5)
        await out.start()
        payloads = out.encode(records(4))
        first = await out.send(payloads)
        assert first.statuses == [Status.RETRY] * 4
        assert first.errors[0].type == "ack_timeout"
        ids_first = [r.doc_id for r in collector.records]
        collector.auto_ack = True
        collector.ack_all()
        second = await out.send(payloads)  # what delivery does after its backoff
        assert second.statuses == [Status.DELIVERED] * 4
        ids_second = [r.doc_id for r in collector.records[4:]]
        assert ids_first == ids_second and all(ids_first)
        await out.close()


async def test_shared_key_tls_and_gzip(certs: Certs) -> None:
    tls = ForwardTls(cert_file=str(certs.server_cert), key_file=str(certs.server_key),
                     ca_file=str(certs.ca), client_cert_auth=True)
    security = ForwardSecurity(shared_key="k3y", self_hostname="aggregator")
    async with running(tls=tls, security=security) as srv:
        client_tls = ForwardClientTls(ca_file=str(certs.ca), server_name="localhost",
                                      cert_file=str(certs.client_cert),
                                      key_file=str(certs.client_key))
        out = output(srv.port, shared_key="k3y", self_hostname="agent", tls=client_tls,
                     compress="gzip")
        await out.start()
        outcome = await out.send(out.encode(records(200)))
        assert outcome.statuses == [Status.DELIVERED] * 200
        assert sorted(r.body["i"] for r in srv.collector.records) == list(range(200))
        await out.close()

        wrong = output(srv.port, shared_key="nope", self_hostname="agent", tls=client_tls)
        with pytest.raises(OutputCredentialsError, match="shared_key mismatch"):
            await wrong.start()
        refused = await wrong.send(wrong.encode(records(1)))
        assert refused.statuses == [Status.RETRY] and refused.http_status == 401
        assert wrong.health.credentials_rejected
        await wrong.close()


@pytest.mark.parametrize(("trust", "server_name", "why"), [
    ("other_ca", "localhost", "certificate verify failed: unable to get local issuer "
                              "certificate"),
    ("server_ca", "logs.example", "certificate verify failed: Hostname mismatch, certificate "
                                  "is not valid for 'logs.example'."),
])
async def test_a_server_certificate_we_do_not_trust_is_a_tls_refusal(
        certs: Certs, tmp_path: Path, trust: str, server_name: str, why: str) -> None:
    tls = ForwardTls(cert_file=str(certs.server_cert), key_file=str(certs.server_key))
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    ca_file = str(certs.ca if trust == "server_ca" else other)
    async with running(tls=tls) as srv:
        out = output(srv.port, tls=ForwardClientTls(ca_file=ca_file, server_name=server_name))
        with pytest.raises(OutputTLSError) as refused:  # not ready at once (delivery)
            await out.start()
        outcome = await out.send(out.encode(records(2)))
        await out.close()
        assert srv.collector.records == []
    assert str(refused.value) == (f"output fwd-out: no server reachable: "
                                  f"127.0.0.1:{srv.port}: {why}")
    assert outcome.statuses == [Status.RETRY] * 2
    assert outcome.errors[0].type == "tls_error"
    assert outcome.errors[0].reason == f"no server reachable: 127.0.0.1:{srv.port}: {why}"


async def test_a_server_requiring_a_key_is_reported_when_we_have_none() -> None:
    async with running(security=ForwardSecurity(shared_key="k")) as srv:
        out = output(srv.port, ack_response_timeout_secs=2)
        await out.start()  # connecting works: the server speaks first only on data
        outcome = await out.send(out.encode(records(1)))
        assert outcome.statuses == [Status.RETRY]
        assert "shared_key" in outcome.errors[0].reason
        await out.close()


async def test_failover_to_the_next_server_within_one_send() -> None:
    dead = closed_port()
    async with running() as srv:
        out = output(dead, srv.port)
        await out.start()
        for _ in range(5):  # whatever the weighted order, every send lands
            outcome = await out.send(out.encode(records(2)))
            assert outcome.statuses == [Status.DELIVERED] * 2
        assert len(srv.collector.records) == 10
        assert not out.health.states[0].available and out.health.states[1].available
        await out.close()


async def test_no_server_reachable() -> None:
    out = output(closed_port())
    with pytest.raises(OutputRetryableError, match="no server reachable"):
        await out.start()
    outcome = await out.send(out.encode(records(2)))
    assert outcome.statuses == [Status.RETRY] * 2 and outcome.http_status is None
    await out.close()


@pytest.mark.parametrize("heartbeat", ["transport", "udp"])
async def test_heartbeats_mark_a_server_down_and_up_again(heartbeat: str) -> None:
    async with running() as srv:
        port = srv.port
        out = output(port, heartbeat_type=heartbeat, heartbeat_interval_secs=0.1,
                     recover_wait_secs=0.2, connect_timeout_secs=0.5)
        await out.start()
        state = out.health.states[0]
        await srv.source.stop()
    await wait_for(lambda: not state.available, what="server marked down")
    async with running(listen=f"127.0.0.1:{port}"):
        await wait_for(lambda: state.available, what="server marked up again")
    await out.close()


async def test_without_acks_a_written_chunk_counts_as_delivered() -> None:
    collector = Collector(auto_ack=False)
    async with running(collector) as srv:
        out = output(srv.port, require_ack_response=False)
        await out.start()
        outcome = await out.send(out.encode(records(3)))
        assert outcome.statuses == [Status.DELIVERED] * 3
        await wait_for(lambda: len(collector.records) == 3, what="3 records")
        assert all(r.doc_id is None for r in collector.records)
        await out.close()


async def test_pooled_connections_are_reused_and_replaced_when_closed() -> None:
    async with running() as srv:
        out = output(srv.port)
        await out.start()
        for i in range(3):
            outcome = await out.send(out.encode(records(1, start=i)))
            assert outcome.statuses == [Status.DELIVERED]
        assert srv.metrics.registry.get_sample_value(
            "shipper_forward_connections", {"source": "fwd"}) == 1
        await out.close()
    async with running() as srv2:
        out = output(srv2.port, keepalive=False)
        await out.start()
        assert (await out.send(out.encode(records(1)))).statuses == [Status.DELIVERED]
        await asyncio.sleep(0)
        await out.close()
