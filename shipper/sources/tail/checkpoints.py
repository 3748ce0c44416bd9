"""Crash-safe store of acknowledged file positions: ``<state_dir>/<source>/positions.json``.

Two tables:

* ``files``: one entry per file identity with what is needed to recognise the file again
  (path, real path, identity key, st_dev, st_ino, first-line fingerprint, truncation
  generation), the committed offset and the last size seen. An entry is used on start only
  when the reopened file hashes to the same identity (reliability spec §7): a reused inode or
  a new file with the same name never inherits an old offset. ``size`` lets a restart count
  the bytes of a file that vanished while the agent was down (at least ``size - offset``).
* ``lineages``: for each real file path followed (``.../nginx/0.log``), the fingerprints of
  its generations that were already read, counted as lost or found when the path was first
  seen. A rotated generation (``0.log.<ts>`` or ``0.log.<ts>.gz``) whose fingerprint is not
  there was never seen: it is read from its start, or counted as lost if already compressed.
* ``saved_at``: when the writer last looked for files: the wall clock at the start of its
  last completed scan of the include paths (the loaded value until it scanned). Not when
  the file was written: a save can follow a file's creation before any scan saw it, and a
  crash then must not make that file look old. A file first seen after a restart whose
  generations are newer than that appeared after the previous run's last look: they are
  read.

Writes are atomic (tmp file, fsync, rename, fsync of the directory), so a crash leaves
either the old or the new file, never half of one. A corrupt file is moved aside and the
source starts without positions: files are re-read from the head and the deterministic ids
turn the re-sent records into 409s, which is duplication on the wire, not in the index, and
never a crash loop. The tail source is the only writer of this file (design: "Nothing else
writes progress").
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson

from shipper.crashpoints import crashpoint
from shipper.errors import StorageError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_IndexKey = tuple[str, int, int, str]


@dataclass(slots=True)
class Entry:
    """Where one file incarnation is safe up to."""

    path: str
    real_path: str
    key: str
    dev: int
    ino: int
    fingerprint: str
    generation: int
    offset: int
    size: int = 0  # last size seen (loss accounting when the file vanishes while we are down)
    # Its reader was given up and everything after ``size`` counted as lost already: a
    # restart counts at most ``size - offset`` (what was in memory), never the file again.
    gone: bool = False
    # Wall-clock nanoseconds a line without a timestamp of its own at ``offset`` is timed
    # with: the time of the last timestamped line before ``offset``, or when the file was
    # first seen (see ``decoding``). 0: unknown (written by an older version).
    time_ns: int = 0
    # How far records were handed to the pipeline (maybe delivered, not acknowledged): a
    # restart that can no longer read ``offset..sent`` (compressed, deleted) reports those
    # bytes as unconfirmed, not lost. Saved apart (top-level ``sent``), so an older version
    # reading the file still accepts its ``files`` entries.
    sent: int = 0

    @property
    def index_key(self) -> _IndexKey:
        return (self.key, self.dev, self.ino, self.fingerprint)


_FIELDS = tuple(f.name for f in fields(Entry) if f.name != "sent")  # asdict is 10x slower


class CheckpointFiles:
    """The system calls of a checkpoint write, in one object tests replace to inject faults
    (ENOSPC, EIO, EACCES...) at each step. All block: the source calls them off the loop."""

    def makedirs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    def create(self, path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def fsync_dir(self, directory: Path) -> None:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def unlink(self, path: Path) -> None:
        os.unlink(path)


class CheckpointStore:
    """In-memory positions plus their atomic persistence."""

    def __init__(self, directory: Path, files: CheckpointFiles | None = None) -> None:
        self.directory = directory
        self.files = files or CheckpointFiles()
        self.path = directory / "positions.json"
        self.entries: dict[str, Entry] = {}
        self.lineages: dict[str, set[str]] = {}  # real path -> fingerprints handled
        self.lineage_paths: dict[str, str] = {}  # real path -> the path that led to it
        self.saved_at: float | None = None  # the loaded file's ``saved_at`` (see above)
        # Start of this run's last completed scan (``TailSource``); None: none yet.
        self.scanned_at: float | None = None
        self.dirty = False
        # Identities whose entry may not be on disk yet (``TailSource`` removes those a
        # write included): lines timed by a fresh entry's ``time_ns`` wait for it.
        self.unsaved: set[str] = set()
        self._index: dict[_IndexKey, set[str]] = {}
        self.failed_step = ""  # the step the last failed ``write`` stopped at (a metric label)

    def load(self) -> None:
        """Read the positions file; a missing file is an empty store."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        try:
            doc = orjson.loads(raw)
            if doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            entries = {ident: Entry(**fields) for ident, fields in doc["files"].items()}
            for ident, sent in doc.get("sent", {}).items():
                if ident in entries:
                    entries[ident].sent = int(sent)
            records = doc.get("lineages", {})
            lineages = {real: set(rec["handled"]) for real, rec in records.items()}
            lineage_paths = {real: str(rec["path"]) for real, rec in records.items()}
            saved_at = doc.get("saved_at")
            self.saved_at = float(saved_at) if saved_at is not None else None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = self.path.with_name(f"positions.json.corrupt-{int(time.time())}")
            log.error("checkpoint file %s is unreadable (%s); moved to %s, starting without "
                      "positions", self.path, exc, aside,
                      extra={"event": "tail_checkpoints_corrupt"})
            try:
                os.replace(self.path, aside)
            except OSError as move_exc:
                raise StorageError(f"cannot move aside {self.path}: {move_exc}") from move_exc
            entries, lineages, lineage_paths = {}, {}, {}
        self.entries = {}
        self._index = {}
        for ident, entry in entries.items():
            self.put(ident, entry)
        self.lineages = lineages
        self.lineage_paths = lineage_paths
        self.unsaved = set()
        self.dirty = False

    def find(self, key: str, dev: int, ino: int, fingerprint: str) -> tuple[str, Entry] | None:
        """The entry of this file (latest truncation generation), if any."""
        best: tuple[str, Entry] | None = None
        for ident in self._index.get((key, dev, ino, fingerprint), ()):
            entry = self.entries[ident]
            if best is None or entry.generation > best[1].generation:
                best = (ident, entry)
        return best

    def put(self, identity: str, entry: Entry) -> None:
        old = self.entries.get(identity)
        if old is not None:
            self._unindex(identity, old)
        self.entries[identity] = entry
        self._index.setdefault(entry.index_key, set()).add(identity)
        self.unsaved.add(identity)
        self.dirty = True

    def set_offset(self, identity: str, offset: int, time_ns: int | None = None) -> None:
        """Move the committed offset; ``time_ns``: the time carried there (see ``Entry``)."""
        entry = self.entries.get(identity)
        if entry is not None and entry.offset != offset:
            entry.offset = offset
            if time_ns is not None:
                entry.time_ns = time_ns
            self.dirty = True

    def set_time(self, identity: str, time_ns: int) -> None:
        """Give an entry its first ``time_ns`` (one written by an older version has none)."""
        entry = self.entries.get(identity)
        if entry is not None and entry.time_ns != time_ns:
            entry.time_ns = time_ns
            self.unsaved.add(identity)
            self.dirty = True

    def set_size(self, identity: str, size: int) -> None:
        """Record the size last seen; written with the next save, never a reason for one."""
        entry = self.entries.get(identity)
        if entry is not None:
            entry.size = size

    def remove(self, identity: str) -> None:
        entry = self.entries.pop(identity, None)
        self.unsaved.discard(identity)
        if entry is not None:
            self._unindex(identity, entry)
            self.dirty = True

    def _unindex(self, identity: str, entry: Entry) -> None:
        idents = self._index.get(entry.index_key)
        if idents is not None:
            idents.discard(identity)
            if not idents:
                del self._index[entry.index_key]

    # -- lineages -------------------------------------------------------------------------

    def handled(self, lineage: str) -> set[str] | None:
        """Fingerprints of the generations of ``lineage`` already dealt with (None: unknown)."""
        return self.lineages.get(lineage)

    def mark_handled(self, lineage: str, fingerprint: str, path: str) -> None:
        known = self.lineages.setdefault(lineage, set())
        self.lineage_paths.setdefault(lineage, path)
        if fingerprint not in known:
            known.add(fingerprint)
            self.dirty = True

    def set_handled(self, lineage: str, fingerprints: set[str], path: str) -> None:
        """``path``: the discovered path that leads to ``lineage`` (names its records)."""
        self.lineage_paths.setdefault(lineage, path)
        if self.lineages.get(lineage) != fingerprints:
            self.lineages[lineage] = set(fingerprints)
            self.dirty = True

    def drop_lineage(self, lineage: str) -> None:
        self.lineage_paths.pop(lineage, None)
        if self.lineages.pop(lineage, None) is not None:
            self.dirty = True

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Serialized current state; clears ``dirty`` (take it, then ``write`` it)."""
        self.dirty = False
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "files": {ident: {name: getattr(entry, name) for name in _FIELDS}
                      for ident, entry in self.entries.items()},
            "lineages": {real: {"path": self.lineage_paths.get(real, real),
                                "handled": sorted(fps)} for real, fps in self.lineages.items()},
            "saved_at": self.scanned_at if self.scanned_at is not None else self.saved_at,
            "sent": {ident: entry.sent for ident, entry in self.entries.items() if entry.sent},
        }
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)

    def write(self, data: bytes) -> None:
        """Atomically replace the positions file with ``data`` (blocking: run off the loop).

        Raises StorageError on any failure. Until the rename the old file is untouched, so a
        failed write never moves or damages the saved positions; the partial temporary file
        is removed (a full disk gets its space back) and the caller writes again later. A
        failure of the final directory fsync leaves the new, whole file in place.
        """
        files = self.files
        tmp = self.path.with_name("positions.json.tmp")
        step = "mkdir"
        renamed = False
        try:
            files.makedirs(self.directory)
            step = "create"
            fd = files.create(tmp)
            try:
                step = "write"
                files.write(fd, data)
                step = "fsync"
                files.fsync(fd)
            finally:
                with contextlib.suppress(OSError):
                    files.close(fd)
            step = "rename"
            files.replace(tmp, self.path)
            renamed = True
            crashpoint("checkpoint_after_write")
            step = "fsync_dir"
            files.fsync_dir(self.directory)
        except OSError as exc:
            if not renamed and step != "mkdir":
                with contextlib.suppress(OSError):
                    files.unlink(tmp)
            self.failed_step = step
            raise StorageError(f"cannot write {self.path} ({step}): {exc.strerror or exc}"
                               ) from exc
