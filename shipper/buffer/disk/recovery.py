"""Start-up recovery of a disk buffer directory: what can be delivered, what is quarantined.

Runs before the agent reads anything (``DiskBuffer.open``), in a worker thread:

1. Every segment header is checked first. One written by a newer format version makes the
   whole buffer refuse to start (``StorageError`` naming the file): nothing is touched, so an
   accidental downgrade loses nothing.
2. A ``.salvage`` file is a half-finished salvage from a previous start: without its original
   segment it is complete (it was fsynced before the original moved) and takes its place;
   next to its original it is incomplete and removed.
3. Each segment is verified record by record. A clean one is kept as it is. A damaged one —
   torn tail after a crash, flipped bytes, garbage header — has its good records copied to a
   ``.salvage`` file (write, fsync), the original moved to ``quarantine/`` (directory fsync),
   and the copy renamed into place (directory fsync). A segment with nothing readable (zero
   length, or no verifiable record) is moved to ``quarantine/`` whole. Nothing is deleted
   except segments holding no record at all, which carry no data.
4. Every segment kept is fsynced: after a process crash its last bytes may still be only in
   the page cache, and from now on they are replayed as durable records.

Damaged records are counted by following the frames' length fields through each damaged
range (``format.damaged_records``): exact when they lead to the next good record, otherwise a
lower bound, logged as "at least N" with the segment and byte ranges (a segment cut inside a
record loses the records after the cut without a trace). The quarantine keeps the original
bytes for an operator to inspect.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from shipper.buffer.disk.format import (
    HEADER_SIZE,
    HeaderError,
    NewerFormatError,
    encode_header,
    frame,
    read_header,
    scan,
)
from shipper.buffer.disk.storage import Storage
from shipper.crashpoints import crashpoint
from shipper.errors import StorageError

log = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".seg"
SALVAGE_SUFFIX = ".salvage"
QUARANTINE = "quarantine"
#: A "segment" larger than this is not one of ours (segments hold one chunk): quarantined
#: unread rather than read into memory.
MAX_SEGMENT_BYTES = 1024 * 1024 * 1024


def segment_name(seq: int) -> str:
    return f"{seq:016d}{SEGMENT_SUFFIX}"


def parse_seq(name: str, suffix: str) -> int | None:
    stem = name[: -len(suffix)]
    return int(stem) if name.endswith(suffix) and stem.isdigit() else None


@dataclass(slots=True)
class Recovered:
    """A segment ready to be delivered after start."""

    seq: int
    path: Path
    size: int
    count: int
    mtime: float


@dataclass(slots=True)
class RecoveryResult:
    segments: list[Recovered] = field(default_factory=list)
    corrupt_records: int = 0
    quarantined: list[Path] = field(default_factory=list)
    removed_empty: int = 0


def _refuse_newer(directory: Path, names: list[str]) -> None:
    for name in names:
        path = directory / name
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEADER_SIZE)
        except OSError:
            continue  # unreadable: handled (quarantined) by the main pass
        try:
            read_header(head)
        except NewerFormatError as exc:
            raise StorageError(
                f"disk buffer segment {path} was written by a newer shipper ({exc}); refusing "
                f"to start so that nothing is lost. Run the newer version, or move "
                f"{directory} aside to start with an empty buffer.") from exc
        except HeaderError:
            pass


class Recovery:
    """One recovery pass over one buffer directory."""

    def __init__(self, directory: Path, storage: Storage) -> None:
        self.directory = directory
        self.quarantine_dir = directory / QUARANTINE
        self.storage = storage
        self.result = RecoveryResult()

    def run(self) -> RecoveryResult:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            raise StorageError(f"cannot open disk buffer directory {self.directory}: {exc}"
                               ) from exc
        _refuse_newer(self.directory, [n for n in names
                                       if n.endswith((SEGMENT_SUFFIX, SALVAGE_SUFFIX))])
        try:
            self.quarantine_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.quarantine_dir}: {exc}") from exc
        self._finish_salvages(names)
        names = sorted(os.listdir(self.directory))
        for name in names:
            seq = parse_seq(name, SEGMENT_SUFFIX)
            if seq is not None:
                self._recover(seq, self.directory / name)
        # A process crash leaves written but unsynced bytes in the page cache: what is
        # replayed from now on must be durable like everything else in the buffer.
        try:
            for seg in self.result.segments:
                self.storage.fsync_file(seg.path)
        except OSError as exc:
            raise StorageError(f"cannot fsync disk buffer segment: {exc}") from exc
        self._fsync_dir(self.directory)
        return self.result

    def _finish_salvages(self, names: list[str]) -> None:
        changed = False
        for name in names:
            seq = parse_seq(name, SALVAGE_SUFFIX)
            if seq is None:
                continue
            salvage = self.directory / name
            original = self.directory / segment_name(seq)
            try:
                if original.exists():
                    self.storage.unlink(salvage)
                else:
                    self.storage.rename(salvage, original)
                    log.info("completed the salvage of %s", original,
                             extra={"event": "buffer_salvage_completed"})
                changed = True
            except OSError as exc:
                raise StorageError(f"cannot finish salvage {salvage}: {exc}") from exc
        if changed:
            self._fsync_dir(self.directory)

    def _recover(self, seq: int, path: Path) -> None:
        try:
            st = path.stat()
            if st.st_size > MAX_SEGMENT_BYTES:
                self._quarantine(path, 1, f"{st.st_size} bytes is larger than any segment")
                return
            data = self.storage.read(path)
        except OSError as exc:
            self._quarantine(path, 1, f"unreadable: {exc}")
            return
        if len(data) == 0:
            self._quarantine(path, 0, "zero-length segment")
            return
        try:
            read_header(data)
            header_ok = True
        except HeaderError as exc:
            header_ok = False
            header_problem = str(exc)
        found = scan(data, HEADER_SIZE)
        if header_ok and not found.bad:
            if not found.spans:
                self._remove_empty(path)
                return
            self.result.segments.append(
                Recovered(seq, path, len(data), len(found.spans), st.st_mtime))
            return
        corrupt, exact = found.lost(data)
        lost = describe_loss(corrupt, exact, found.bad)
        reason = header_problem if not header_ok else (
            f"{lost}, {len(found.spans)} good record(s)")
        if not found.spans:
            self._quarantine(path, corrupt, reason, exact=exact, ranges=found.bad)
            return
        self._salvage(seq, path, found.payloads(data), corrupt, reason, st.st_mtime,
                      exact=exact, ranges=found.bad)

    def _salvage(self, seq: int, path: Path, payloads: list[bytes], corrupt: int, reason: str,
                 mtime: float, *, exact: bool = True,
                 ranges: list[tuple[int, int]] | None = None) -> None:
        salvage = self.directory / f"{seq:016d}{SALVAGE_SUFFIX}"
        data = encode_header() + frame(payloads)
        try:
            self.storage.write_file(salvage, data)
        except OSError as exc:
            # No room for the copy: keep the original in place (its good records are still
            # delivered when it is loaded) rather than lose anything.
            log.error("cannot salvage damaged segment %s (%s); delivering it as it is",
                      path, exc, extra={"event": "buffer_salvage_failed"})
            self.result.segments.append(Recovered(seq, path, path.stat().st_size,
                                                  len(payloads), mtime))
            return
        self._quarantine(path, corrupt, reason, salvaged=len(payloads), exact=exact,
                         ranges=ranges)
        crashpoint("buffer_salvage_moved")
        try:
            self.storage.rename(salvage, path)
        except OSError as exc:
            raise StorageError(f"cannot put salvaged segment {salvage} in place: {exc}") from exc
        self._fsync_dir(self.directory)
        self.result.segments.append(Recovered(seq, path, len(data), len(payloads), mtime))

    def _quarantine(self, path: Path, corrupt: int, reason: str, salvaged: int = 0, *,
                    exact: bool = True, ranges: list[tuple[int, int]] | None = None) -> None:
        target = self.quarantine_dir / f"{path.name}.{time.time_ns()}"
        try:
            self.storage.rename(path, target)
        except OSError as exc:
            raise StorageError(f"cannot move damaged segment {path} to {target}: {exc}"
                               ) from exc
        self._fsync_dir(self.quarantine_dir)
        self._fsync_dir(self.directory)
        self.result.corrupt_records += corrupt
        self.result.quarantined.append(target)
        log.warning("disk buffer segment %s is damaged (%s): moved to %s; %d good record(s) "
                    "kept, %s%d record(s) counted as corrupt", path.name, reason, target,
                    salvaged, "" if exact else "at least ", corrupt,
                    extra={"event": "buffer_segment_quarantined", "segment": str(path),
                           "quarantined_to": str(target), "corrupt_records": corrupt,
                           "corrupt_records_exact": exact,
                           "damaged_ranges": shown_ranges(ranges or []),
                           "salvaged_records": salvaged})

    def _remove_empty(self, path: Path) -> None:
        try:
            self.storage.unlink(path)
        except OSError as exc:
            raise StorageError(f"cannot remove empty segment {path}: {exc}") from exc
        self._fsync_dir(self.directory)
        self.result.removed_empty += 1

    def _fsync_dir(self, directory: Path) -> None:
        try:
            self.storage.fsync_dir(directory)
        except OSError as exc:
            raise StorageError(f"cannot fsync {directory}: {exc}") from exc


def describe_loss(count: int, exact: bool, ranges: list[tuple[int, int]]) -> str:
    """``3 damaged record(s) in bytes 16-90, ...`` (``at least`` when only a minimum is known:
    a segment cut inside a record loses the records after the cut without a trace)."""
    where = ", ".join(f"{a}-{b}" for a, b in shown_ranges(ranges))
    hidden = len(ranges) - _SHOWN_RANGES
    more = f" and {hidden} more range(s)" if hidden > 0 else ""
    bound = "" if exact else "at least "
    return f"{bound}{count} damaged record(s) in bytes {where or 'none'}{more}"


_SHOWN_RANGES = 10


def shown_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The first damaged byte ranges, for a log line of bounded length."""
    return ranges[:_SHOWN_RANGES]


def recover(directory: Path, storage: Storage) -> RecoveryResult:
    """Recover ``directory`` (blocking; run it in a worker thread)."""
    return Recovery(directory, storage).run()
