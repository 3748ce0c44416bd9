"""A deliberately tiny, independent reader of node log files for checking the generator.

It does not share code with the generator (or the shipper's tailer), so a bug in either
cannot hide itself: it splits CRI lines on spaces, parses docker lines with the stdlib `json`
module and reassembles partials per stream, as kubelet does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Record:
    stream: str
    content: bytes  # without the trailing newline; invalid UTF-8 kept (CRI) or U+FFFD (docker)
    times: list[str]
    pieces: list[int]  # byte length of each physical piece (without the newline)


@dataclass
class ParsedFile:
    fmt: str
    physical_lines: int
    records: list[Record] = field(default_factory=list)


def read_log(path: Path) -> ParsedFile:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), "a log file ends with a complete line"
    lines = data.split(b"\n")[:-1]
    fmt = "docker" if data.startswith(b"{") else "cri"
    out = ParsedFile(fmt, len(lines))
    pending: dict[str, Record] = {}
    for raw in lines:
        if fmt == "docker":
            obj = json.loads(raw)
            assert list(obj) == ["log", "stream", "time"], obj.keys()
            stream, piece, ts = obj["stream"], obj["log"].encode(), obj["time"]
            final = piece.endswith(b"\n")
            if final:
                piece = piece[:-1]
        else:
            ts_b, stream_b, tag, piece = raw.split(b" ", 3)
            stream, ts = stream_b.decode(), ts_b.decode()
            assert tag in (b"P", b"F"), raw[:80]
            final = tag == b"F"
        assert stream in ("stdout", "stderr")
        rec = pending.pop(stream, None) or Record(stream, b"", [], [])
        rec.content += piece
        rec.times.append(ts)
        rec.pieces.append(len(piece))
        if final:
            out.records.append(rec)
        else:
            pending[stream] = rec
    assert not pending, "every partial sequence is closed"
    return out
