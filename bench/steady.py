"""The steady-rate writer: container log files that grow in real time at a fixed rate.

The issue's memory row is about an agent that keeps up with a node for minutes, not one that
reads a finished tree: this process (separate, so its CPU is not the agent's) appends the
workload's records again, round-robin over the workload's files under the same
``/var/log/containers`` names (so enrichment still finds the pods), in ticks of 50 ms, each
file written with whole records only. It stops after ``--duration`` seconds and prints how
many records it wrote, which is what the agent must deliver.

Files are not rotated: 300 s at 20k lines/s is about 1.6 GB over the 50 files.

    python -m bench.steady --source WORKLOAD --dest DIR --rate 20000 --duration 300
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.records import record_blobs
from shipper.demo.manifest import Manifest

TICK_SECS = 0.05


def lay_out(source: Path, dest: Path, manifest: Manifest) -> list[tuple[int, list[bytes]]]:
    """Create the empty log files and their symlinks under ``dest``; return each file's
    descriptor (append mode) and the records it cycles through."""
    out: list[tuple[int, list[bytes]]] = []
    for entry in manifest.files:
        blobs = record_blobs(entry, source)
        if not blobs:
            continue
        path = entry.path_in(dest)
        path.parent.mkdir(parents=True, exist_ok=True)
        link = entry.symlink_in(dest)
        link.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(path, link.parent))
        out.append((fd, blobs))
    return out


def write_steadily(files: list[tuple[int, list[bytes]]], rate: float, duration: float,
                   ) -> tuple[int, int, float]:
    """Append records round-robin until ``duration`` has passed; ``(records, bytes, secs)``."""
    positions = [0] * len(files)
    written = nbytes = 0
    turn = 0
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= duration:
            break
        due = int(rate * min(elapsed + TICK_SECS, duration)) - written
        pending: list[list[bytes]] = [[] for _ in files]
        for _ in range(max(due, 0)):
            i = turn % len(files)
            turn += 1
            blobs = files[i][1]
            pending[i].append(blobs[positions[i]])
            positions[i] = (positions[i] + 1) % len(blobs)
        for (fd, _), chunk in zip(files, pending, strict=True):
            if chunk:
                data = b"".join(chunk)
                os.write(fd, data)
                nbytes += len(data)
        written += max(due, 0)
        time.sleep(max(0.0, started + elapsed + TICK_SECS - time.monotonic()))
    return written, nbytes, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="generated workload root")
    parser.add_argument("--dest", type=Path, required=True, help="root of the growing tree")
    parser.add_argument("--rate", type=float, default=20_000.0, help="records per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds")
    args = parser.parse_args(argv)
    manifest = Manifest.from_json((args.source / "workload.json").read_bytes())
    files = lay_out(args.source, args.dest, manifest)
    print(json.dumps({"ready": len(files)}), flush=True)
    try:
        records, nbytes, secs = write_steadily(files, args.rate, args.duration)
    finally:
        for fd, _ in files:
            os.close(fd)
    print(json.dumps({"records": records, "bytes": nbytes, "secs": round(secs, 3)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
