"""The generated workload read back as records, for the clients that replay it.

The forward client sends the same logical records the tail would read, and the steady-rate
writer appends the same bytes again; both need to know where a record ends (a long message is
split into partial lines: CRI ``P`` pieces, Docker pieces without a trailing LF). Counting
final pieces gives exactly the manifest's record count, which each row checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from shipper.demo.manifest import FileEntry


@dataclass(frozen=True, slots=True)
class LogicalRecord:
    """One record as the runtime wrote it: partial pieces joined, trailing LF removed."""

    time: str
    stream: str
    log: str


def _docker_piece(line: bytes) -> tuple[str, str, str, bool]:
    obj = orjson.loads(line)
    text: str = obj.get("log", "")
    final = text.endswith("\n")
    if final:
        text = text[:-1].removesuffix("\r")
    return obj.get("time", ""), obj.get("stream", "stdout"), text, final


def _cri_piece(line: bytes) -> tuple[str, str, str, bool]:
    parts = line.split(b" ", 3)
    content = parts[3] if len(parts) > 3 else b""
    final = not parts[2].startswith(b"P") if len(parts) > 2 else True
    return (parts[0].decode("ascii", "replace"), parts[1].decode("ascii", "replace"),
            content.decode("utf-8", "replace"), final)


def physical_lines(data: bytes) -> list[bytes]:
    """Complete lines without their LF (a missing last LF would be a cut file: kept)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def read_records(entry: FileEntry, root: Path) -> Iterator[LogicalRecord]:
    """The logical records of one generated file, in order (partials joined per stream)."""
    piece = _docker_piece if entry.format == "docker" else _cri_piece
    pending: dict[str, tuple[str, list[str]]] = {}
    for line in physical_lines(entry.path_in(root).read_bytes()):
        time_s, stream, text, final = piece(line)
        started = pending.pop(stream, None)
        if started is not None:
            time_s, parts = started  # a joined record keeps its first piece's time
            parts.append(text)
            text = "".join(parts)
        if final:
            yield LogicalRecord(time_s, stream, text)
        else:
            pending[stream] = (time_s, [text])


def record_blobs(entry: FileEntry, root: Path) -> list[bytes]:
    """The file's bytes cut after each record's final piece: appending blobs in order
    rewrites the file, and each blob completes exactly one record."""
    piece = _docker_piece if entry.format == "docker" else _cri_piece
    blobs: list[bytes] = []
    current: list[bytes] = []
    for line in physical_lines(entry.path_in(root).read_bytes()):
        current.append(line + b"\n")
        if piece(line)[3]:
            blobs.append(b"".join(current))
            current = []
    return blobs
