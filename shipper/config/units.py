"""Parsing and formatting of sizes and durations written by people.

Config values with units are written the way operators think (``2MiB``, ``250ms``, ``1h30m``)
and stored as plain numbers (bytes as ``int``, seconds as ``float``) so the code that uses them
never parses anything. Parsing is strict: an unknown unit or a negative value is an error
message, never a guess.

Size units are case-insensitive. ``K``, ``KB``, ``M``, ``MB``, ``G``, ``GB``, ``T``, ``TB`` are
decimal (powers of 1000, as the SI and disk vendors mean them); ``KiB``, ``MiB``, ``GiB``,
``TiB`` are binary (powers of 1024); ``B`` or no unit is bytes. A fraction is allowed only when
the result is a whole number of bytes (``1.5MiB`` yes, ``1.1KiB`` no).

Durations are one or more ``<number><unit>`` parts with the lowercase units ``ms``, ``s``,
``m``, ``h`` and ``d`` (``250ms``, ``5s``, ``1h30m``); a bare number is seconds. Units are
lowercase on purpose so ``m`` (minute) can never be read as a month.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
SIZE_HINT = "use a byte count or a number with a unit: B, K, KB, KiB, M, MB, MiB, G, GB, GiB"

DURATION_UNITS: dict[str, Fraction] = {
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
    "d": Fraction(86400),
}
DURATION_HINT = "use seconds as a number or a duration like 250ms, 5s, 2m, 1h, 1h30m"

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_NUMBER_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*$")
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")
_DURATION_RE = re.compile(r"^(?:(?:\d+(?:\.\d+)?|\.\d+)(?:ms|s|m|h|d))+$")


class UnitError(ValueError):
    """A size or duration cannot be read; the message is ready to show to the operator."""


def parse_bytes(text: str) -> int:
    """Return the number of bytes a size string such as ``2MiB`` or ``1024`` means.

    Exact rational arithmetic is used so ``1.5MiB`` is exactly 1572864 and a value that is not
    a whole number of bytes is refused instead of silently rounded.
    """
    match = _SIZE_RE.match(text)
    if match is None:
        raise UnitError(f"invalid size {text!r}; {SIZE_HINT}")
    number, unit = match.groups()
    multiplier = SIZE_UNITS.get(unit.lower())
    if multiplier is None:
        raise UnitError(f"invalid size {text!r}: unknown unit {unit!r}; {SIZE_HINT}")
    amount = Fraction(number) * multiplier
    if amount.denominator != 1:
        raise UnitError(f"invalid size {text!r}: not a whole number of bytes")
    return int(amount)


def check_bytes(value: int) -> int:
    """Return ``value`` if it is a valid byte count given as an integer."""
    if value < 0:
        raise UnitError(f"invalid size {value}: must not be negative")
    return value


def parse_seconds(text: str) -> float:
    """Return the number of seconds a duration string such as ``1h30m`` or ``2.5`` means."""
    if _NUMBER_RE.match(text):
        return float(Fraction(text.strip()))
    compact = text.strip()
    if not _DURATION_RE.match(compact):
        raise UnitError(f"invalid duration {text!r}; {DURATION_HINT}")
    total = sum(
        (Fraction(number) * DURATION_UNITS[unit]
         for number, unit in _DURATION_PART_RE.findall(compact)),
        Fraction(0),
    )
    return float(total)


def check_seconds(value: float) -> float:
    """Return ``value`` as float seconds if it is a valid duration given as a number."""
    if math.isnan(value) or math.isinf(value):
        raise UnitError(f"invalid duration {value}: must be a finite number")
    if value < 0:
        raise UnitError(f"invalid duration {value}: must not be negative")
    return float(value)


def format_bytes(value: int) -> str:
    """Render a byte count the shortest exact way (``2MiB``, ``10MB``, ``1000``) for docs."""
    for suffix, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024),
                         ("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2)):
        if value and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def format_seconds(value: float) -> str:
    """Render seconds as a duration string (``250ms``, ``5s``, ``1h30m``) for docs."""
    if value == 0:
        return "0s"
    if value < 1 and value * 1000 == int(value * 1000):
        return f"{int(value * 1000)}ms"
    if value != int(value):
        return f"{value:g}s"
    seconds = int(value)
    parts = []
    for suffix, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{suffix}")
            seconds %= size
    return "".join(parts)
