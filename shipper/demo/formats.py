"""Byte-exact encoders for the two container log file formats found on Kubernetes nodes.

The generator's output is only useful as a test fixture if it is indistinguishable from what
containerd (CRI format) and Docker's json-file driver write, including their 16 KiB split of
long lines and moby's JSON escaping. Everything here is pure and deterministic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, Literal

import orjson

LogFormat = Literal["docker", "cri"]
FORMATS: Final[tuple[LogFormat, ...]] = ("docker", "cri")

#: containerd `max_container_log_line_size` default and Docker's copier buffer size.
SPLIT_SIZE: Final = 16 * 1024

_NS_PER_S: Final = 1_000_000_000

# moby escapes these although JSON does not require it; orjson leaves them raw, and as raw
# characters they can never be part of an escape sequence, so a plain replace is safe.
_MOBY_RAW_FIXUPS: Final = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)
_NEEDS_FIXUP: Final = re.compile("[<>&\t\b\f\u2028\u2029\udc80-\udcff]")
# orjson writes TAB/BS/FF as short escapes; moby writes \u00XX. Matching `\\\\` first keeps the
# scan aligned on escape boundaries, so an escaped backslash followed by `t` is left alone.
_SHORT_ESCAPE: Final = re.compile(rb"\\\\|\\t|\\b|\\f")
_SHORT_TO_MOBY: Final = {
    b"\\\\": b"\\\\",
    b"\\t": b"\\u0009",
    b"\\b": b"\\u0008",
    b"\\f": b"\\u000c",
}
_INVALID_BYTE: Final = re.compile("[\udc80-\udcff]")


class RFC3339NanoFormatter:
    """Formats nanosecond Unix times like Go's `time.RFC3339Nano` in UTC.

    The fraction has its trailing zeros removed and no dot at all when it is zero, exactly as
    containerd and moby write it. The second-resolution prefix is cached because consecutive
    log lines almost always share it, which keeps formatting cheap at a million lines.
    """

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, t_ns: int) -> str:
        sec, frac = divmod(t_ns, _NS_PER_S)
        if sec != self._second:
            self._second = sec
            self._prefix = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if frac:
            return f"{self._prefix}.{frac:09d}".rstrip("0") + "Z"
        return self._prefix + "Z"


def moby_json_string(text: str) -> bytes:
    """JSON-encode `text` the way moby's json-file driver encodes the `log` value.

    Lone surrogates in the range U+DC80..U+DCFF stand for invalid UTF-8 bytes (Python's
    `surrogateescape`); moby replaces each invalid byte with U+FFFD, so we do the same.
    """
    if not _NEEDS_FIXUP.search(text):
        return orjson.dumps(text)
    if "\udc80" <= max(text):
        text = _INVALID_BYTE.sub("\ufffd", text)
    out = orjson.dumps(text)
    for raw, escaped in _MOBY_RAW_FIXUPS:
        if raw in out:
            out = out.replace(raw, escaped)
    if b"\\t" in out or b"\\b" in out or b"\\f" in out:
        out = _SHORT_ESCAPE.sub(lambda m: _SHORT_TO_MOBY[m.group()], out)
    return out


def split_pieces(content: str, size: int = SPLIT_SIZE) -> list[str]:
    """Split an ASCII line into runtime-sized pieces (all but the last exactly `size` bytes).

    Both runtimes cut on byte boundaries; callers only pass ASCII here so that character
    and byte offsets coincide and no multi-byte character is torn apart.
    """
    if not content.isascii():
        raise ValueError("long lines must be ASCII so byte and character offsets agree")
    return [content[i : i + size] for i in range(0, len(content), size)] or [""]


def cri_lines(ts: list[str], stream: str, pieces: list[str]) -> str:
    """Render one logical line as CRI physical lines: `P` pieces then a final `F` piece."""
    last = len(pieces) - 1
    return "".join(
        f"{ts[i]} {stream} {'F' if i == last else 'P'} {piece}\n" for i, piece in enumerate(pieces)
    )


def docker_lines(ts: list[str], stream: str, pieces: list[str]) -> bytes:
    """Render one logical line as json-file records; only the last piece's `log` ends in LF."""
    last = len(pieces) - 1
    stream_part = b',"stream":"' + stream.encode() + b'","time":"'
    return b"".join(
        b'{"log":'
        + moby_json_string(piece + "\n" if i == last else piece)
        + stream_part
        + ts[i].encode()
        + b'"}\n'
        for i, piece in enumerate(pieces)
    )
