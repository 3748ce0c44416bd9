"""Fuzzing the forward decoder: whatever a client sends, the server neither crashes nor grows.

Every input goes through the same steps a connection runs (framing in reads of random
sizes, frame decoding, carrier modes, gzip, entry conversion). The only exception allowed out
is ``InputProtocolError`` (the connection would be closed); every record made is well-formed
(a map with text keys that serialises as strict JSON, a time in range); every chunk id that
passes the check can be acknowledged; memory traced during one input must stay within a
small multiple of the configured limits.
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import msgpack
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.errors import InputProtocolError
from shipper.record import Record
from shipper.sources.forward.connection import ack_bytes
from shipper.sources.forward.decoder import (
    check_chunk,
    forward_shape,
    parse_request,
    split_forward,
    unpack_frame,
)
from shipper.sources.forward.events import MAX_NS, EventConverter
from shipper.sources.forward.framing import JsonFramer, MsgpackFramer

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
            items = ((decode_frame(f), f) for f in framer.feed(piece))
        for message, raw in items:
            if not isinstance(message, list):
                continue
            request = parse_request(message, raw, DECOMPRESSED)
            if request.chunk is not None:
                check_chunk(request.chunk, json_mode)
                assert ack_bytes(request.chunk, json_mode)
            for batch in converter.batches(request, 500):
                for record in batch:
                    check_record(record)
                records += len(batch)
    return records


def decode_frame(frame: bytes) -> Any:
    """As a connection decodes a frame, except that every Forward-mode frame (not only those
    over max_values_per_record bytes) takes the event-at-a-time path, to fuzz it too."""
    if forward_shape(frame) is not None:
        message = split_forward(frame, 65_536, FRAME)
        if message is not None:
            return message
    return unpack_frame(frame)


def check_record(record: Record) -> None:
    """What every output relies on: a text-keyed map that is valid JSON, a sane time."""
    assert type(record.body) is dict
    assert all(type(k) is str for k in record.body)
    orjson.dumps(record.body)  # raises on lone surrogates, non-str keys, unknown types
    assert 0 < record.time_ns <= MAX_NS
    assert type(record.tag) is str and record.tag


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
event_time = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
    lambda t: msgpack.ExtType(0, t[0].to_bytes(4, "big") + t[1].to_bytes(4, "big")))


def deep(leaf: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``leaf`` wrapped in 1-80 maps and lists: around and past the nesting bound."""
    def wrap(args: tuple[Any, list[bool]]) -> Any:
        value, kinds = args
        for as_list in kinds:
            value = [value] if as_list else {"k": value}
        return value
    return st.tuples(leaf, st.lists(st.booleans(), min_size=1, max_size=80)).map(wrap)


entries = st.lists(st.tuples(times, st.one_of(values, st.dictionaries(
    st.text(max_size=8), values, max_size=5))).map(list), max_size=6)
# Records nested around and past the bound, as a hostile client sends them.
hostile_entries = st.lists(st.tuples(times, st.one_of(values, st.dictionaries(
    st.text(max_size=8), st.one_of(values, deep(scalars)), max_size=5))).map(list),
    max_size=6)


def options_with(chunks: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "chunk": chunks,
        "size": st.integers(-5, 10**6), "compressed": st.sampled_from(["text", "gzip", "zstd"]),
        "fluent_signal": st.integers(0, 3)}))


options = options_with(st.one_of(st.text(max_size=30), st.binary(max_size=8)))
# Chunk ids of every msgpack type: acknowledged when they can be echoed, else refused.
hostile_options = options_with(st.one_of(
    st.text(max_size=30), st.binary(max_size=8), st.integers(-2**63, 2**64 - 1), st.floats(),
    st.booleans(), event_time,
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))


@st.composite
def requests(draw: st.DrawFn, hostile: bool = False) -> bytes:
    """A valid-looking request of any carrier mode (``hostile``: odd chunk ids and deep
    records too)."""
    tag = draw(st.text(max_size=12))
    mode = draw(st.sampled_from(["message", "forward", "packed", "str", "gzip", "nil"]))
    if mode == "nil":
        return b"\xc0"
    evs = draw(hostile_entries if hostile else entries)
    option = draw(hostile_options if hostile else options)
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
@given(st.lists(requests(hostile=True), min_size=1, max_size=3), st.data(), steps)
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


@FUZZ
@given(st.lists(requests(hostile=True), min_size=1, max_size=4), steps)
def test_hostile_requests_are_records_or_protocol_errors(frames: list[bytes],
                                                        reads: list[int]) -> None:
    data = b"".join(frames)
    try:
        consume(data, reads)
    except InputProtocolError as exc:
        assert exc.reason in ("unsupported_compression", "malformed", "invalid_chunk",
                              "too_deep"), exc


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


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10)


@st.composite
def json_requests(draw: st.DrawFn) -> bytes:
    """The JSON variant in Message and Forward mode, with chunk ids of any JSON type."""
    tag = draw(st.text(max_size=8))
    record = draw(st.one_of(st.dictionaries(st.text(max_size=6), json_values, max_size=4),
                            deep(json_scalars), json_values))
    time = draw(st.one_of(st.integers(0, 2**40), st.floats(0, 2**34), json_values))
    option = draw(st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "chunk": st.one_of(st.text(max_size=12), json_values)})))
    message: list[Any] = (
        [tag, time, record, option] if draw(st.booleans()) else [tag, [[time, record]], option])
    # ensure_ascii: lone surrogates travel as \udXXX escapes, as a hostile client sends them
    text = json.dumps(message, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


@FUZZ
@given(st.lists(json_requests(), min_size=1, max_size=3), steps)
def test_json_variant_requests(frames: list[bytes], reads: list[int]) -> None:
    run_bounded(b"\n".join(frames), reads, json_mode=True)


@FUZZ
@given(st.lists(json_requests(), min_size=1, max_size=2), st.data(), steps)
def test_json_variant_mutated(frames: list[bytes], data: st.DataObject,
                              reads: list[int]) -> None:
    buf = bytearray(b"".join(frames))
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if buf and data.draw(st.booleans()):
            buf[at] = data.draw(st.sampled_from(list(b'[]{}",:\\ \xff0a')))
        else:
            buf[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    run_bounded(bytes(buf), reads, json_mode=True)
