"""Reading a segment back when delivery takes it: payloads whole, damage salvaged."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.buffer.disk.format import HEADER_SIZE, RECORD_OVERHEAD, encode_header, frame
from shipper.buffer.disk.loader import load_chunk
from shipper.buffer.disk.storage import Storage


def write_segment(path: Path, payloads: list[bytes]) -> Path:
    path.write_bytes(encode_header() + frame(payloads))
    return path


def test_segments_of_any_size_load_whole_one_after_another(tmp_path: Path) -> None:
    storage = Storage()
    big = [bytes([65 + i % 26]) * (300 + i) for i in range(400)]
    small = [b'{"log":"x"}\n', b'{"log":"y"}\n']
    for name, payloads in [("a", big), ("b", small), ("c", []), ("d", big[:7])]:
        loaded = load_chunk(write_segment(tmp_path / name, payloads), storage)
        assert (loaded.payloads, loaded.corrupt) == (payloads, 0)
        assert all(type(p) is bytes for p in loaded.payloads)


def test_a_damaged_segment_after_a_sound_one_is_salvaged_and_quarantined(
        tmp_path: Path) -> None:
    (tmp_path / "quarantine").mkdir()
    storage = Storage()
    payloads = [f"record {i}\n".encode() * 20 for i in range(10)]
    assert load_chunk(write_segment(tmp_path / "1", payloads), storage).corrupt == 0
    path = write_segment(tmp_path / "2", payloads)
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + RECORD_OVERHEAD + 5] ^= 0xFF  # inside the first payload
    path.write_bytes(bytes(data))
    loaded = load_chunk(path, storage)
    assert loaded.payloads == payloads[1:]
    assert loaded.corrupt == 1
    assert [p.read_bytes() for p in (tmp_path / "quarantine").iterdir()] == [bytes(data)]


def test_a_failed_read_raises_and_the_next_one_works(tmp_path: Path) -> None:
    storage = Storage()
    with pytest.raises(OSError):
        load_chunk(tmp_path / "missing", storage)
    payloads = [b"a" * 100] * 3
    assert load_chunk(write_segment(tmp_path / "ok", payloads), storage).payloads == payloads
