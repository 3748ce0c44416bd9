"""Hostile frames against the real forward source, each followed by good clients.

After every hostile connection a fluent-logger (PyPI) sender on its own long-lived
connection must get its record through, and an acking client its ack, within 1 s; the
server task must still be running. The default run sends a fixed set of hostile frames;
the ``slow`` run adds hundreds of randomly mutated ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import time
from collections.abc import Iterator

import msgpack
import pytest
from fluent import sender

from tests.integration.sources.forward.conftest import Running, read_replies, running, wait_for

ET = msgpack.ExtType(0, (1_700_000_000).to_bytes(4, "big") + (5).to_bytes(4, "big"))


def deep(depth: int) -> bytes:
    return b"\x93\xa1t\x01" + b"\x81\xa1n" * depth + b"\x01"


def packed(entries: bytes, option: object = None) -> bytes:
    return msgpack.packb(["t", entries, option], use_bin_type=True)


ENTRY = msgpack.packb([ET, {"log": "x"}])
HOSTILE: list[bytes] = [
    bytes.fromhex("94a174ce6553f10081a1610181a56368756e6bd7000000000000000000"),
    b'["t", 1700000000, {"a": 1}, {"chunk": "\\ud800"}]',
    b'["t", 1700000000, {"a": 1}, {"chunk": "\xff"}]',
    b'["t", 1, ' + b'{"n": ' * 700 + b"1" + b"}" * 700 + b"]",
    deep(600),
    deep(2000),  # past msgpack's own stack
    msgpack.packb(["t", [[1, {"n": [[[[[[[[[[[[[[[[[[[[[[b"\xff"]]]]]]]]]]]]]]]]]]]]]]}]],
                  {"chunk": "deep-ok"}], use_bin_type=True),
    msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": [1, {"x": ET}]}], use_bin_type=True),
    msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": 1.5}], use_bin_type=True),
    msgpack.packb(["t", [[1, {"a": 1}]], {"chunk": msgpack.ExtType(127, b"\0" * 12)}],
                  use_bin_type=True),
    b"\x93\xa1t\xdd\xff\xff\xff\xff",  # an array declaring 4 G elements
    b"\x93\xa1t\xdf\xff\xff\xff\xff" + b"\x01\x01" * 100,  # a map declaring 4 G keys
    b"\x93\xa1t\xc6\x7f\xff\xff\xff",  # 2 GiB of binary announced
    b"\xc1" * 16,  # never-used msgpack byte
    packed(ENTRY + b"\xdd\xff\xff\xff\xff", {"chunk": "tail"}),
    packed(gzip.compress(b"\x00" * 200_000) * 10, {"compressed": "gzip", "chunk": "b"}),
    packed(b"\x1f\x8b" + b"\x00" * 30, {"compressed": "gzip"}),
    packed(ENTRY, {"compressed": "zstd", "chunk": "z"}),
    msgpack.packb([{"tag": 1}, [[1, {"a": 1}]]], use_bin_type=True),
    msgpack.packb(["t", [[ET, {1: {2: {3: ET}}}]], {"chunk": 2**64 - 1}], use_bin_type=True),
    msgpack.packb(["PING", "x", "y", "z", "", ""], use_bin_type=True),
    b"[" * 5000,
    b'{"a":' * 300,
    bytes(range(256)),
]


def mutations(seed: int, count: int) -> Iterator[bytes]:
    """``count`` hostile frames: the fixed ones and valid requests, randomly damaged."""
    rng = random.Random(seed)
    valid = [*HOSTILE, packed(ENTRY * 5, {"chunk": "v"}),
             msgpack.packb(["t", ET, {"a": "b"}, {"chunk": "m"}], use_bin_type=True),
             packed(gzip.compress(ENTRY * 3), {"compressed": "gzip", "chunk": "g"})]
    for _ in range(count):
        buf = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(buf) + 1)
            action = rng.randrange(4)
            if action == 0 and buf:
                buf[min(at, len(buf) - 1)] = rng.randrange(256)
            elif action == 1:
                buf[at:at] = rng.randbytes(rng.randint(1, 8))
            elif action == 2:
                buf[at:at] = rng.choice([b"\xdd\xff\xff\xff\xff", b"\xd7\x00", b"\x91" * 40,
                                         b"\xdf\x00\x01\x00\x00", b"\xc7\x08\x00"])
            else:
                del buf[at:at + rng.randint(1, 4)]
        yield bytes(buf)


async def attack(srv: Running, frame: bytes) -> None:
    """One hostile connection: send, give the server a moment to close it, close it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(frame)
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(0.3):
                while await reader.read(65536):
                    pass
    finally:
        writer.close()


async def good_clients_served(srv: Running, logger: sender.FluentSender, n: int) -> None:
    """The long-lived fluent-logger connection and a new acking one both get through."""
    before = len(srv.collector.records)
    started = time.monotonic()
    assert await asyncio.to_thread(logger.emit, "good", {"n": n}), logger.last_error
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(msgpack.packb(["good", [[ET, {"acked": n}]], {"chunk": f"g{n}"}],
                                   use_bin_type=True))
        assert await read_replies(reader, 1, timeout=1.0) == [{"ack": f"g{n}"}]
    finally:
        writer.close()
    await wait_for(lambda: len(srv.collector.records) >= before + 2, timeout=1.0,
                   what="the fluent-logger record")
    assert time.monotonic() - started < 1.5
    assert not srv.task.done(), "the forward source stopped"


async def run_attacks(frames: list[bytes] | Iterator[bytes]) -> Running:
    async with running(frame_timeout_secs=2.0) as srv:
        logger = sender.FluentSender("app", host="127.0.0.1", port=srv.port)
        try:
            for n, frame in enumerate(frames):
                await attack(srv, frame)
                await good_clients_served(srv, logger, n)
        finally:
            await asyncio.to_thread(logger.close)
        good = [r for r in srv.collector.records if r.tag in ("app.good", "good")]
        assert len(good) == 2 * (n + 1)
        assert srv.counter("shipper_forward_connections_closed_total",
                           reason="internal_error") == 0
        return srv


async def test_fixed_hostile_frames_never_stop_good_clients() -> None:
    srv = await run_attacks(HOSTILE)
    closed = srv.counter  # every kind of refusal was seen and counted
    for reason in ("invalid_chunk", "too_deep", "malformed"):
        assert closed("shipper_forward_connections_closed_total", reason=reason) > 0, reason


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
async def test_random_hostile_frames_never_stop_good_clients(seed: int) -> None:
    await run_attacks(mutations(seed, 300))
