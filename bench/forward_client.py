"""A loopback forward-protocol client for the forward row: PackedForward with acks.

Real fluent-logger libraries send one Message per record; forwarders (Fluent Bit, Fluentd's
out_forward) send PackedForward: ``[tag, <msgpack entries as one binary>, {"chunk": id,
"size": n}]``. This client replays the generated workload that way, so the row measures the
agent's forward input rather than a slow client.

``prepare`` encodes the whole workload once into a frames file next to it (length-prefixed,
ready to write to the socket), so sending costs the client almost nothing and a cached
workload is not encoded again. ``send`` keeps a window of unacknowledged chunks and waits for
every ``{"ack": id}``: the agent acknowledges a chunk only once its records are safe, so a run
that ends with every ack received is lossless.

    python -m bench.forward_client --frames FILE --port N [--window 64]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgpack

from bench.records import read_records
from shipper.demo.manifest import FileEntry, Manifest

RECORDS_PER_MESSAGE = 1000
DEFAULT_WINDOW = 64
ACK_TIMEOUT_SECS = 120.0
_LEN = struct.Struct(">I")


def event_time(stamp: str, cache: dict[str, int]) -> msgpack.ExtType:
    """RFC 3339 with nanoseconds -> Fluentd EventTime (ext 0: uint32 secs, uint32 nanos)."""
    whole, _, frac = stamp.rstrip("Z").partition(".")
    secs = cache.get(whole)
    if secs is None:
        secs = cache[whole] = int(datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp())
    nanos = int((frac + "000000000")[:9]) if frac else 0
    return msgpack.ExtType(0, struct.pack(">II", secs, nanos))


def tag_of(entry: FileEntry) -> str:
    """Fluentd in_tail's tag for the file with ``tag kube.*``."""
    return "kube." + entry.symlink.replace("/", ".")


def file_messages(entry: FileEntry, root: Path) -> list[tuple[str, bytes, int]]:
    """``(tag, packed entries, count)`` per message for one file: its records as the tail
    would ship them (log, stream, time, and the names its file name gives)."""
    kubernetes = {"namespace_name": entry.namespace, "pod_name": entry.pod,
                  "container_name": entry.container}
    docker = {"container_id": entry.container_id}
    tag = tag_of(entry)
    packer = msgpack.Packer(use_bin_type=True)
    cache: dict[str, int] = {}
    out: list[tuple[str, bytes, int]] = []
    parts: list[bytes] = []
    for rec in read_records(entry, root):
        body = {"log": rec.log, "stream": rec.stream, "time": rec.time,
                "kubernetes": kubernetes, "docker": docker}
        parts.append(packer.pack([event_time(rec.time, cache), body]))
        if len(parts) == RECORDS_PER_MESSAGE:
            out.append((tag, b"".join(parts), len(parts)))
            parts = []
    if parts:
        out.append((tag, b"".join(parts), len(parts)))
    return out


def chunk_id(index: int) -> str:
    """A unique, deterministic chunk id (base64 of 16 bytes, like Fluentd's)."""
    return base64.b64encode(hashlib.md5(str(index).encode()).digest()).decode()


def prepare(root: Path, manifest: Manifest, frames: Path) -> int:
    """Write the frames file (files interleaved message by message); returns the records."""
    per_file = [file_messages(entry, root) for entry in manifest.files]
    total = sum(n for messages in per_file for _, _, n in messages)
    if total != manifest.total_records:
        raise RuntimeError(f"read {total:,} records back, the manifest says "
                           f"{manifest.total_records:,}")
    tmp = frames.with_suffix(".tmp")
    index = 0
    with open(tmp, "wb") as fh:
        for round_ in range(max((len(m) for m in per_file), default=0)):
            for messages in per_file:
                if round_ < len(messages):
                    tag, entries, n = messages[round_]
                    frame = msgpack.packb([tag, entries, {"chunk": chunk_id(index), "size": n}],
                                          use_bin_type=True)
                    fh.write(_LEN.pack(len(frame)) + frame)
                    index += 1
    os.replace(tmp, frames)
    frames.with_suffix(".json").write_text(json.dumps({"records": total, "messages": index}))
    return total


def ensure_frames(root: Path, manifest: Manifest) -> Path:
    """The workload's frames file, encoded on first use."""
    frames = root / f"forward-{RECORDS_PER_MESSAGE}.frames"
    if not frames.with_suffix(".json").exists() or not frames.exists():
        prepare(root, manifest, frames)
    return frames


def read_frames(path: Path) -> Iterator[bytes]:
    """The frames of a frames file, read as they are sent (the file is large)."""
    with open(path, "rb") as fh:
        while header := fh.read(_LEN.size):
            (size,) = _LEN.unpack(header)
            frame = fh.read(size)
            if len(frame) != size:
                raise ValueError(f"{path.name} is cut short")
            yield frame


def send(host: str, port: int, frames: Iterable[bytes], window: int = DEFAULT_WINDOW,
         ack_timeout: float = ACK_TIMEOUT_SECS) -> tuple[int, int]:
    """Send every frame, at most ``window`` unacknowledged; returns ``(sent, acked)``."""
    unpacker = msgpack.Unpacker(raw=False)
    waiting: deque[str] = deque()
    acked = sent = 0
    with socket.create_connection((host, port), timeout=ack_timeout) as sock:
        for index, frame in enumerate(frames):
            while len(waiting) >= window:
                acked += _read_acks(sock, unpacker, waiting)
            waiting.append(chunk_id(index))  # frames are numbered in file order by prepare
            sock.sendall(frame)
            sent += 1
        while waiting:
            acked += _read_acks(sock, unpacker, waiting)
    return sent, acked


def _read_acks(sock: socket.socket, unpacker: msgpack.Unpacker, waiting: deque[str]) -> int:
    """Block (up to the socket timeout) for more acks; each must be an outstanding chunk."""
    data = sock.recv(65536)
    if not data:
        raise ConnectionError(f"the agent closed the connection with {len(waiting)} "
                              "chunks unacknowledged")
    unpacker.feed(data)
    n = 0
    for reply in unpacker:
        chunk = reply.get("ack") if isinstance(reply, dict) else None
        if not isinstance(chunk, str) or chunk not in waiting:
            raise RuntimeError(f"unexpected reply {reply!r}")
        waiting.remove(chunk)
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--window", type=int, default=DEFAULT_WINDOW)
    args = parser.parse_args(argv)
    started = time.monotonic()
    sent, acked = send(args.host, args.port, read_frames(args.frames), args.window)
    print(json.dumps({"messages": sent, "acked": acked,
                      "secs": round(time.monotonic() - started, 3)}), flush=True)
    return 0 if acked == sent else 1


if __name__ == "__main__":
    sys.exit(main())

