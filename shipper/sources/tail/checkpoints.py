"""Crash-safe store of acknowledged file positions: ``<state_dir>/<source>/positions.json``.

One entry per file identity with what is needed to recognise the file again (path, real
path, identity key, st_dev, st_ino, first-line fingerprint, truncation generation) and the
committed offset. An entry is used on start only when the reopened file hashes to the same
identity (reliability spec §7): a reused inode or a new file with the same name never
inherits an old offset.

Writes are atomic (tmp file, fsync, rename, fsync of the directory), so a crash leaves
either the old or the new file, never half of one. A corrupt file is moved aside and the
source starts without positions: files are re-read from the head and the deterministic ids
turn the re-sent records into 409s, which is duplication on the wire, not in the index, and
never a crash loop. The tail source is the only writer of this file (design: "Nothing else
writes progress").
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from shipper.errors import StorageError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


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


class CheckpointStore:
    """In-memory positions plus their atomic persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "positions.json"
        self.entries: dict[str, Entry] = {}
        self.dirty = False

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
            self.entries = {ident: Entry(**fields) for ident, fields in doc["files"].items()}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            aside = self.path.with_name(f"positions.json.corrupt-{int(time.time())}")
            log.error("checkpoint file %s is unreadable (%s); moved to %s, starting without "
                      "positions", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError as move_exc:
                raise StorageError(f"cannot move aside {self.path}: {move_exc}") from move_exc
            self.entries = {}

    def find(self, key: str, dev: int, ino: int, fingerprint: str) -> tuple[str, Entry] | None:
        """The entry of this file (latest truncation generation), if any."""
        best: tuple[str, Entry] | None = None
        for ident, entry in self.entries.items():
            if (entry.dev == dev and entry.ino == ino and entry.fingerprint == fingerprint
                    and entry.key == key
                    and (best is None or entry.generation > best[1].generation)):
                best = (ident, entry)
        return best

    def put(self, identity: str, entry: Entry) -> None:
        self.entries[identity] = entry
        self.dirty = True

    def set_offset(self, identity: str, offset: int) -> None:
        entry = self.entries.get(identity)
        if entry is not None and entry.offset != offset:
            entry.offset = offset
            self.dirty = True

    def remove(self, identity: str) -> None:
        if self.entries.pop(identity, None) is not None:
            self.dirty = True

    def snapshot(self) -> bytes:
        """Serialized current state; clears ``dirty`` (take it, then ``write`` it)."""
        self.dirty = False
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "files": {ident: asdict(entry) for ident, entry in self.entries.items()},
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def write(self, data: bytes) -> None:
        """Atomically replace the positions file with ``data`` (blocking: run off the loop)."""
        tmp = self.path.with_name("positions.json.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc
