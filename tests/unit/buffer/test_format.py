"""The segment format: headers, framing and what a scan makes of damage."""

import struct
import zlib

import pytest

from shipper.buffer.disk.format import (
    HEADER_SIZE,
    MAGIC,
    RECORD_OVERHEAD,
    VERSION,
    HeaderError,
    NewerFormatError,
    encode_header,
    frame,
    read_header,
    scan,
    verified_payloads,
)


def segment(payloads: list[bytes]) -> bytearray:
    return bytearray(encode_header() + frame(payloads))


def offsets(payloads: list[bytes]) -> list[int]:
    """Where each record starts in ``segment(payloads)``."""
    out, off = [], HEADER_SIZE
    for p in payloads:
        out.append(off)
        off += RECORD_OVERHEAD + len(p)
    return out


PAYLOADS = [f'{{"log":"line {i}"}}\n'.encode() * (1 + i % 3) for i in range(10)]


def test_a_header_round_trips_and_names_the_version():
    header = encode_header()
    assert len(header) == HEADER_SIZE
    assert header.startswith(MAGIC)
    assert read_header(header) == VERSION


def test_a_newer_version_with_a_valid_checksum_is_refused_not_treated_as_garbage():
    with pytest.raises(NewerFormatError) as exc:
        read_header(encode_header(version=VERSION + 1))
    assert exc.value.version == VERSION + 1


@pytest.mark.parametrize("damage", [
    lambda h: h[:HEADER_SIZE - 1],  # short
    lambda h: b"GARBAGE!" + h[8:],  # bad magic
    lambda h: h[:9] + bytes([h[9] ^ 0x01]) + h[10:],  # flipped version bit: checksum fails
    lambda h: b"",
])
def test_a_damaged_header_is_a_header_error(damage):
    with pytest.raises(HeaderError):
        read_header(damage(encode_header()))


def test_every_framed_record_scans_back_in_order():
    data = segment(PAYLOADS)
    found = scan(data)
    assert found.bad == []
    assert found.payloads(data) == PAYLOADS
    assert found.end == len(data)


def test_an_empty_payload_is_a_record_too():
    data = segment([b"", b"x", b""])
    assert scan(data).payloads(data) == [b"", b"x", b""]


def test_the_checksum_covers_the_length_field():
    record = frame([b"abc"])
    length, crc = struct.unpack_from("<II", record)
    assert length == 3
    assert crc == zlib.crc32(b"abc", zlib.crc32(b"\x03\x00\x00\x00"))


def test_a_flipped_payload_byte_costs_exactly_that_record():
    data = segment(PAYLOADS)
    data[offsets(PAYLOADS)[4] + RECORD_OVERHEAD + 2] ^= 0x20
    found = scan(data)
    assert found.payloads(data) == PAYLOADS[:4] + PAYLOADS[5:]
    assert len(found.bad) == 1


def test_a_damaged_length_field_resynchronises_on_the_next_good_record():
    data = segment(PAYLOADS)
    data[offsets(PAYLOADS)[3] + 1] ^= 0x40  # length now far too large
    found = scan(data)
    assert found.payloads(data) == PAYLOADS[:3] + PAYLOADS[4:]
    assert len(found.bad) == 1


def test_a_torn_tail_keeps_every_whole_record():
    whole = segment(PAYLOADS)
    for cut in (1, RECORD_OVERHEAD - 1, RECORD_OVERHEAD + 3):
        data = whole[:offsets(PAYLOADS)[-1] + cut]
        found = scan(data)
        assert found.payloads(data) == PAYLOADS[:-1]
        assert found.bad == [(offsets(PAYLOADS)[-1], len(data))]


def test_garbage_in_the_middle_is_one_bad_range_and_both_sides_survive():
    data = segment(PAYLOADS)
    at = offsets(PAYLOADS)[5]
    data[at:at] = b"\xff" * 37 + b"\x00" * 5
    found = scan(data)
    assert found.payloads(data) == PAYLOADS
    assert found.bad == [(at, at + 42)]


def test_random_bytes_yield_no_invented_record():
    noise = bytes((i * 7919 + 13) % 251 for i in range(20_000))
    found = scan(encode_header() + noise)
    assert found.spans == []
    assert found.bad == [(HEADER_SIZE, HEADER_SIZE + len(noise))]


def test_verified_payloads_of_a_sound_segment_are_what_a_scan_finds():
    data = bytes(segment(PAYLOADS))
    assert verified_payloads(data) == PAYLOADS == scan(data).payloads(data)
    assert verified_payloads(bytes(segment([]))) == []


@pytest.mark.parametrize("damage", ["flip_payload", "flip_length", "flip_crc", "cut", "tail"])
def test_verified_payloads_give_up_on_any_damage_so_the_scan_decides(damage):
    data = segment(PAYLOADS)
    at = offsets(PAYLOADS)[4]
    if damage == "flip_payload":
        data[at + RECORD_OVERHEAD + 2] ^= 0x01
    elif damage == "flip_length":
        data[at] ^= 0x01
    elif damage == "flip_crc":
        data[at + 5] ^= 0x80
    elif damage == "cut":
        del data[at + RECORD_OVERHEAD + 1:]
    else:
        data += b"\x01\x02\x03"
    assert verified_payloads(bytes(data)) is None


def _segment(n: int) -> tuple[bytes, list[int]]:
    """A segment of ``n`` records and the offset where each record starts."""
    payloads = [f'{{"seq":{i}, "pad":"{"x" * (i % 7)}"}}\n'.encode() for i in range(n)]
    offsets, off = [], HEADER_SIZE
    for p in payloads:
        offsets.append(off)
        off += RECORD_OVERHEAD + len(p)
    return encode_header() + frame(payloads), offsets


def test_damaged_records_are_counted_exactly_when_their_lengths_hold():
    data, offsets = _segment(10)
    damaged = bytearray(data)
    for k in (2, 3, 7):  # three payloads rot; their length fields are intact
        damaged[offsets[k] + RECORD_OVERHEAD + 1] ^= 0x20
    found = scan(bytes(damaged))
    assert len(found.spans) == 7
    assert found.lost(bytes(damaged)) == (3, True)


def test_a_segment_cut_inside_a_record_is_a_lower_bound_not_one():
    data, offsets = _segment(50)
    cut = data[: offsets[8] + 5]  # records 8..49 are gone: 42 lost, only one trace left
    found = scan(cut)
    assert len(found.spans) == 8
    lost, exact = found.lost(cut)
    assert (lost, exact) == (1, False), "one trace; the count says it is only a minimum"
