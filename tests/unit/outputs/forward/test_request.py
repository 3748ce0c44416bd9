"""Payloads, PackedForward messages and PING, byte for byte where the spec gives bytes."""

from __future__ import annotations

import gzip

import msgpack
import pytest

from outputs.forward.request import (
    EntryEncoder,
    build_messages,
    chunk_id,
    decode_payload,
    event_time,
    ping,
    split_payload,
)
from shipper.record import Record

NS = 1_000_000_000


def test_event_time_is_fixext8_like_the_spec_example() -> None:
    packed = msgpack.packb(event_time(1_700_000_000 * NS + 123_456_789))
    assert packed == bytes.fromhex("d7006553f100075bcd15")
    assert event_time(2**32 * NS) == 2**32  # beyond uint32 seconds: plain integer


def test_a_payload_is_the_tag_then_the_entry() -> None:
    [payload] = EntryEncoder().encode([Record({"log": "a"}, 1_700_000_000 * NS, "app.log")])
    tag, entry = split_payload(payload)
    assert tag == msgpack.packb("app.log")
    assert entry == bytes.fromhex("92d7006553f1000000000081a36c6f67a161")
    assert decode_payload(payload) == {"tag": "app.log", "time": 1_700_000_000.0,
                                       "record": {"log": "a"}}


def test_time_as_integer_and_unpackable_values() -> None:
    record = Record({"s": "\udcff", "obj": object(), 1: 2, "big": 2**70}, 5 * NS, "t")
    [payload] = EntryEncoder(time_as_integer=True).encode([record])
    body = decode_payload(payload)
    assert body["time"] == 5
    assert body["record"]["1"] == 2 and body["record"]["s"] == "\\udcff"
    assert body["record"]["big"] == str(2**70) and body["record"]["obj"].startswith("<object")


@pytest.mark.parametrize("length", [3, 31, 32, 255, 256, 70000])
def test_split_payload_reads_every_string_header(length: int) -> None:
    tag = "x" * length
    [payload] = EntryEncoder().encode([Record({}, NS, tag)])
    assert msgpack.unpackb(split_payload(payload)[0]) == tag


def test_messages_group_by_tag_and_carry_size_and_a_stable_chunk() -> None:
    enc = EntryEncoder()
    payloads = enc.encode([Record({"i": i}, NS, "a" if i % 2 else "b") for i in range(5)])
    messages = build_messages(payloads)
    assert [m.indices for m in messages] == [[0, 2, 4], [1, 3]]
    first = msgpack.unpackb(messages[0].data, raw=False, strict_map_key=False)
    assert first[0] == "b" and isinstance(first[1], bytes)
    assert first[2] == {"size": 3, "chunk": messages[0].chunk}
    assert len(messages[0].chunk) == 24  # base64 of 16 bytes
    assert [m.chunk for m in build_messages(payloads)] == [m.chunk for m in messages]
    assert build_messages(payloads[:2])[0].chunk != messages[0].chunk


def test_gzip_messages_decompress_to_the_same_entries() -> None:
    payloads = EntryEncoder().encode([Record({"i": i}, NS, "t") for i in range(50)])
    [plain] = build_messages(payloads)
    [packed] = build_messages(payloads, compress=True)
    a = msgpack.unpackb(plain.data, raw=False)
    b = msgpack.unpackb(packed.data, raw=False)
    assert b[2]["compressed"] == "gzip" and gzip.decompress(b[1]) == a[1]
    assert packed.chunk == plain.chunk
    assert packed.data == build_messages(payloads, compress=True)[0].data  # deterministic


def test_without_acks_no_chunk_is_sent() -> None:
    [message] = build_messages(EntryEncoder().encode([Record({}, NS, "t")]), require_ack=False)
    assert message.chunk is None
    assert "chunk" not in msgpack.unpackb(message.data)[2]


def test_ping_matches_the_spec_example() -> None:
    data, salt = ping("client.example", bytes(range(16)), bytes(range(16, 32)), "secret",
                      "alice", "pass", salt="0123456789abcdef0123456789abcdef")
    message = msgpack.unpackb(data)
    assert message[:3] == ["PING", "client.example", salt]
    assert message[3].startswith("3a680037d3979b4f") and message[3].endswith("e171b30df")
    assert message[4] == "alice" and message[5].startswith("9f48c52936da0124")
    no_user, _ = ping("c", b"n", b"", "k", "alice", "pass")
    assert msgpack.unpackb(no_user)[4:] == ["", ""]
    assert chunk_id(b"t", b"e") == chunk_id(b"t", b"e") != chunk_id(b"u", b"e")


def test_the_document_id_travels_in_the_id_key_without_touching_the_shared_body() -> None:
    body = {"log": "a"}
    record = Record(body, 5 * NS, "t", "0123abcd-1f")
    [payload] = EntryEncoder(id_key="_shipper_id").encode([record])
    assert decode_payload(payload)["record"] == {"log": "a", "_shipper_id": "0123abcd-1f"}
    assert body == {"log": "a"}
    [plain] = EntryEncoder().encode([record])
    assert decode_payload(plain)["record"] == {"log": "a"}
