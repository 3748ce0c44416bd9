"""Deterministic generator of a Kubernetes node's container log tree.

`generate_node_logs` writes what kubelet and the container runtime leave on a node —
`var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` files in docker json-file or CRI format and
`var/log/containers/<pod>_<ns>_<container>-<id>.log` symlinks — filled with realistic Istio,
Envoy and application output. It exists so the demo, the tests and the benchmark all exercise
the shipper against the same kind of input a production node produces, including the awkward
parts: 16 KiB partial lines, multi-line stack traces, stderr, empty and non-ASCII lines.

Everything is derived from `seed` (never from the clock or global random state), so a seed
always produces a byte-identical tree, and the returned `Manifest` says exactly how many
logical records each file holds for exactly-once checks.
"""

from __future__ import annotations

import os
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO, Final

from shipper.demo.content import LineSource, make_source
from shipper.demo.content.base import filler
from shipper.demo.formats import (
    FORMATS,
    SPLIT_SIZE,
    LogFormat,
    RFC3339NanoFormatter,
    cri_lines,
    docker_lines,
    moby_json_string,
    split_pieces,
)
from shipper.demo.manifest import FileEntry, Manifest
from shipper.demo.topology import Cluster, Container, Pod, build_cluster

DEFAULT_BASE_TIME: Final = datetime(2026, 11, 22, tzinfo=UTC)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# Kinds of special records, placed at seeded random positions across the whole node.
_LONG: Final = "long"
_EMPTY: Final = "empty"
_NON_ASCII: Final = "non_ascii"
_INVALID: Final = "invalid_utf8"

_FLUSH_EVERY: Final = 4096  # physical lines per write(): large writes, bounded memory
_WRITE_BUFFER: Final = 1 << 20
_DOCKER_STREAM: Final = {
    "stdout": b',"stream":"stdout","time":"',
    "stderr": b',"stream":"stderr","time":"',
}
# Continuation lines of one event (stack frames) are written microseconds apart.
_CONT_GAP_NS: Final = (1_000, 40_000)
_CONT_GAP_SPAN: Final = _CONT_GAP_NS[1] - _CONT_GAP_NS[0]


@dataclass(frozen=True, slots=True)
class _Target:
    """One log file to write and everything decided about it up front."""

    pod: Pod
    container: Container
    log_format: LogFormat
    records: int
    specials: dict[int, str]
    seed: int


def generate_node_logs(
    root: Path,
    *,
    seed: int,
    lines: int,
    files: int | None = None,
    log_format: LogFormat | None = None,
    base_time: datetime = DEFAULT_BASE_TIME,
    span: timedelta = timedelta(minutes=10),
    long_line_every: int = 2000,
    empty_line_every: int = 5000,
    non_ascii_every: int = 1000,
    invalid_utf8_every: int = 0,
    mark: bool = False,
) -> Manifest:
    """Write a node's container log tree under `root` and describe it.

    Args:
        root: Directory standing in for `/`; `var/log/...` is created below it. Its
            `var/log/pods` and `var/log/containers` must be absent or empty, so stale files
            from another run can never be counted.
        seed: Drives every choice; the same arguments give a byte-identical tree.
        lines: Total logical records over all files (a 40 KiB line split into three partial
            physical lines is one record; every stack-trace line is its own record).
        files: Number of container log files. Default: one pod per demo deployment (18
            files). More files add replicas; fewer keep the first deployments.
        log_format: Force `"docker"` (json-file) or `"cri"` for every file; default mixes
            them per pod, about half and half.
        base_time: Runtime timestamps start just after this instant and only increase.
        span: Roughly how much time each file's lines cover.
        long_line_every: One record in this many is longer than 16 KiB (0 = none).
        empty_line_every: One record in this many is an empty line (0 = none).
        non_ascii_every: One record in this many contains non-ASCII UTF-8 (0 = none).
            All other content is ASCII, so the manifest counts are exact.
        invalid_utf8_every: One record in this many contains bytes that are not valid UTF-8
            (0 = none, the default). Docker files carry moby's U+FFFD replacement instead.
        mark: Append ` seq=<file index>:<record index>` to every record (including empty
            ones, which then hold only the marker) so tests can identify each record.
    """
    if lines < 0:
        raise ValueError("lines must be >= 0")
    if log_format is not None and log_format not in FORMATS:
        raise ValueError(f"log_format must be one of {FORMATS}, not {log_format!r}")
    _require_empty(root)
    rng = random.Random(seed)
    cluster = build_cluster(rng, files)
    pairs = [(pod, c) for pod in cluster.pods for c in pod.containers]
    formats = _assign_formats(rng, cluster.pods, log_format)
    counts = _distribute(lines, [c.weight for _, c in pairs])
    quotas = [
        (_LONG, _quota(lines, long_line_every)),
        (_EMPTY, _quota(lines, empty_line_every)),
        (_NON_ASCII, _quota(lines, non_ascii_every)),
        (_INVALID, _quota(lines, invalid_utf8_every)),
    ]
    specials = _place_specials(rng, counts, quotas)
    targets = [
        _Target(pod, c, formats[pod.name], n, sp, rng.getrandbits(64))
        for (pod, c), n, sp in zip(pairs, counts, specials, strict=True)
    ]
    base_ns = (base_time - _EPOCH) // timedelta(microseconds=1) * 1000
    span_ns = max(1, span // timedelta(microseconds=1) * 1000)
    entries = [
        _write_target(root, index, target, cluster, base_ns, span_ns, mark)
        for index, target in enumerate(targets)
    ]
    return Manifest.from_files(seed, base_time.isoformat().replace("+00:00", "Z"), mark, entries)


def _require_empty(root: Path) -> None:
    for sub in ("var/log/pods", "var/log/containers"):
        d = root / sub
        if d.exists() and any(d.iterdir()):
            raise FileExistsError(f"{d} is not empty; generate into a fresh root")


def _quota(lines: int, every: int) -> int:
    return round(lines / every) if every > 0 else 0


def _assign_formats(
    rng: random.Random, pods: Sequence[Pod], forced: LogFormat | None
) -> dict[str, LogFormat]:
    """Pick a format per pod (a pod's containers share a runtime), balancing file counts."""
    if forced is not None:
        return {p.name: forced for p in pods}
    order = list(pods)
    rng.shuffle(order)
    files: dict[LogFormat, int] = dict.fromkeys(FORMATS, 0)
    out: dict[str, LogFormat] = {}
    for pod in order:
        fewest = min(files.values())
        candidates = [f for f in FORMATS if files[f] == fewest]
        fmt = candidates[0] if len(candidates) == 1 else rng.choice(candidates)
        out[pod.name] = fmt
        files[fmt] += len(pod.containers)
    return out


def _distribute(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` proportionally to `weights` (largest remainder, ties by position)."""
    w_sum = sum(weights)
    raw = [total * w / w_sum for w in weights]
    counts = [int(x) for x in raw]
    short = total - sum(counts)
    by_remainder = sorted(range(len(raw)), key=lambda i: (counts[i] - raw[i], i))
    for i in by_remainder[:short]:
        counts[i] += 1
    return counts


def _place_specials(
    rng: random.Random, counts: Sequence[int], quotas: Sequence[tuple[str, int]]
) -> list[dict[int, str]]:
    """Scatter special records over the node: {record index within file: kind} per file."""
    total = sum(counts)
    kinds = [kind for kind, n in quotas for _ in range(n)][:total]
    per_file: list[dict[int, str]] = [{} for _ in counts]
    if not kinds:
        return per_file
    cum = list(accumulate(counts))
    for g, kind in zip(rng.sample(range(total), len(kinds)), kinds, strict=True):
        f = bisect_right(cum, g)
        per_file[f][g - (cum[f - 1] if f else 0)] = kind
    return per_file


def _write_target(
    root: Path,
    index: int,
    target: _Target,
    cluster: Cluster,
    base_ns: int,
    span_ns: int,
    mark: bool,
) -> FileEntry:
    pod, container = target.pod, target.container
    real_rel = f"var/log/pods/{pod.namespace}_{pod.name}_{pod.uid}/{container.name}/0.log"
    link_name = f"{pod.name}_{pod.namespace}_{container.name}-{container.container_id}.log"
    entry = FileEntry(
        index=index,
        namespace=pod.namespace,
        pod=pod.name,
        pod_uid=pod.uid,
        container=container.name,
        container_id=container.container_id,
        kind=container.kind,
        format=target.log_format,
        symlink=f"var/log/containers/{link_name}",
        path=real_rel,
    )
    real = root / real_rel
    real.parent.mkdir(parents=True, exist_ok=True)
    link = root / entry.symlink
    link.parent.mkdir(parents=True, exist_ok=True)
    # Relative target so the tree works wherever it is mounted or copied.
    os.symlink(os.path.relpath(real, link.parent), link)
    rng = random.Random(target.seed)
    source = make_source(rng, cluster, pod, container)
    start_ns = base_ns + rng.randrange(1, 1_000_000_000)
    source.not_before = base_ns
    mean_gap = max(1, span_ns // max(1, target.records))
    with real.open("wb", buffering=_WRITE_BUFFER) as fh:
        _FileWriter(fh, entry, source, mark).run(
            target.records, target.specials, start_ns, mean_gap
        )
    return entry


class _FileWriter:
    """Writes one file's records; the hot loop of the generator, kept free of per-line I/O."""

    def __init__(self, fh: BinaryIO, entry: FileEntry, source: LineSource, mark: bool):
        self.fh = fh
        self.entry = entry
        self.source = source
        self.rng = source.rng
        self.mark = mark
        self.docker = entry.format == "docker"
        self.ts = RFC3339NanoFormatter()
        self.text_buf: list[str] = []
        self.bytes_buf: list[bytes] = []

    def run(self, records: int, specials: dict[int, str], start_ns: int, mean_gap: int) -> None:
        entry, source, rng, ts = self.entry, self.source, self.rng, self.ts
        docker, mark = self.docker, self.mark
        text_buf, bytes_buf = self.text_buf, self.bytes_buf
        gap_hi = 2 * mean_gap - 1
        rand = rng.random
        t = start_ns
        stderr = 0
        first_t = start_ns
        events = event_lines = 0
        deferred: list[str] = []  # special records due inside an event: written after it
        for k in range(records):
            # int(random() * n) is several times cheaper than randrange() on this hot path.
            in_event = source.in_event
            if in_event:
                t += _CONT_GAP_NS[0] + int(rand() * _CONT_GAP_SPAN)
            else:
                t += 1 + int(rand() * gap_hi)
            if k == 0:
                first_t = t
            special = specials.get(k) if specials else None
            if deferred or (special is not None and in_event):
                if special is not None:
                    deferred.append(special)
                # A stack trace stays whole, unless the file ends before the specials fit.
                must = records - k <= len(deferred)
                special = deferred.pop(0) if must or not in_event else None
            if special is None:
                stream, text = source.line(t)
                if in_event:
                    event_lines += 1
                elif source.in_event:  # this line opened a multi-line event
                    events += 1
                    event_lines += 1
                if mark:
                    text = f"{text} seq={entry.index}:{k}"
            else:
                stream, text, t = self._special(special, t, k)
            if stream == "stderr":
                stderr += 1
            if special == _LONG:
                continue  # already written, pieces and all
            if docker:
                bytes_buf.append(
                    b'{"log":'
                    + moby_json_string(text + "\n")
                    + _DOCKER_STREAM[stream]
                    + ts(t).encode()
                    + b'"}\n'
                )
                if len(bytes_buf) >= _FLUSH_EVERY:
                    self._flush()
            else:
                text_buf.append(f"{ts(t)} {stream} F {text}\n")
                if len(text_buf) >= _FLUSH_EVERY:
                    self._flush()
        self._flush()
        entry.records = records
        entry.events, entry.event_lines = events, event_lines
        entry.physical_lines += records
        entry.stderr_records = stderr
        if records:
            entry.first_time = ts(first_t)
            entry.last_time = ts(t)

    def _special(self, kind: str, t: int, k: int) -> tuple[str, str, int]:
        """Produce a special record; long ones are written here and may advance the clock."""
        entry, source = self.entry, self.source
        suffix = f" seq={entry.index}:{k}" if self.mark else ""
        if kind == _EMPTY:
            entry.empty_records += 1
            return "stdout", suffix, t
        if kind == _NON_ASCII:
            entry.non_ascii_records += 1
            stream, text = source.non_ascii_line(t)
            return stream, text + suffix, t
        if kind == _INVALID:
            entry.invalid_utf8_records += 1
            stream, text = source.invalid_utf8_line(t)
            return stream, text + suffix, t
        entry.long_records += 1
        blob_len = self.rng.randint(SPLIT_SIZE + 1, 3 * SPLIT_SIZE)
        blob = filler(self.rng, blob_len)
        stream, text = source.long_line(t, blob)
        text += suffix
        if len(text) % SPLIT_SIZE == 0:
            # A line of exactly N*16 KiB makes runtimes emit an extra empty final piece;
            # keep the record count unambiguous by avoiding that length.
            stream, text = source.long_line(t, blob + "A")
            text += suffix
        pieces = split_pieces(text)
        stamps = [self.ts(t)]
        for _ in pieces[1:]:
            t += self.rng.randrange(1_000, 20_000)
            stamps.append(self.ts(t))
        entry.partial_lines += len(pieces) - 1
        entry.physical_lines += len(pieces) - 1  # the last piece is counted with the record
        if self.docker:
            self.bytes_buf.append(docker_lines(stamps, stream, pieces))
        else:
            self.text_buf.append(cri_lines(stamps, stream, pieces))
        return stream, text, t

    def _flush(self) -> None:
        if self.bytes_buf:
            chunk = b"".join(self.bytes_buf)
            self.bytes_buf.clear()
        elif self.text_buf:
            chunk = "".join(self.text_buf).encode("utf-8", "surrogateescape")
            self.text_buf.clear()
        else:
            return
        self.fh.write(chunk)
        self.entry.bytes += len(chunk)
