"""Encoders must match containerd/moby byte for byte, since tests and benchmarks rely on them."""

from __future__ import annotations

import json

import pytest

from shipper.demo.formats import (
    SPLIT_SIZE,
    RFC3339NanoFormatter,
    cri_lines,
    docker_lines,
    moby_json_string,
    split_pieces,
)

BASE = 1_795_305_600 * 1_000_000_000  # 2026-11-22T00:00:00Z


@pytest.mark.parametrize(
    ("offset_ns", "expected"),
    [
        (0, "2026-11-22T00:00:00Z"),
        (100_000_000, "2026-11-22T00:00:00.1Z"),
        (100_000_031, "2026-11-22T00:00:00.100000031Z"),
        (57_606_440, "2026-11-22T00:00:00.05760644Z"),
        (61_000_000_001, "2026-11-22T00:01:01.000000001Z"),
    ],
)
def test_rfc3339nano_trims_trailing_zeros(offset_ns: int, expected: str) -> None:
    assert RFC3339NanoFormatter()(BASE + offset_ns) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain\n", b'"plain\\n"'),
        ('a "q" \\ b', b'"a \\"q\\" \\\\ b"'),
        ("\tat x\r\n", b'"\\u0009at x\\r\\n"'),
        ("<a href=x&y>", b'"\\u003ca href=x\\u0026y\\u003e"'),
        ("\b\f\x01\x1f", b'"\\u0008\\u000c\\u0001\\u001f"'),
        ("\u2028\u2029", b'"\\u2028\\u2029"'),
        ("literal \\t stays", b'"literal \\\\t stays"'),
        ("café ☕", '"café ☕"'.encode()),
        ("bad \udcff\udce9 bytes", '"bad \ufffd\ufffd bytes"'.encode()),
    ],
)
def test_moby_escaping(text: str, expected: bytes) -> None:
    out = moby_json_string(text)
    assert out == expected
    assert json.loads(out) == text.replace("\udcff", "\ufffd").replace("\udce9", "\ufffd")


def test_split_pieces_and_renderers() -> None:
    text = "x" * 40_000
    pieces = split_pieces(text)
    assert [len(p) for p in pieces] == [16384, 16384, 7232]
    stamps = ["2026-11-22T00:00:00.1Z", "2026-11-22T00:00:00.2Z", "2026-11-22T00:00:00.3Z"]
    cri = cri_lines(stamps, "stdout", pieces).splitlines()
    assert [line.split(" ", 3)[2] for line in cri] == ["P", "P", "F"]
    docker = [json.loads(line) for line in docker_lines(stamps, "stderr", pieces).splitlines()]
    assert [len(d["log"]) for d in docker] == [16384, 16384, 7233]
    assert docker[-1]["log"].endswith("\n") and not docker[0]["log"].endswith("\n")
    assert {d["stream"] for d in docker} == {"stderr"}
    with pytest.raises(ValueError):
        split_pieces("é" * SPLIT_SIZE)
