"""Shared machinery for per-container line sources.

A `LineSource` produces one logical log line per call. Multi-line events (Java stack traces,
Python tracebacks) are queued so that each of their lines is a separate record, as it is on a
real node, while the writer only ever asks for "the next line at time t". Helpers here exist
to keep the per-line cost low (one `random.Random` draw per choice, cached per-second time
prefixes), because the generator must produce a million lines in seconds.
"""

from __future__ import annotations

import base64
import random
from abc import ABC, abstractmethod
from bisect import bisect
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate
from time import gmtime
from typing import Final, Generic, TypeVar

from shipper.demo.topology import Cluster, Container, Pod

#: (stream, text) of one logical line; text has no trailing newline.
Line = tuple[str, str]

T = TypeVar("T")

_NS_PER_S: Final = 1_000_000_000
_NS_PER_MS: Final = 1_000_000
_MONTHS: Final = tuple("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())


class WeightedTable(Generic[T]):
    """Weighted choice with a single `random()` draw and a C-level bisect."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        if not pairs:
            raise ValueError("WeightedTable needs at least one item")
        self._items = [item for item, _ in pairs]
        self._cum = list(accumulate(w for _, w in pairs))
        self._total = self._cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self._items[bisect(self._cum, rng.random() * self._total)]


@lru_cache(maxsize=16384)
def _second_fields(sec: int) -> tuple[str, str, str, str, str, str, str]:
    """Zero-padded UTC fields of a Unix second: (Y, m, d, H, M, S, month abbreviation)."""
    tm = gmtime(sec)
    return (
        f"{tm.tm_year:04d}",
        f"{tm.tm_mon:02d}",
        f"{tm.tm_mday:02d}",
        f"{tm.tm_hour:02d}",
        f"{tm.tm_min:02d}",
        f"{tm.tm_sec:02d}",
        _MONTHS[tm.tm_mon - 1],
    )


@lru_cache(maxsize=16384)
def _iso_second(sec: int) -> str:
    y, m, d, hh, mm, ss, _ = _second_fields(sec)
    return f"{y}-{m}-{d}T{hh}:{mm}:{ss}"


def iso_ms(t_ns: int) -> str:
    """`2026-11-22T01:02:03.456Z`: Envoy START_TIME, Spring Boot and most JSON loggers."""
    sec, frac = divmod(t_ns, _NS_PER_S)
    return f"{_iso_second(sec)}.{frac // _NS_PER_MS:03d}Z"


def iso_us(t_ns: int) -> str:
    """`2026-11-22T01:02:03.456789Z`: Istio's zap encoder and Envoy's application log."""
    sec, frac = divmod(t_ns, _NS_PER_S)
    return f"{_iso_second(sec)}.{frac // 1000:06d}Z"


def second_fields(t_ns: int) -> tuple[str, str, str, str, str, str, str]:
    """UTC fields of the second containing `t_ns`, for formats with unusual layouts."""
    return _second_fields(t_ns // _NS_PER_S)


def millis(t_ns: int) -> int:
    return t_ns // _NS_PER_MS


def uuid4_text(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (the stdlib's uuid4 uses os.urandom)."""
    x = rng.getrandbits(128)
    h = f"{x:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[x & 3]}{h[17:20]}-{h[20:]}"


def hex_id(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def filler(rng: random.Random, length: int) -> str:
    """`length` ASCII characters of URL-safe base64, the usual look of a dumped blob."""
    raw = base64.urlsafe_b64encode(rng.randbytes(length * 3 // 4 + 3)).decode("ascii")
    return raw[:length]


def to_invalid_utf8(text: str) -> str:
    """Re-encode non-ASCII text as cp1252, as a misconfigured app would, keeping raw bytes.

    The result uses `surrogateescape` code points for bytes that are not valid UTF-8, so the
    writer can emit the raw bytes (CRI) or moby's U+FFFD replacement (json-file).
    """
    out = text.encode("cp1252", "replace").decode("utf-8", "surrogateescape")
    if not any("\udc80" <= ch <= "\udcff" for ch in out):
        out += " \udcff"
    return out


class LineSource(ABC):
    """Produces the log lines of one container, one logical line per `line()` call.

    Subclasses implement `event()` (one event: a single line, or a list of lines for
    multi-line output), `long_line()` and `non_ascii_line()`. Regular content is ASCII and
    never empty or longer than 16 KiB, so the writer's special-line counts stay exact.
    """

    def __init__(self, rng: random.Random, cluster: Cluster, pod: Pod, container: Container):
        self.rng = rng
        self.cluster = cluster
        self.pod = pod
        self.container = container
        self._pending: list[Line] = []
        #: Earliest time content may mention (set by the writer to the file's start), so
        #: durations never reach back before the generated period.
        self.not_before = 0

    @property
    def in_event(self) -> bool:
        """True while a multi-line event is being emitted (its lines are microseconds apart)."""
        return bool(self._pending)

    def line(self, t_ns: int) -> Line:
        if self._pending:
            return self._pending.pop()
        ev = self.event(t_ns)
        if isinstance(ev, list):
            ev.reverse()
            first = ev.pop()
            self._pending = ev
            return first
        return ev

    @abstractmethod
    def event(self, t_ns: int) -> Line | list[Line]:
        """The next logical event: one line, or several (a stack trace)."""

    @abstractmethod
    def long_line(self, t_ns: int, blob: str) -> Line:
        """A realistic line embedding `blob` (ASCII), used for lines longer than 16 KiB."""

    @abstractmethod
    def non_ascii_line(self, t_ns: int) -> Line:
        """A realistic line containing non-ASCII UTF-8 (accents, emoji)."""

    def invalid_utf8_line(self, t_ns: int) -> Line:
        """A line with bytes that are not valid UTF-8 (text written in a legacy codepage)."""
        stream, text = self.non_ascii_line(t_ns)
        return stream, to_invalid_utf8(text)
