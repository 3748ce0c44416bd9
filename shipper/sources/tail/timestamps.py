"""RFC 3339 timestamps of container runtimes -> (epoch nanoseconds, Fluentd ``time`` string).

Runtimes write Go ``RFC3339Nano``: trailing zeros of the fraction are trimmed (0-9 digits, no
dot when zero) and the zone is ``Z`` or ``±hh:mm`` (spec §2.2, §2.3). ``datetime`` keeps only
microseconds and costs microseconds per call, so this module parses by hand: the
``YYYY-MM-DDTHH:MM:SS`` head is converted once per distinct second and cached (a busy file
writes thousands of lines per second, all sharing one head), the fraction is ``int()``-ed.

The returned string is always UTC with 9 fraction digits and ``Z`` — the shape Fluentd ships
and Kibana searches expect — and is the input itself in the common containerd case.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime

_HEAD = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})", re.ASCII)
_CACHE_MAX = 4096
NS = 1_000_000_000
# Head "YYYY-MM-DDTHH:MM:SS" (str from Docker JSON, or bytes straight from a CRI line) ->
# nanoseconds since the epoch of that wall time read as UTC. Decoders read it inline and
# call ``head_ns`` only on a miss (about once per second of logs).
HEAD_NS: dict[str | bytes, int] = {}
# UTC epoch seconds -> "YYYY-MM-DDTHH:MM:SS" (only needed for inputs with an offset)
_HEADS: dict[int, str] = {}
_SCALE = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)


def head_ns(head: str | bytes) -> int | None:
    """Nanoseconds of a wall-clock head read as UTC, or None if it is not a valid date/time."""
    value = HEAD_NS.get(head)
    if value is not None:
        return value
    text = head.decode("latin-1") if isinstance(head, bytes) else head
    match = _HEAD.fullmatch(text)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        parts = datetime(year, month, day, hour, minute, second)  # validates ranges
    except ValueError:
        return None
    value = calendar.timegm(parts.timetuple()) * NS
    if len(HEAD_NS) >= _CACHE_MAX:
        HEAD_NS.clear()
    HEAD_NS[head] = value
    return value


def utc_head(epoch_seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC for epoch seconds (cached)."""
    head = _HEADS.get(epoch_seconds)
    if head is None:
        head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_seconds))
        if len(_HEADS) >= _CACHE_MAX:
            _HEADS.clear()
        _HEADS[epoch_seconds] = head
    return head


def format_time(time_ns: int) -> str:
    """Fluentd's ``time`` string for epoch nanoseconds: UTC, 9 digits, ``Z``."""
    seconds, nanos = divmod(time_ns, NS)
    return f"{utc_head(seconds)}.{nanos:09d}Z"


def parse_time(ts: str) -> tuple[int, str] | None:
    """Parse one runtime timestamp; None when it is not RFC 3339 (the line is malformed).

    The fast path covers ``...SS.fffZ`` with 1-9 digits (every containerd and Docker line
    written in UTC); everything else (no fraction, offsets) takes ``_parse_general``.
    """
    if ts[-1:] == "Z" and ts[19:20] == ".":
        head = ts[:19]
        base = HEAD_NS.get(head)
        if base is None:
            base = head_ns(head)
            if base is None:
                return None
        frac = ts[20:-1]
        digits = len(frac)
        if 0 < digits <= 9 and frac.isdecimal():
            if digits == 9:
                return base + int(frac), ts
            nanos = int(frac) * _SCALE[digits]
            return base + nanos, f"{head}.{nanos:09d}Z"
        return None
    return _parse_general(ts)


def _parse_general(ts: str) -> tuple[int, str] | None:
    base = head_ns(ts[:19])
    if base is None:
        return None
    rest = ts[19:]
    nanos = 0
    if rest[:1] == ".":
        end = 1
        while end < len(rest) and "0" <= rest[end] <= "9":
            end += 1
        frac = rest[1:end]
        if not 0 < len(frac) <= 9:
            return None
        nanos = int(frac) * _SCALE[len(frac)]
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif (len(rest) == 6 and rest[0] in "+-" and rest[3] == ":"
          and rest[1:3].isdecimal() and rest[4:6].isdecimal()):
        hours, minutes = int(rest[1:3]), int(rest[4:6])
        if hours > 23 or minutes > 59:
            return None
        offset = hours * 3600 + minutes * 60
        if rest[0] == "-":
            offset = -offset
    else:
        return None
    epoch = base // NS - offset
    head = ts[:19] if offset == 0 else utc_head(epoch)
    return epoch * NS + nanos, f"{head}.{nanos:09d}Z"
