"""Sizes and durations are read exactly, and anything ambiguous is refused with a hint."""

from __future__ import annotations

import math

import pytest

from shipper.config.units import (
    UnitError,
    check_bytes,
    check_seconds,
    format_bytes,
    format_seconds,
    parse_bytes,
    parse_seconds,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("1024", 1024),
    ("0", 0),
    ("12B", 12),
    ("100k", 100_000),
    ("100K", 100_000),
    ("10KB", 10_000),
    ("512KiB", 512 * 1024),
    ("512kib", 512 * 1024),
    ("2MiB", 2 * 1024**2),
    ("2 MiB", 2 * 1024**2),
    ("10MB", 10_000_000),
    ("3m", 3_000_000),
    ("1GiB", 1024**3),
    ("1GB", 1_000_000_000),
    ("1g", 1_000_000_000),
    ("1TiB", 1024**4),
    ("1.5MiB", 1_572_864),
    ("0.5k", 500),
    (" 64KiB ", 65_536),
])
def test_a_size_string_means_this_many_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2XB", "invalid size '2XB': unknown unit 'XB'; use a byte count or a number with a unit: "
            "B, K, KB, KiB, M, MB, MiB, G, GB, GiB"),
    ("MiB", "invalid size 'MiB'; use a byte count or a number with a unit: "
            "B, K, KB, KiB, M, MB, MiB, G, GB, GiB"),
    ("-5", "invalid size '-5'; use a byte count or a number with a unit: "
           "B, K, KB, KiB, M, MB, MiB, G, GB, GiB"),
    ("1.1KiB", "invalid size '1.1KiB': not a whole number of bytes"),
    ("1.5", "invalid size '1.5': not a whole number of bytes"),
    ("", "invalid size ''; use a byte count or a number with a unit: "
         "B, K, KB, KiB, M, MB, MiB, G, GB, GiB"),
])
def test_a_malformed_size_is_refused_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_bytes(text)
    assert str(caught.value) == message


def test_a_byte_count_given_as_an_integer_must_not_be_negative() -> None:
    assert check_bytes(0) == 0
    with pytest.raises(UnitError, match=r"^invalid size -1: must not be negative$"):
        check_bytes(-1)


@pytest.mark.parametrize(("text", "expected"), [
    ("5", 5.0),
    ("2.5", 2.5),
    ("250ms", 0.25),
    ("5s", 5.0),
    ("2m", 120.0),
    ("1h", 3600.0),
    ("1d", 86400.0),
    ("1h30m", 5400.0),
    ("1m30s", 90.0),
    ("1.5s", 1.5),
    ("0.5h", 1800.0),
    ("1s500ms", 1.5),
])
def test_a_duration_string_means_this_many_seconds(text: str, expected: float) -> None:
    assert parse_seconds(text) == expected


@pytest.mark.parametrize("text", ["5 sec", "5S", "1H", "s", "-5s", "1h 30m", "5mn", ""])
def test_a_malformed_duration_is_refused_with_a_hint(text: str) -> None:
    with pytest.raises(UnitError) as caught:
        parse_seconds(text)
    assert str(caught.value) == (
        f"invalid duration {text!r}; use seconds as a number or a duration like "
        "250ms, 5s, 2m, 1h, 1h30m")


def test_a_duration_given_as_a_number_must_be_finite_and_not_negative() -> None:
    assert check_seconds(3) == 3.0
    assert isinstance(check_seconds(3), float)
    with pytest.raises(UnitError, match=r"^invalid duration -0.5: must not be negative$"):
        check_seconds(-0.5)
    with pytest.raises(UnitError, match=r"^invalid duration inf: must be a finite number$"):
        check_seconds(math.inf)


@pytest.mark.parametrize(("value", "text"), [
    (2 * 1024**2, "2MiB"), (256 * 1024**2, "256MiB"), (10_000_000, "10MB"), (1536, "1536"),
    (1024, "1KiB"), (0, "0"), (1000, "1000"),
])
def test_sizes_are_rendered_the_shortest_exact_way(value: int, text: str) -> None:
    assert format_bytes(value) == text
    assert parse_bytes(text) == value


@pytest.mark.parametrize(("value", "text"), [
    (0.25, "250ms"), (5.0, "5s"), (60.0, "1m"), (5400.0, "1h30m"), (1.5, "1.5s"), (0.0, "0s"),
])
def test_durations_are_rendered_as_they_would_be_written(value: float, text: str) -> None:
    assert format_seconds(value) == text
    assert parse_seconds(text) == value
