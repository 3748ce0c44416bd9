"""Runtime timestamps: every RFC3339Nano shape containerd and Docker write (spec §2.2)."""

import calendar

import pytest

from shipper.sources.tail.timestamps import format_time, head_ns, parse_time

BASE = calendar.timegm((2024, 1, 1, 12, 0, 0)) * 1_000_000_000


@pytest.mark.parametrize(("text", "nanos"), [
    ("2024-01-01T12:00:00.000000001Z", 1),
    ("2024-01-01T12:00:00.1Z", 100_000_000),
    ("2024-01-01T12:00:00.12345Z", 123_450_000),
    ("2024-01-01T12:00:00.123456789Z", 123_456_789),
    ("2024-01-01T12:00:00Z", 0),
    ("2024-01-01T12:00:00z", 0),
])
def test_utc_times_with_0_to_9_fraction_digits_keep_nanoseconds(text: str, nanos: int) -> None:
    time_ns, formatted = parse_time(text)
    assert time_ns == BASE + nanos
    assert formatted == f"2024-01-01T12:00:00.{nanos:09d}Z"


def test_offsets_are_converted_to_utc() -> None:
    assert parse_time("2024-01-01T21:00:00.5+09:00") == (
        BASE + 500_000_000, "2024-01-01T12:00:00.500000000Z")
    assert parse_time("2024-01-01T07:30:00-04:30") == (BASE, "2024-01-01T12:00:00.000000000Z")


def test_an_offset_crossing_midnight_changes_the_date() -> None:
    _, formatted = parse_time("2024-01-01T01:00:00.000000007+02:00")
    assert formatted == "2023-12-31T23:00:00.000000007Z"


@pytest.mark.parametrize("text", [
    "", "garbage", "2024-13-01T12:00:00Z", "2024-01-01T25:00:00Z", "2024-02-30T00:00:00Z",
    "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00.1234567890Z", "2024-01-01T12:00:00",
    "2024-01-01T12:00:00+0900", "2024-01-01T12:00:00.12a4Z", "2024-01-01 12:00:00Z",
    "2024-01-01T12:00:00+24:00",
])
def test_anything_else_is_rejected(text: str) -> None:
    assert parse_time(text) is None


def test_the_head_cache_accepts_bytes_and_str_alike() -> None:
    assert head_ns(b"2024-01-01T12:00:00") == head_ns("2024-01-01T12:00:00") == BASE
    assert head_ns(b"2024-01-01T1x:00:00") is None


def test_format_time_pads_nanoseconds() -> None:
    assert format_time(BASE + 42) == "2024-01-01T12:00:00.000000042Z"
