"""Framing and carrier modes, checked against the spec's byte examples (forward spec §1.10)."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import msgpack
import pytest

from shipper.errors import InputProtocolError
from shipper.sources.forward.connection import ack_bytes
from shipper.sources.forward.decoder import (
    MAX_ARRAY_LEN,
    MAX_MAP_KEYS,
    EventTime,
    check_chunk,
    gunzip,
    iter_packed,
    parse_request,
    unpack_frame,
)
from shipper.sources.forward.framing import JsonFramer, MsgpackFramer

MESSAGE_HEX = ("93a76170702e6c6f67d7006553f100075bcd1582a36c6f67a668656c6c6f0a"
               "a673747265616da6737464 6f7574").replace(" ", "")
FORWARD_HEX = ("92a76170702e6c6f6792" "92ce6553f10081a36c6f67a161"
               "92d7006553f1010000000581a36c6f67a162")
ENTRIES_HEX = "92d7006553f1000000000081a36c6f67a16192ce6553f10181a36c6f67a162"
PACKED_HEX = ("93a76170702e6c6f67c41f" + ENTRIES_HEX
              + "82a473697a6502a56368756e6bb8" + b"p8n9gmxTQVC8/nh2wlKKeQ==".hex())
MB = 1024 * 1024


def decode(frame: bytes, limit: int = 64 * MB) -> tuple[str, str, list[list[object]], dict]:
    request = parse_request(unpack_frame(frame), frame, limit)
    return request.tag, request.mode, list(request.entries), request.option


def times(entries: list[list[object]]) -> list[object]:
    return [e[0].ns if isinstance(e[0], EventTime) else e[0] for e in entries]


def test_message_mode_spec_example() -> None:
    frame = bytes.fromhex(MESSAGE_HEX)
    assert len(frame) == 45
    tag, mode, entries, option = decode(frame)
    assert (tag, mode, option) == ("app.log", "message", {})
    assert times(entries) == [1_700_000_000_123_456_789]
    assert entries[0][1] == {"log": "hello\n", "stream": "stdout"}


def test_forward_mode_spec_example_mixes_integer_and_event_time() -> None:
    tag, mode, entries, _ = decode(bytes.fromhex(FORWARD_HEX))
    assert (tag, mode) == ("app.log", "forward")
    assert times(entries) == [1_700_000_000, 1_700_000_001_000_000_005]
    assert [e[1] for e in entries] == [{"log": "a"}, {"log": "b"}]


def test_packed_forward_spec_example_with_chunk() -> None:
    frame = bytes.fromhex(PACKED_HEX)
    assert len(frame) == 80
    _, mode, entries, option = decode(frame)
    assert mode == "packed"
    assert option == {"size": 2, "chunk": "p8n9gmxTQVC8/nh2wlKKeQ=="}
    assert [e[1] for e in entries] == [{"log": "a"}, {"log": "b"}]


def test_packed_entries_as_str32_like_fluentd_sends_them() -> None:
    entries = bytes.fromhex(ENTRIES_HEX) + msgpack.packb([1, {"bin": b"\xff\xfe"}])
    frame = (b"\x93\xa7app.log\xdb" + len(entries).to_bytes(4, "big") + entries
             + msgpack.packb({"chunk": "id==\n", "compressed": "text", "size": 3}))
    _, mode, decoded, option = decode(frame)
    assert mode == "packed" and len(decoded) == 3
    assert option["chunk"] == "id==\n"  # kept byte for byte, newline included
    assert decoded[2][1] == {"bin": b"\xff\xfe"}


def test_ext8_event_time_is_accepted() -> None:
    ext8 = b"\xc7\x08\x00" + (1_700_000_000).to_bytes(4, "big") + (7).to_bytes(4, "big")
    frame = b"\x93\xa1t" + ext8 + msgpack.packb({"a": 1})
    _, _, entries, _ = decode(frame)
    assert times(entries) == [1_700_000_000_000_000_007]


def test_compressed_packed_forward_with_several_gzip_members() -> None:
    a = msgpack.packb([1, {"n": 1}])
    b = msgpack.packb([2, {"n": 2}]) + msgpack.packb([3, {"n": 3}])
    blob = gzip.compress(a) + gzip.compress(b)
    frame = msgpack.packb(["t", blob, {"compressed": "gzip"}], use_bin_type=True)
    _, mode, entries, _ = decode(frame)
    assert mode == "compressed"
    assert [e[1]["n"] for e in entries] == [1, 2, 3]


def test_a_gzip_bomb_stops_at_the_decompressed_limit() -> None:
    bomb = gzip.compress(b"\x00" * (8 * MB), compresslevel=9)
    assert len(bomb) < 20_000
    with pytest.raises(InputProtocolError) as info:
        gunzip(bomb, MB)
    assert info.value.reason == "decompressed_too_large"
    assert len(gunzip(bomb, 8 * MB)) == 8 * MB


@pytest.mark.parametrize("blob", [b"not gzip", gzip.compress(b"abc")[:-4], b""])
def test_broken_gzip_is_malformed(blob: bytes) -> None:
    if not blob:
        assert gunzip(gzip.compress(b""), 10) == b""
        return
    with pytest.raises(InputProtocolError):
        gunzip(blob, MB)


def test_unknown_compression_is_refused() -> None:
    frame = msgpack.packb(["t", b"x", {"compressed": "lz4"}], use_bin_type=True)
    with pytest.raises(InputProtocolError) as info:
        decode(frame)
    assert info.value.reason == "unsupported_compression"


@pytest.mark.parametrize("message", [
    ["only-a-tag"],
    [1, 2, {}],
    ["t", b"\x92\x01", {}],  # entries end in the middle of an event
    ["t", 1, {}, "option-not-a-map"],
])
def test_structurally_broken_requests_are_malformed(message: list[object]) -> None:
    frame = msgpack.packb(message, use_bin_type=True)
    with pytest.raises(InputProtocolError):
        decode(frame)


def test_the_framer_finds_frames_across_any_split() -> None:
    frames = [bytes.fromhex(MESSAGE_HEX), bytes.fromhex(FORWARD_HEX), b"\xc0",
              bytes.fromhex(PACKED_HEX)]
    stream = b"".join(frames)
    for step in (1, 2, 7, 64, len(stream)):
        framer = MsgpackFramer(1024)
        got: list[bytes] = []
        for i in range(0, len(stream), step):
            got += framer.feed(stream[i:i + step])
        assert got == frames
        assert framer.buffered == 0


def test_a_frame_over_the_limit_is_refused_before_it_completes() -> None:
    big = msgpack.packb(["t", b"x" * 5000], use_bin_type=True)
    framer = MsgpackFramer(4096)
    with pytest.raises(InputProtocolError) as info:
        for i in range(0, len(big), 1000):
            framer.feed(big[i:i + 1000])
    assert info.value.reason == "frame_too_large"


def test_frames_at_the_limit_pass_even_when_the_next_one_follows_in_the_same_read() -> None:
    first = msgpack.packb(["t", b"x" * 4000], use_bin_type=True)
    framer = MsgpackFramer(len(first))
    second = msgpack.packb(["t", 1, {}])
    assert framer.feed(first + second) == [first, second]


def test_garbage_bytes_are_malformed() -> None:
    with pytest.raises(InputProtocolError):
        MsgpackFramer(1024).feed(b"\xc1\xc1\xc1")


def test_json_variant_frames_values_across_reads() -> None:
    values = [["app", 1700000000, {"log": "é"}], ["app", [[1, {"a": 1}]], {"chunk": "c"}]]
    stream = "\n".join(json.dumps(v, ensure_ascii=False) for v in values).encode()
    framer = JsonFramer(1024)
    got: list[object] = []
    for i in range(0, len(stream), 5):
        got += [v for v, _ in framer.feed(stream[i:i + 5])]
    assert got == values
    assert framer.buffered == 0


def test_json_garbage_and_oversize_are_refused() -> None:
    with pytest.raises(InputProtocolError):
        JsonFramer(1024).feed(b'["a", 1, {"x": nope}]')
    with pytest.raises(InputProtocolError) as info:
        JsonFramer(16).feed(b'["a", "' + b"x" * 32)
    assert info.value.reason == "frame_too_large"


@pytest.mark.parametrize("tail", [b"\x92\x01", b"\xc1", b"\xdd\xff\xff\xff\xff"])
def test_packed_entries_before_a_broken_one_are_yielded_then_the_error(tail: bytes) -> None:
    good = [[1, {"log": "a"}], [2, {"log": "b", "n": [1, 2, {"x": None}]}]]
    blob = b"".join(msgpack.packb(e) for e in good) + tail
    entries = iter_packed(blob)
    assert [next(entries), next(entries)] == good
    with pytest.raises(InputProtocolError):
        next(entries)


def test_packed_entries_decode_exactly_as_packed() -> None:
    entries = [[i, {"log": "x" * i, "k": {"a": [i, -i, 1.5]}, "b": b"\x00\xff"}]
               for i in range(300)]
    blob = b"".join(msgpack.packb(e, use_bin_type=True) for e in entries)
    assert list(iter_packed(blob)) == entries
    assert list(iter_packed(b"")) == []


@pytest.mark.parametrize("chunk", ["p8n9gmxTQVC8/nh2wlKKeQ==\n", "h\udcffllo", b"\x00\xff", 0, -1,
                                   2**64 - 1, -(2**63), "x" * 1024])
def test_chunk_ids_that_round_trip_are_accepted_and_echoed(chunk: object) -> None:
    check_chunk(chunk, json_mode=False)
    ack = msgpack.unpackb(ack_bytes(chunk, json_mode=False), raw=False,
                          unicode_errors="surrogateescape")
    assert ack == {"ack": chunk}


@pytest.mark.parametrize("chunk", [EventTime(0), msgpack.ExtType(0, b"\0" * 8),
                                   msgpack.ExtType(9, b""), [1], {"a": 1}, 1.5, True, False,
                                   2**64, -(2**63) - 1, "x" * 1025, b"x" * 1025])
def test_chunk_ids_that_cannot_be_echoed_are_refused(chunk: object) -> None:
    with pytest.raises(InputProtocolError) as exc:
        check_chunk(chunk, json_mode=False)
    assert exc.value.reason == "invalid_chunk"


def test_the_event_time_chunk_frame_is_refused_not_crashing_the_ack() -> None:
    frame = bytes.fromhex("94a174ce6553f10081a1610181a56368756e6bd7000000000000000000")
    request = parse_request(unpack_frame(frame), frame, MB)
    assert isinstance(request.chunk, EventTime)
    with pytest.raises(InputProtocolError):
        check_chunk(request.chunk, json_mode=False)


@pytest.mark.parametrize(("chunk", "ok"), [("abc", True), ("é", True), (7, True),
                                           ("\ud800", False), ("a\udcffb", False),
                                           (b"abc", False), ([1], False), (1.5, False)])
def test_json_chunk_ids_must_be_unicode_text_or_integers(chunk: object, ok: bool) -> None:
    if ok:
        check_chunk(chunk, json_mode=True)
        assert json.loads(ack_bytes(chunk, json_mode=True)) == {"ack": chunk}
    else:
        with pytest.raises(InputProtocolError):
            check_chunk(chunk, json_mode=True)


def test_containers_declaring_more_than_the_bounds_are_refused() -> None:
    many_keys = b"\xdf" + (MAX_MAP_KEYS + 1).to_bytes(4, "big") + b"\x00\x00" * (MAX_MAP_KEYS + 1)
    with pytest.raises(InputProtocolError):
        unpack_frame(b"\x93\xa1t\x01" + many_keys)
    long_array = b"\xdd" + (MAX_ARRAY_LEN + 1).to_bytes(4, "big") + b"\x00" * (MAX_ARRAY_LEN + 1)
    with pytest.raises(InputProtocolError):
        unpack_frame(b"\x92\xa1t" + long_array)
    with pytest.raises(InputProtocolError):
        list(iter_packed(msgpack.packb([1, {"a": 1}]) + long_array))


def test_a_framer_does_not_keep_the_buffer_of_a_large_frame_it_finished() -> None:
    """An idle connection that once sent a large request must not hold that much memory."""
    frame = msgpack.packb(["t", b"x" * (4 * MB), {"chunk": "big"}], use_bin_type=True)
    framer = MsgpackFramer(8 * MB)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for at in range(0, len(frame), 64 * 1024):
            for done in framer.feed(frame[at:at + 64 * 1024]):
                assert len(done) == len(frame)
                del done
        assert framer.buffered == 0
        retained = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert retained < 2 * MB, f"{retained} bytes kept after the frame was handed out"
    small = msgpack.packb(["t", [[1, {"a": 1}]]])
    assert framer.feed(small) == [small]  # and the framer still works


class CountingDecoder(json.JSONDecoder):
    """Counts parse attempts: a framer must not re-parse a value that is still arriving."""

    calls = 0

    def raw_decode(self, s: str, idx: int = 0) -> tuple[object, int]:
        CountingDecoder.calls += 1
        return super().raw_decode(s, idx)


def test_a_large_json_request_in_many_reads_is_parsed_once() -> None:
    """Each read used to re-parse the whole buffer: 6 MB in 64 KiB reads blocked for 4 s."""
    message = ["t", [[1, {"a": "x]}" * 20, "b": "\\\"{["}] for _ in range(2000)], {"chunk": "c"}]
    data = json.dumps(message).encode()
    framer = JsonFramer(8 * MB)
    framer._decoder = CountingDecoder()  # counting is the point
    CountingDecoder.calls = 0
    got = []
    for at in range(0, len(data), 1000):
        got += framer.feed(data[at:at + 1000])
    assert [value for value, _ in got] == [message]
    assert CountingDecoder.calls == 1


@pytest.mark.parametrize("text", [
    '["t", 1, {"s": "a\\"]}\\\\"}]', '["t", 1, {"s": "[[{{"}]', '["t", [[1, {"k": "\\u00e9"}]]]',
    '  ["t", 1, {}]\n\n', '[]'])
def test_json_values_split_at_every_byte_come_out_whole(text: str) -> None:
    data = (text + "\n" + text).encode()
    for cut in range(1, len(data)):
        framer = JsonFramer(MB)
        got = framer.feed(data[:cut]) + framer.feed(data[cut:])
        assert [value for value, _ in got] == [json.loads(text)] * 2, cut
        assert framer.buffered == 0


def test_json_garbage_after_a_value_fails_after_handing_out_the_value() -> None:
    framer = JsonFramer(MB)
    got = framer.feed(b'["t", 1, {"a": 1}] ["t", 1, {]}')
    assert [value for value, _ in got] == [["t", 1, {"a": 1}]]
    assert framer.failed is not None
    with pytest.raises(InputProtocolError):
        JsonFramer(MB).feed(b"]")


def _empty_maps(n: int) -> bytes:
    """An array32 of ``n`` empty maps: 1 byte each on the wire, ~64 bytes each decoded."""
    return b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n


def _bomb_entry(arrays: int, each: int) -> bytes:
    return (b"\x92\xce" + (1_700_000_000).to_bytes(4, "big") + b"\xdd" + arrays.to_bytes(4, "big")
            + _empty_maps(each) * arrays)


def test_an_event_of_many_tiny_values_is_refused_with_bounded_memory() -> None:
    """A gzip payload of arrays of empty maps used to decode to gigabytes; now the event is
    refused after about twice the value bound, and nothing of it is yielded."""
    entry = _bomb_entry(60, 4096)  # 245,760 values in 246 KB
    frame = msgpack.packb(["bomb", gzip.compress(entry), {"compressed": "gzip", "chunk": "c"}],
                          use_bin_type=True)
    tracemalloc.start()
    try:
        request = parse_request(unpack_frame(frame), frame, 64 * MB, max_values=8192)
        with pytest.raises(InputProtocolError) as err:
            list(request.entries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.reason == "too_many_values"
    # the inflated payload and the skip pass's copy, plus at most ~16Ki decoded objects
    assert peak < 3 * len(entry) + 4 * MB, peak


def test_a_container_declaring_more_than_the_value_bound_is_refused_before_decoding() -> None:
    entry = _bomb_entry(1, 100_000)
    good = msgpack.packb([1, {"a": 1}])
    entries = iter_packed(good + entry, max_values=65536)
    assert next(entries) == [1, {"a": 1}]
    with pytest.raises(InputProtocolError) as err:
        next(entries)
    assert err.value.reason == "too_many_values"


def test_a_large_event_within_the_bound_is_decoded_as_usual() -> None:
    """Entries larger than the bound in bytes take the counted decode: same values."""
    entries = [[1, {"log": "x" * 100_000, "n": list(range(100))}], [2, {"a": "b"}],
               [3, {"l": [{}] * 1000}]]
    blob = b"".join(msgpack.packb(e) for e in entries)
    assert list(iter_packed(blob, max_values=2000)) == entries
    with pytest.raises(InputProtocolError) as err:
        list(iter_packed(blob, max_values=999))
    assert err.value.reason == "too_many_values"


def test_a_forward_request_of_many_tiny_values_is_refused() -> None:
    frame = msgpack.packb(["t", [[1, [{}] * 50_000]] * 4], use_bin_type=True)
    with pytest.raises(InputProtocolError) as err:
        unpack_frame(frame, max_values=100_000)
    assert err.value.reason == "too_many_values"
    assert len(unpack_frame(frame, max_values=200_100)[1]) == 4  # within the bound: decoded


def test_flush_markers_split_large_payloads_and_keep_document_ids() -> None:
    """Batches end every FLUSH_BYTES of entries; markers are not events and take no index."""
    from shipper.sources.forward.decoder import FLUSH, FLUSH_BYTES
    from shipper.sources.forward.events import EventConverter

    entries = [[1_700_000_000, {"log": "x" * 1000, "i": i}] for i in range(3000)]
    blob = b"".join(msgpack.packb(e) for e in entries)
    assert len(blob) > 4 * FLUSH_BYTES
    decoded = list(iter_packed(blob))
    markers = sum(1 for e in decoded if e is FLUSH)
    assert len(blob) // FLUSH_BYTES <= markers <= len(blob) // FLUSH_BYTES + 1
    assert [e for e in decoded if e is not FLUSH] == entries
    frame = msgpack.packb(["t", blob, {"chunk": "c"}], use_bin_type=True)
    request = parse_request(unpack_frame(frame), frame, 64 * MB)
    batches = list(EventConverter(None, None, {}).batches(request, 2000))
    assert len(batches) == markers + 1
    for batch in batches:
        encoded = sum(len(msgpack.packb([1_700_000_000, r.body])) for r in batch)
        assert 0 < encoded <= FLUSH_BYTES
    records = [r for b in batches for r in b]
    assert [r.body["i"] for r in records] == list(range(3000))
    assert records[-1].doc_id is not None and records[-1].doc_id.endswith(f"-{2999:x}")


def test_a_payload_of_skipped_events_still_ends_a_batch_at_each_marker() -> None:
    """Events that are all invalid make no records, but the caller still gets an (empty)
    batch every FLUSH_BYTES to let the event loop run between slices."""
    from shipper.sources.forward.events import EventConverter

    entry = b"\x92\x01" + _empty_maps(50_000)  # a record that is not a map: skipped
    frame = msgpack.packb(["t", entry * 40], use_bin_type=True)
    request = parse_request(unpack_frame(frame), frame, 64 * MB)
    converter = EventConverter(None, None, {})
    batches = list(converter.batches(request, 2000))
    assert batches and all(b == [] for b in batches)
    assert len(batches) >= 3
    assert converter.skipped["invalid_event"] == 40


def test_a_large_forward_frame_is_refused_with_bounded_memory() -> None:
    frame = b"\x92\xa1t\x98" + (b"\x92\x01" + _empty_maps(1 << 17)) * 8  # 1 Mi empty maps
    tracemalloc.start()
    try:
        with pytest.raises(InputProtocolError) as err:
            unpack_frame(frame, max_values=1 << 17)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.reason == "too_many_values"
    # ~2 * 128 Ki objects of ~64 bytes, not the ~70 MB the whole frame decodes to
    assert peak < 24 * MB, peak


def test_a_packed_event_larger_than_the_event_bound_is_refused() -> None:
    """One inflated payload must not become one document of tens of MB: an event is at most
    what a Forward-mode frame could carry."""
    small = msgpack.packb([1, {"log": "a"}])
    big = msgpack.packb([2, {"log": "x" * 200_000}])
    assert list(iter_packed(small + big, max_event_bytes=200_100)) == [
        [1, {"log": "a"}], [2, {"log": "x" * 200_000}]]
    entries = iter_packed(small + big + small, max_event_bytes=100_000)
    assert next(entries) == [1, {"log": "a"}]
    with pytest.raises(InputProtocolError) as err:
        next(entries)
    assert err.value.reason == "event_too_large"
    frame = msgpack.packb(["t", gzip.compress(small + big), {"compressed": "gzip"}],
                          use_bin_type=True)
    request = parse_request(unpack_frame(frame), frame, 64 * MB, max_event_bytes=100_000)
    with pytest.raises(InputProtocolError):
        list(request.entries)


def test_a_large_forward_request_decodes_lazily_to_the_same_records() -> None:
    """split_forward gives the records the whole-frame decode gives (invalid UTF-8, binary,
    EventTime, options, chunk ids), and refuses an event over the bounds up front."""
    from shipper.sources.forward.decoder import split_forward
    from shipper.sources.forward.events import EventConverter

    et = msgpack.ExtType(0, (1_700_000_000).to_bytes(4, "big") + (7).to_bytes(4, "big"))
    events = [[et, {"log": "x" * 300, "b": b"\xff\x00", "n": [1, {"k": "v"}], "i": i}]
              for i in range(400)]
    events.append([1_700_000_001, {"big": "y" * 70_000}])  # takes the counted decode
    events.append("not an event")
    packed = msgpack.packb(["app.t", events, {"chunk": "c1"}], use_bin_type=True)
    bad_utf8 = b"\xa3a\xffb"  # fixstr holding invalid UTF-8
    frame = packed.replace(b"\xa1b\xc4\x02\xff\x00", b"\xa1b" + bad_utf8, 1)
    assert frame != packed and len(frame) > 65_536

    def records(message: object) -> list[tuple[object, ...]]:
        request = parse_request(message, frame, 64 * MB)  # type: ignore[arg-type]
        out = []
        for batch in EventConverter(None, None, {}).batches(request, 100):
            out += [(r.tag, r.time_ns, r.doc_id, r.body) for r in batch]
        return out

    lazy = split_forward(frame, 65_536, 8 * MB)
    assert lazy is not None
    got = records(lazy)
    assert len(got) == 401
    assert got == records(unpack_frame(frame))
    assert got[0][3]["b"] == "a\\xffb"
    # bounds apply per event: size before anything is decoded, values at that event
    with pytest.raises(InputProtocolError) as err:
        split_forward(frame, 65_536, 60_000)
    assert err.value.reason == "event_too_large"
    bomb = b"\x92\xa1t\x98" + (b"\x92\x01" + _empty_maps(1 << 17)) * 8
    lazy_bomb = split_forward(bomb, 65_536, 8 * MB)
    assert lazy_bomb is not None
    with pytest.raises(InputProtocolError) as err:
        list(parse_request(lazy_bomb, bomb, 64 * MB).entries)
    assert err.value.reason == "too_many_values"
    # other shapes are left to the whole-frame decode
    assert split_forward(msgpack.packb(["t", b"blob" * 20_000]), 65_536, 8 * MB) is None
