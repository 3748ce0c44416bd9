"""Reused request-body buffers: right bytes, reuse only after a request ended normally."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from outputs.elasticsearch.bodies import BodyBuffers


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def joined(pool: BodyBuffers, payloads: list[bytes], compress: bool = False) -> bytes:
    async with pool.body(payloads, compress) as body:
        return bytes(body)


def test_a_body_is_the_payloads_joined_even_after_a_longer_one() -> None:
    pool = BodyBuffers()

    async def scenario() -> list[bytes]:
        long = await joined(pool, [b"a" * 100, b"b" * 100])
        short = await joined(pool, [b"x\n", b"y\n"])  # same buffer, stale bytes after it
        empty = await joined(pool, [])
        return [long, short, empty]

    assert run(scenario()) == [b"a" * 100 + b"b" * 100, b"x\ny\n", b""]
    assert len(pool._free) == 1


def test_the_view_is_released_when_the_block_ends() -> None:
    pool = BodyBuffers()

    async def scenario() -> memoryview | bytes:
        async with pool.body([b"abc"]) as body:
            assert bytes(body) == b"abc"
        return body

    body = run(scenario())
    with pytest.raises(ValueError):
        bytes(body)


def test_a_buffer_whose_request_failed_is_never_written_again() -> None:
    pool = BodyBuffers()

    async def scenario() -> tuple[memoryview | bytes, bytes]:
        kept: list[memoryview | bytes] = []
        with pytest.raises(asyncio.CancelledError):
            async with pool.body([b"in flight"]) as body:
                kept.append(body)
                raise asyncio.CancelledError  # the sending thread may still read it
        after = await joined(pool, [b"next request!"])
        return kept[0], after

    first, after = run(scenario())
    assert bytes(first) == b"in flight"  # untouched by the next request
    assert after == b"next request!"


def test_gzip_bodies_and_oversized_buffers() -> None:
    pool = BodyBuffers(keep_max_bytes=1000)

    async def scenario() -> bytes:
        data = await joined(pool, [b"z" * 300] * 2, compress=True)
        await joined(pool, [b"q" * 2000])  # grows the buffer past the limit: dropped
        return data

    assert gzip.decompress(run(scenario())) == b"z" * 600
    assert pool._free == []
