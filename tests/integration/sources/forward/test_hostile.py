"""Hostile clients over real sockets: each closes its own connection (counted), in bounded
time, turns nothing into a record, and never stops the server from serving good clients."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import gzip
import json
import socket
import ssl
import time
import tracemalloc

import msgpack
import pytest

from shipper.sources.forward.config import ForwardTls
from tests.integration.sources.forward.conftest import (
    Certs,
    Collector,
    Running,
    read_replies,
    running,
    wait_for,
)

ET = msgpack.ExtType(0, (1_700_000_000).to_bytes(4, "big") + (5).to_bytes(4, "big"))
# ["t", 1700000000, {"a": 1}, {"chunk": <EventTime>}]: the ack could not echo this chunk.
EVENT_TIME_CHUNK = bytes.fromhex(
    "94a174ce6553f10081a1610181a56368756e6bd7000000000000000000")


def nested(depth: int, leaf: object) -> object:
    """A map nested ``depth`` levels deep (the outermost counts) around ``leaf``."""
    value = leaf
    for _ in range(depth - 1):
        value = {"n": value}
    return {"n": value}


async def good_client_is_served(srv: Running, chunk: str, timeout: float = 1.0) -> None:
    """A well-behaved client connects, sends one acked request and gets its ack in time."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(msgpack.packb(["good", [[ET, {"c": chunk}]], {"chunk": chunk}],
                                       use_bin_type=True))
            assert await read_replies(reader, 1, timeout=timeout) == [{"ack": chunk}]
        finally:
            writer.close()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    out = b""
    async with asyncio.timeout(timeout):
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                return out
            if not data:
                return out
            out += data


def closes(srv: Running, reason: str) -> float:
    return srv.counter("shipper_forward_connections_closed_total", reason=reason)


async def test_an_event_time_chunk_id_closes_that_connection_without_an_ack() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(EVENT_TIME_CHUNK)
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "invalid_chunk") == 1
        assert srv.collector.records == []  # refused before anything was emitted
        await good_client_is_served(srv, "after")


@pytest.mark.parametrize("chunk", [[1, 2], {"a": 1}, 1.5, True, ET,
                                   msgpack.ExtType(5, b"x")])
async def test_chunk_ids_that_cannot_be_echoed_are_refused(chunk: object) -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": chunk}],
                                   use_bin_type=True))
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "invalid_chunk") == 1
        await good_client_is_served(srv, "after")


@pytest.mark.parametrize("chunk", ["c1\n", b"\x00\xff", 7, 2**64 - 1, "h\udcffllo"])
async def test_echoable_chunk_ids_are_acknowledged_exactly(chunk: object) -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        frame = msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": chunk}], use_bin_type=True,
                              unicode_errors="surrogateescape")
        writer.write(frame)
        async with asyncio.timeout(5):
            reply = await reader.read(4096)
        expected = msgpack.packb({"ack": chunk}, use_bin_type=True,
                                 unicode_errors="surrogateescape")
        assert reply == expected
        writer.close()


@pytest.mark.parametrize("frame", [
    b'["t", 1700000000, {"a": 1}, {"chunk": "\\ud800"}]',
    b'["t", 1700000000, {"a": 1}, {"chunk": "a\xffb"}]',
    b'["t", 1700000000, {"a": 1}, {"chunk": [1]}]',
    b'["t", 1700000000, {"a": 1}, {"chunk": 1.5}]',
])
async def test_json_chunk_ids_that_are_not_unicode_are_refused(frame: bytes) -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame)
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "invalid_chunk") == 1
        assert srv.collector.records == []
        await good_client_is_served(srv, "after")


async def test_a_json_chunk_with_non_ascii_text_is_acknowledged() -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write('["t", 1700000000, {"a": 1}, {"chunk": "é\\u00e9"}]'.encode())
        async with asyncio.timeout(5):
            reply = await reader.readuntil(b"}")
        assert json.loads(reply) == {"ack": "éé"}
        writer.close()


async def test_a_deeply_nested_record_costs_linear_time() -> None:
    """Each level used to double the work: 22 levels took seconds and stalled every client."""
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        started = time.monotonic()
        # bytes at the bottom: every level has to be copied (binary becomes text)
        writer.write(msgpack.packb(["t", [[1, nested(22, b"\xff")]], {"chunk": "deep"}],
                                   use_bin_type=True))
        assert await read_replies(reader, 1, timeout=1.0) == [{"ack": "deep"}]
        assert time.monotonic() - started < 1.0
        body = srv.collector.records[0].body
        for _ in range(22):
            body = body["n"]
        assert body == "\\xff"
        writer.close()


async def test_nesting_beyond_the_limit_closes_that_connection() -> None:
    async with running(max_nesting_depth=8) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(msgpack.packb(["t", [[1, nested(8, 1)]], {"chunk": "ok"}],
                                   use_bin_type=True))
        assert await read_replies(reader, 1) == [{"ack": "ok"}]
        writer.write(msgpack.packb(["t", [[1, nested(9, 1)]], {"chunk": "no"}],
                                   use_bin_type=True))
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "too_deep") == 1
        assert len(srv.collector.records) == 1


@pytest.mark.parametrize("frame", [
    b"\x93\xa1t\x01" + b"\x81\xa1n" * 600 + b"\x01",  # ~1.8 KB, 600 maps deep (msgpack)
    b'["t", 1, ' + b'{"n": ' * 600 + b"1" + b"}" * 600 + b"]",  # the same in JSON
])
async def test_hundreds_of_levels_are_a_counted_protocol_error(frame: bytes) -> None:
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame)
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "too_deep") == 1
        assert closes(srv, "internal_error") == 0
        await good_client_is_served(srv, "after")


async def test_a_trickled_request_is_cut_but_an_idle_connection_stays() -> None:
    async with running(frame_timeout_secs=0.5, idle_timeout_secs=30) as srv:
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", srv.port)
        slow_r, slow_w = await asyncio.open_connection("127.0.0.1", srv.port)
        frame = msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": "slow"}], use_bin_type=True)
        started = time.monotonic()
        with contextlib.suppress(ConnectionError):
            for byte in frame:
                slow_w.write(bytes([byte]))
                await asyncio.sleep(0.1)
                if closes(srv, "slow_frame"):
                    break
        assert time.monotonic() - started < 1.5  # 0.5 s of waiting, not the whole frame
        assert await closed_by_server(slow_r) == b""
        assert closes(srv, "slow_frame") == 1
        assert srv.collector.records == []
        # The connection that sent nothing at all is still open and serves a request.
        idle_w.write(msgpack.packb(["t", [[1, {"a": 2}]], {"chunk": "idle"}],
                                   use_bin_type=True))
        assert await read_replies(idle_r, 1) == [{"ack": "idle"}]
        # ... and idle between complete requests is just as normal.
        await asyncio.sleep(0.7)
        idle_w.write(msgpack.packb(["t", [[1, {"a": 3}]], {"chunk": "again"}],
                                   use_bin_type=True))
        assert await read_replies(idle_r, 1) == [{"ack": "again"}]
        assert closes(srv, "slow_frame") == 1 and closes(srv, "idle") == 0
        idle_w.close()
        slow_w.close()


async def test_backpressure_does_not_count_against_the_frame_timeout() -> None:
    collector = Collector()
    collector.gate.clear()
    async with running(collector, frame_timeout_secs=0.3) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        first = msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": "1"}], use_bin_type=True)
        second = msgpack.packb(["t", [[1, {"a": 2}]], {"chunk": "2"}], use_bin_type=True)
        writer.write(first + second[:5])  # a complete request, then a partial one
        await asyncio.sleep(0.8)  # the server is blocked emitting the first
        collector.gate.set()
        writer.write(second[5:])
        assert await read_replies(reader, 2) == [{"ack": "1"}, {"ack": "2"}]
        assert closes(srv, "slow_frame") == 0
        writer.close()


async def test_many_tricklers_from_one_address_do_not_take_every_slot() -> None:
    async with running(max_connections=20, max_connections_per_address=10) as srv:
        tricklers = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(30)]
        for _, w in tricklers:
            w.write(b"\x93")
        await wait_for(lambda: closes(srv, "per_address_limit") == 20,
                       what="connections over the per-address limit refused")
        # Another address still gets a slot (127.0.0.2 is loopback too on Linux).
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port,
                                                       local_addr=("127.0.0.2", 0))
        writer.write(msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": "other"}],
                                   use_bin_type=True))
        assert await read_replies(reader, 1) == [{"ack": "other"}]
        assert closes(srv, "limit") == 0
        for _, w in [*tricklers, (reader, writer)]:
            w.close()


async def test_a_client_that_never_reads_its_acks_is_closed_and_released() -> None:
    async with running() as srv:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", srv.port))
        chunk = "c" * 1000  # each ack is about 1 KB; the kernel takes a few MB first
        frame = msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": chunk}], use_bin_type=True)
        try:
            with contextlib.suppress(ConnectionError, TimeoutError):
                for _ in range(200):
                    async with asyncio.timeout(2):
                        await loop.sock_sendall(sock, frame * 100)
                    if closes(srv, "acks_unread"):
                        break
            await wait_for(lambda: closes(srv, "acks_unread") == 1, what="closed as unread")
            # The socket and its unsent acks are dropped (reset), not kept until read.
            reset = False
            deadline = time.monotonic() + 5
            while not reset and time.monotonic() < deadline:
                try:
                    sock.send(b"\xc0")
                except (BlockingIOError, InterruptedError):
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    reset = True
                await asyncio.sleep(0.05)
            assert reset, "the server kept the connection of a client that never reads"
        finally:
            sock.close()
        await wait_for(lambda: srv.metrics.registry.get_sample_value(
            "shipper_forward_connections", {"source": "fwd"}) == 0, what="released")
        await good_client_is_served(srv, "after")


def has_records(srv: Running, count: int) -> bool:
    return len(srv.collector.records) == count


def _send_tls13_without_reading(port: int, ca: str, frames: list[bytes]) -> None:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        for frame in frames:
            tls.sendall(frame)
    # closed without ever reading: whatever the server sent is left unread


async def test_tls13_client_that_never_reads_loses_nothing(certs: Certs) -> None:
    tls = ForwardTls(cert_file=str(certs.server_cert), key_file=str(certs.server_key))
    async with running(tls=tls) as srv:
        total = 0
        for run in range(20):
            frames = [msgpack.packb(["t", [[1, {"run": run, "i": i}] for i in range(200)]],
                                    use_bin_type=True) for _ in range(5)]
            await asyncio.to_thread(_send_tls13_without_reading, srv.port, str(certs.ca),
                                    frames)
            total += 1000
            await wait_for(functools.partial(has_records, srv, total),
                           what=f"all records of run {run}")


@pytest.mark.parametrize("json_mode", [False, True])
async def test_an_idle_connection_keeps_no_memory_of_its_large_requests(json_mode: bool) -> None:
    """Idle connections that each once sent a large request used to hold it (and the
    decoder's buffer) until they closed: 100 of them, 4 MiB each, held 800 MB."""
    size = 4 * 1024 * 1024
    async with running() as srv:
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            conns = []
            for n in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
                message = ["t", [[1, {"a": "x" * size}]], {"chunk": f"c{n}"}]
                writer.write(json.dumps(message).encode() if json_mode
                             else msgpack.packb(message, use_bin_type=True))
                del message  # the test's own copy
                async with asyncio.timeout(10):
                    assert f"c{n}".encode() in await reader.read(100)
                conns.append(writer)
            srv.collector.batches.clear()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - baseline
        finally:
            tracemalloc.stop()
        assert held < size, f"{held} bytes held by 3 idle connections"
        for writer in conns:
            writer.close()


async def test_at_the_limit_the_longest_quiet_connection_makes_room(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Silent or trickling sockets holding every slot do not lock out a client with data."""
    monkeypatch.setattr("shipper.sources.forward.source.EVICT_AFTER_SECS", 0.3)
    async with running(max_connections=3) as srv:
        quiet = []
        for payload in (b"", b"\x93\xa1", b""):  # silent, trickling, silent
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(payload)
            quiet.append((reader, writer))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": "new"}], use_bin_type=True))
        assert await read_replies(reader, 1) == [{"ack": "new"}]
        assert closes(srv, "evicted") == 1 and closes(srv, "limit") == 0
        assert await closed_by_server(quiet[0][0]) == b""  # the one quiet the longest
        for _, w in [*quiet, (reader, writer)]:
            w.close()


async def test_connections_owing_acks_or_recently_active_are_not_evicted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shipper.sources.forward.source.EVICT_AFTER_SECS", 0.3)
    collector = Collector(auto_ack=False)
    async with running(collector, max_connections=2) as srv:
        owing_r, owing_w = await asyncio.open_connection("127.0.0.1", srv.port)
        owing_w.write(msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": "owed"}],
                                    use_bin_type=True))
        await wait_for(lambda: len(collector.records) == 1, what="emitted")
        _fresh_r, fresh_w = await asyncio.open_connection("127.0.0.1", srv.port)
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await closed_by_server(reader) == b""  # refused: nobody may be evicted
        assert closes(srv, "limit") == 1 and closes(srv, "evicted") == 0
        collector.ack_all()
        assert await read_replies(owing_r, 1) == [{"ack": "owed"}]
        for w in (owing_w, fresh_w, writer):
            w.close()


def _empty_maps(n: int) -> bytes:
    return b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n


@pytest.mark.parametrize("attack", ["gzip_header", "gzip_many", "forward"])
async def test_many_tiny_values_close_the_connection_while_others_are_served(
        attack: str) -> None:
    """Requests of KB that decoded to GB of empty maps: refused (`too_many_values`), nothing
    becomes a record, and a good client on another connection is acked meanwhile."""
    now = int(time.time()).to_bytes(4, "big")
    if attack == "forward":
        frame = b"\x92\xa1t\x98" + (b"\x92\x01" + _empty_maps(1 << 17)) * 8
    else:
        each, arrays = (1 << 20, 2) if attack == "gzip_header" else (60_000, 60)
        entry = (b"\x92\xce" + now + b"\xdd" + arrays.to_bytes(4, "big")
                 + _empty_maps(each) * arrays)
        frame = msgpack.packb(["bomb.t", gzip.compress(entry, 6),
                               {"compressed": "gzip", "chunk": "bombchunk"}], use_bin_type=True)
    async with running(max_values_per_request=1 << 18) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame)
        await good_client_is_served(srv, "good", timeout=1.0)
        assert await closed_by_server(reader) == b""
        writer.close()
        assert closes(srv, "too_many_values") == 1
        assert [r.tag for r in srv.collector.records] == ["good"]


async def test_a_payload_of_many_events_of_tiny_values_does_not_stall_other_clients() -> None:
    """Each event is under the value bound (so the request is decoded), but the payload is
    millions of empty maps: it is decoded in slices, and a good client is acked meanwhile."""
    entry = b"\x92\x01" + _empty_maps(50_000)  # a record that is not a map: skipped
    frame = msgpack.packb(["bomb.t", gzip.compress(entry * 200, 6),
                           {"compressed": "gzip", "chunk": "many"}], use_bin_type=True)
    async with running() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(frame)
        attack_acked = asyncio.create_task(read_replies(reader, 1, timeout=15.0))
        served = 0
        while not attack_acked.done() and served < 100:  # each within 1 s, all along
            await good_client_is_served(srv, f"good{served}", timeout=1.0)
            served += 1
        assert await attack_acked == [{"ack": "many"}]
        writer.close()
        assert served >= 2
        assert srv.counter("shipper_forward_events_skipped_total", reason="invalid_event") == 200
        assert {r.tag for r in srv.collector.records} == {"good"}


async def test_a_compressed_event_larger_than_a_frame_closes_the_connection() -> None:
    """No event of a CompressedPackedForward may be larger than max_frame_bytes, as in the
    other modes: one small gzip request cannot become one huge document."""
    good = msgpack.packb([1_700_000_000, {"log": "ok"}])
    huge = msgpack.packb([1_700_000_000, {"log": "x" * 200_000}])
    async with running(max_frame_bytes=64 * 1024, max_decompressed_bytes=1 << 20) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(msgpack.packb(["t", gzip.compress(good + huge), {"compressed": "gzip",
                                                                        "chunk": "big"}],
                                   use_bin_type=True))
        assert await closed_by_server(reader) == b""  # no ack: the client resends elsewhere
        writer.close()
        assert closes(srv, "event_too_large") == 1
        assert all(len(r.body["log"]) < 100 for r in srv.collector.records)
