"""The forward server over real sockets: modes, acks only when safe, backpressure, malformed
input, limits, the handshake, TLS and the UDP heartbeat."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl

import msgpack
import pytest

from shipper.sources.forward.handshake import hexdigest
from tests.integration.sources.forward.conftest import (
    Certs,
    Collector,
    read_replies,
    running,
    wait_for,
)

ET = msgpack.ExtType(0, (1_700_000_000).to_bytes(4, "big") + (5).to_bytes(4, "big"))


def packed(tag: str, n: int, chunk: str | None = None, start: int = 0) -> bytes:
    entries = b"".join(msgpack.packb([ET, {"i": start + i}]) for i in range(n))
    option = {"size": n, **({"chunk": chunk} if chunk else {})}
    return msgpack.packb([tag, entries, option], use_bin_type=True)


async def test_every_carrier_mode_on_one_connection() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        entries = msgpack.packb([1_700_000_000, {"m": "packed"}])
        writer.write(msgpack.packb(["a.msg", ET, {"m": "message"}], use_bin_type=True))
        writer.write(msgpack.packb(["a.fwd", [[1, {"m": "forward"}]]], use_bin_type=True))
        writer.write(b"\xc0")  # heartbeat
        writer.write(msgpack.packb(["a.pk", entries], use_bin_type=True))
        writer.write(msgpack.packb(["a.gz", gzip.compress(entries) + gzip.compress(entries),
                                    {"compressed": "gzip", "chunk": "z"}], use_bin_type=True))
        assert await read_replies(reader, 1) == [{"ack": "z"}]
        got = [(r.tag, r.body["m"]) for r in srv.collector.records]
        assert got == [("a.msg", "message"), ("a.fwd", "forward"), ("a.pk", "packed"),
                       ("a.gz", "packed"), ("a.gz", "packed")]
        assert srv.collector.records[0].time_ns == 1_700_000_000_000_000_005
        writer.close()


async def test_the_ack_waits_until_the_events_are_safe() -> None:
    collector = Collector(auto_ack=False)
    async with running(collector, max_batch_records=3) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(packed("t", 10, chunk="c1\n"))
        await wait_for(lambda: len(collector.records) == 10, what="records emitted")
        assert len(collector.batches) == 4  # one request, several batches, one ack
        with pytest.raises(TimeoutError):
            await read_replies(reader, 1, timeout=0.3)
        collector.ack_all()
        assert await read_replies(reader, 1) == [{"ack": "c1\n"}]
        assert srv.counter("shipper_forward_acks_total") == 1
        writer.close()


async def test_a_full_pipeline_stops_reading_that_socket() -> None:
    collector = Collector()
    collector.gate.clear()
    async with running(collector) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(packed("t", 1, chunk="a"))
        writer.write(packed("t", 1, chunk="b"))
        await asyncio.sleep(0.2)
        assert collector.batches == []  # blocked in emit: nothing further read or emitted
        collector.gate.set()
        assert await read_replies(reader, 2) == [{"ack": "a"}, {"ack": "b"}]
        writer.close()


async def test_malformed_input_closes_only_that_connection() -> None:
    async with running() as srv:
        good_r, good_w = await asyncio.open_connection("127.0.0.1", srv.port)
        bad_r, bad_w = await asyncio.open_connection("127.0.0.1", srv.port)
        bad_w.write(packed("t", 1, chunk="ok") + b"\xc1garbage")
        assert await read_replies(bad_r, 2) == [{"ack": "ok"}]  # then EOF
        good_w.write(packed("t", 2, chunk="still"))
        assert await read_replies(good_r, 1) == [{"ack": "still"}]
        assert srv.counter("shipper_forward_connections_closed_total", reason="malformed") == 1
        good_w.close()
        bad_w.close()


async def test_a_non_array_request_is_ignored_and_the_connection_stays() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(msgpack.packb({"not": "a request"}) + packed("t", 1, chunk="after"))
        assert await read_replies(reader, 1) == [{"ack": "after"}]
        assert srv.counter("shipper_forward_events_skipped_total", reason="not_a_request") == 1
        writer.close()


async def test_an_oversized_frame_is_refused_without_an_ack() -> None:
    async with running(max_frame_bytes=4096, max_decompressed_bytes=4096) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(packed("t", 500, chunk="big"))
        assert await read_replies(reader, 1) == []
        assert srv.collector.records == []
        assert srv.counter("shipper_forward_connections_closed_total",
                           reason="frame_too_large") == 1
        writer.close()


async def test_json_variant_with_json_acks() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b'["j.tag", 1700000000, {"log": "json"}, {"chunk": "j1"}]\n')
        async with asyncio.timeout(10):
            assert await reader.readuntil(b"}") == b'{"ack":"j1"}'
        assert srv.collector.records[0].body == {"log": "json"}
        writer.close()


async def test_udp_heartbeat_is_answered_on_the_same_port() -> None:
    async with running() as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(5)
        try:
            sock.sendto(b"\x00", ("127.0.0.1", srv.port))
            data, _ = await asyncio.to_thread(sock.recvfrom, 16)
        finally:
            sock.close()
        assert data == b"\x00"


async def test_idle_connections_are_closed_and_many_do_not_starve_a_good_client() -> None:
    async with running(idle_timeout_secs=1.0, max_connections=300,
                       max_connections_per_address=300) as srv:
        idle = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(200)]
        for _, w in idle[:100]:
            w.write(packed("t", 50)[:20])  # a request that never completes
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for i in range(20):
            writer.write(packed("good", 5, chunk=f"g{i}", start=i * 5))
        replies = await read_replies(reader, 20)
        assert replies == [{"ack": f"g{i}"} for i in range(20)]
        assert sorted(r.body["i"] for r in srv.collector.records) == list(range(100))
        await wait_for(lambda: srv.counter("shipper_forward_connections_closed_total",
                                           reason="idle") >= 200, what="idle closes")
        for r, w in idle:
            assert await asyncio.wait_for(r.read(), 5) == b""
            w.close()
        writer.close()


async def test_connections_over_the_limit_are_closed_at_once() -> None:
    async with running(max_connections=2) as srv:
        conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(2)]
        await wait_for(lambda: srv.metrics.registry.get_sample_value(
            "shipper_forward_connections", {"source": "fwd"}) == 2, what="2 connections")
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert srv.counter("shipper_forward_connections_closed_total", reason="limit") == 1
        for _, w in [*conns, (reader, writer)]:
            w.close()


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str,
                    hostname: str = "client.example", user: str = "", password: str = "",
                    ) -> list[object]:
    [helo] = await read_replies(reader, 1)
    assert helo[0] == "HELO"
    nonce, auth = helo[1]["nonce"], helo[1]["auth"]
    salt = "0123456789abcdef0123456789abcdef"
    pw = hexdigest(auth, user, password) if user else ""
    writer.write(msgpack.packb(["PING", hostname, salt, hexdigest(salt, hostname, nonce, key),
                                user, pw]))
    [pong] = await read_replies(reader, 1)
    return [*pong, hexdigest(salt, "server.example", nonce, key)]


async def test_shared_key_handshake_then_data() -> None:
    security = {"shared_key": "k3y", "self_hostname": "server.example"}
    from shipper.sources.forward.config import ForwardSecurity
    async with running(security=ForwardSecurity(**security)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        pong = await handshake(reader, writer, "k3y")
        assert pong[:4] == ["PONG", True, "", "server.example"] and pong[4] == pong[5]
        writer.write(packed("t", 2, chunk="auth"))
        assert await read_replies(reader, 1) == [{"ack": "auth"}]
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        pong = await handshake(reader, writer, "wrong")
        assert pong[:3] == ["PONG", False, "shared_key mismatch"]
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert srv.counter("shipper_forward_connections_closed_total", reason="auth_failed") == 1
        assert len(srv.collector.records) == 2
        writer.close()


def client_context(certs: Certs, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert:
        ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return ctx


async def test_tls_with_client_certificates(certs: Certs) -> None:
    from shipper.sources.forward.config import ForwardTls
    tls = ForwardTls(cert_file=str(certs.server_cert), key_file=str(certs.server_key),
                     ca_file=str(certs.ca), client_cert_auth=True)
    async with running(tls=tls) as srv:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", srv.port, ssl=client_context(certs, True), server_hostname="localhost")
        writer.write(packed("tls", 3, chunk="s"))
        assert await read_replies(reader, 1) == [{"ack": "s"}]
        writer.close()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", srv.port, ssl=client_context(certs, False),
                server_hostname="localhost")
            writer.write(packed("tls", 1, chunk="x"))
            await writer.drain()
            if await asyncio.wait_for(reader.read(), 5) == b"":
                raise ConnectionResetError("closed without a client certificate")
        assert len(srv.collector.records) == 3


async def test_source_address_and_hostname_keys() -> None:
    async with running(source_address_key="addr", source_hostname_key="host") as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(packed("t", 1, chunk="h"))
        await read_replies(reader, 1)
        body = srv.collector.records[0].body
        assert body["addr"] == "127.0.0.1"
        assert body["host"] in (socket.getfqdn("127.0.0.1"), "localhost", "127.0.0.1")
        writer.close()


async def test_acks_owed_at_shutdown_are_still_sent_before_close() -> None:
    collector = Collector(auto_ack=False)
    async with running(collector) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(packed("t", 2, chunk="late"))
        await wait_for(lambda: len(collector.records) == 2, what="emitted")
        await srv.source.stop()  # stop reading; the ack is still owed
        collector.ack_all()
        assert await read_replies(reader, 1) == [{"ack": "late"}]
        writer.close()
