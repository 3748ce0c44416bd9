"""CRC-32 and gzip from zlib-ng when installed, the standard library otherwise: same results."""

from __future__ import annotations

import gzip
import importlib
import sys
import zlib

import pytest

from shipper import compression
from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD, encode_header, frame

DATA = b"".join(b'{"log":"line %d","kubernetes":{"pod_name":"web-%d"}}\n' % (i, i % 7)
                for i in range(5000))


def test_crc32_agrees_with_zlib_including_running_values_and_views() -> None:
    assert compression.crc32(DATA) == zlib.crc32(DATA)
    assert compression.crc32(DATA[10:], 12345) == zlib.crc32(DATA[10:], 12345)
    assert compression.crc32(memoryview(DATA)[3:99]) == zlib.crc32(DATA[3:99])
    assert compression.crc32(b"") == 0


def test_gzip_fast_is_a_standard_member_of_bytes_or_views() -> None:
    packed = compression.gzip_fast(DATA)
    assert type(packed) is bytes
    assert gzip.decompress(packed) == DATA
    assert zlib.decompress(compression.gzip_fast(memoryview(DATA)), wbits=31) == DATA
    assert len(packed) < len(DATA) // 5


def test_the_inflater_reads_members_in_bounded_pieces_and_rejects_garbage() -> None:
    packed = gzip.compress(DATA, 6) + gzip.compress(b"second", 1)
    inflater = compression.gzip_inflater()
    first = inflater.decompress(packed, 1000)
    assert first == DATA[:1000] and inflater.unconsumed_tail
    rest = inflater.decompress(inflater.unconsumed_tail, len(DATA))
    assert first + rest == DATA and inflater.eof
    assert compression.gzip_inflater().decompress(inflater.unused_data) == b"second"
    with pytest.raises(compression.InflateError):
        compression.gzip_inflater().decompress(b"\x1f\x8b\x08\x00 not deflate data at all")


def test_segments_checksummed_here_verify_with_plain_zlib() -> None:
    """The disk-buffer format is unchanged: an agent without zlib-ng reads our segments."""
    payload = b'{"log":"x"}\n'
    record = frame([payload])
    length, crc = int.from_bytes(record[:4], "little"), int.from_bytes(record[4:8], "little")
    assert length == len(payload) and record[RECORD_OVERHEAD:] == payload
    assert crc == zlib.crc32(payload, zlib.crc32(record[:4]))
    header = encode_header()
    assert len(header) == HEADER_SIZE
    assert int.from_bytes(header[12:], "little") == zlib.crc32(header[:12])


def test_without_zlib_ng_the_standard_library_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zlib_ng", None)  # the import now fails
    try:
        fallback = importlib.reload(compression)
        assert fallback.IMPLEMENTATION == "zlib"
        assert fallback.crc32(DATA) == zlib.crc32(DATA)
        assert gzip.decompress(fallback.gzip_fast(DATA)) == DATA
        assert fallback.gzip_inflater().decompress(gzip.compress(DATA)) == DATA
        assert fallback.InflateError is zlib.error
    finally:
        monkeypatch.undo()
        importlib.reload(compression)
    assert compression.IMPLEMENTATION == "zlib-ng"
