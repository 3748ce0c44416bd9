"""Fuzzing the forward decoder: whatever a client sends, the server neither crashes nor grows.

Every input goes through the same steps a connection runs (framing in reads of random
sizes, frame decoding, carrier modes, gzip, entry conversion). The only exception allowed out
is ``InputProtocolError`` (the connection would be closed); memory traced during one input
must stay within a small multiple of the configured limits.
"""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Iterator

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.errors import InputProtocolError
from shipper.sources.forward.decoder import JsonFramer, MsgpackFramer, parse_request, unpack_frame
from shipper.sources.forward.events import EventConverter

FRAME = 64 * 1024
DECOMPRESSED = 1024 * 1024
# Decoded records take several times their msgpack size; the bound says "no amplification".
MEMORY_BOUND = 48 * 1024 * 1024
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def consume(data: bytes, steps: list[int], json_mode: bool = False) -> int:
    """Run ``data`` through a connection's decoding path; returns the records made."""
    framer = JsonFramer(FRAME) if json_mode else MsgpackFramer(FRAME)
    converter = EventConverter(None, None, {})
    records = 0
    pos = 0
    for step in [*steps, len(data)]:
        piece = data[pos:pos + max(1, step)]
        pos += len(piece)
        if not piece:
            break
        items: Iterator[tuple[object, bytes]]
        if isinstance(framer, JsonFramer):
            items = iter(framer.feed(piece))
        else:
            items = ((unpack_frame(f), f) for f in framer.feed(piece))
        for message, raw in items:
            if not isinstance(message, list):
                continue
            request = parse_request(message, raw, DECOMPRESSED)
            for batch in converter.batches(request, 500):
                records += len(batch)
    return records


def run_bounded(data: bytes, steps: list[int], json_mode: bool = False) -> None:
    tracemalloc.start()
    try:
        try:
            consume(data, steps, json_mode)
        except InputProtocolError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"decoding {len(data)} bytes peaked at {peak} bytes"


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                    st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20))
keys = st.one_of(st.text(max_size=8), st.integers(-2**63, 2**63 - 1))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
times = st.one_of(st.integers(0, 2**32 - 1),
                  st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
                      lambda t: msgpack.ExtType(0, t[0].to_bytes(4, "big")
                                                + t[1].to_bytes(4, "big"))),
                  values)
entries = st.lists(st.tuples(times, st.one_of(values, st.dictionaries(
    st.text(max_size=8), values, max_size=5))).map(list), max_size=6)
options = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "chunk": st.one_of(st.text(max_size=30), st.binary(max_size=8)),
    "size": st.integers(-5, 10**6), "compressed": st.sampled_from(["text", "gzip", "zstd"]),
    "fluent_signal": st.integers(0, 3)}))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A valid-looking request of any carrier mode."""
    tag = draw(st.text(max_size=12))
    mode = draw(st.sampled_from(["message", "forward", "packed", "str", "gzip", "nil"]))
    if mode == "nil":
        return b"\xc0"
    evs = draw(entries)
    option = draw(options)
    if mode == "message":
        t, record = evs[0] if evs else (1, {})
        return msgpack.packb([tag, t, record, option], use_bin_type=True)
    if mode == "forward":
        return msgpack.packb([tag, evs, option], use_bin_type=True)
    blob = b"".join(msgpack.packb(e, use_bin_type=True) for e in evs)
    if mode == "gzip":
        blob = b"".join(gzip.compress(blob[i:i + 7]) for i in range(0, len(blob), 7))
        return msgpack.packb([tag, blob, {"compressed": "gzip"}], use_bin_type=True)
    if mode == "str":
        return b"\x93" + msgpack.packb(tag) + b"\xdb" + len(blob).to_bytes(4, "big") + blob \
            + msgpack.packb(option, use_bin_type=True)
    return msgpack.packb([tag, blob, option], use_bin_type=True)


steps = st.lists(st.integers(1, 4096), max_size=8)


@FUZZ
@given(st.binary(max_size=4096), steps)
def test_random_bytes(data: bytes, reads: list[int]) -> None:
    run_bounded(data, reads)


@FUZZ
@given(st.lists(requests(), min_size=1, max_size=4), steps)
def test_valid_requests_always_decode(frames: list[bytes], reads: list[int]) -> None:
    data = b"".join(frames)
    try:
        consume(data, reads)
    except InputProtocolError as exc:
        # Only what a valid-looking request may legitimately carry is refused.
        assert exc.reason in ("unsupported_compression", "malformed"), exc
    run_bounded(data, reads)


@FUZZ
@given(st.lists(requests(), min_size=1, max_size=3), st.data(), steps)
def test_mutated_requests(frames: list[bytes], data: st.DataObject, reads: list[int]) -> None:
    buf = bytearray(b"".join(frames))
    for _ in range(data.draw(st.integers(1, 8))):
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if action == "flip" and buf:
            buf[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=6))
        elif action == "delete" and buf:
            del buf[at:at + data.draw(st.integers(1, 4))]
        elif action == "truncate":
            del buf[at:]
    run_bounded(bytes(buf), reads)


headers = st.sampled_from([b"\xdc", b"\xdd", b"\xde", b"\xdf", b"\xda", b"\xdb", b"\xc5",
                           b"\xc6", b"\xc9"])


@FUZZ
@given(st.lists(st.tuples(headers, st.integers(0, 2**32 - 1)), min_size=1, max_size=50),
       st.integers(1, 2000), st.booleans())
def test_oversized_declared_lengths(parts: list[tuple[bytes, int]], repeat: int,
                                    inside_entries: bool) -> None:
    """Container, string and ext headers that declare far more than is sent."""
    tail = b""
    for header, n in parts:
        width = 2 if header in (b"\xdc", b"\xde", b"\xda", b"\xc5") else 4
        tail += header + (n % (1 << (8 * width))).to_bytes(width, "big")
    tail *= repeat
    tail = tail[:FRAME * 4]
    if inside_entries:
        blob = msgpack.packb([1, {"a": 1}]) + tail[:FRAME - 64]
        data = msgpack.packb(["t", blob, {"chunk": "c"}], use_bin_type=True)
    else:
        data = b"\x93\xa1t" + tail
    run_bounded(data, [4096] * 4)


@settings(FUZZ, max_examples=15)
@given(st.integers(DECOMPRESSED + 1, 4 * DECOMPRESSED), st.integers(1, 4),
       st.sampled_from([b"\x00", b"\x91\x01", b"A"]))
def test_gzip_bombs_stop_at_the_cap(size: int, members: int, fill: bytes) -> None:
    member = gzip.compress(fill * (size // len(fill) // members + 1))
    blob = member * members
    frame = msgpack.packb(["t", blob, {"compressed": "gzip", "chunk": "c"}], use_bin_type=True)
    if len(frame) > FRAME:
        return  # refused as too large a frame, which the other tests cover
    try:
        consume(frame, [len(frame)])
        raise AssertionError("a bomb over the cap was accepted")
    except InputProtocolError as exc:
        assert exc.reason in ("decompressed_too_large", "malformed")
    run_bounded(frame, [1024])


@FUZZ
@given(st.text(max_size=2000), steps)
def test_json_variant_random_text(text: str, reads: list[int]) -> None:
    run_bounded(("[" + text).encode("utf-8", "surrogatepass"), reads, json_mode=True)
