"""The table of open files: which path is read by which reader, and what rotation means.

Decisions made here (spec §2.5 items 2-5; reliability §3 "Tailing and rotation"):

* Files are identified by (st_dev, st_ino) of the symlink TARGET (``os.stat``, never
  ``lstat``); one inode is read by one reader, however many include paths lead to it.
* A known path that now resolves to another inode was rotated by rename: its reader goes on
  draining the old descriptor and the new file is opened from offset 0.
* Rotated siblings ``<real file>.*`` (kubelet's ``0.log.<timestamp>``; never ``.gz``/``.tmp``)
  are adopted as draining readers when nobody read them: generations created and rotated
  away between two checks (rotation bursts), and, at start, a checkpointed inode that was
  rotated while the agent was down — read from its saved offset instead of being lost.
* A path that disappears is a deletion: the open descriptor is drained the same way.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import time

from shipper.metrics import Metrics
from shipper.sources.tail.checkpoints import CheckpointStore
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.discovery import Discovery
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.reader import FileReader, Identified

log = logging.getLogger(__name__)


class FileTable:
    """Open readers, indexed by path and by inode."""

    def __init__(self, name: str, config: TailConfig, store: CheckpointStore,
                 metrics: Metrics) -> None:
        self.name = name
        self.config = config
        self.store = store
        self.discovery = Discovery(config.include, config.exclude)
        self.readers: list[FileReader] = []  # every open reader, active or draining
        self._by_path: dict[str, FileReader] = {}  # the active reader of each path
        self._by_inode: dict[tuple[int, int], FileReader] = {}
        self._known_paths: set[str] = set()  # paths seen in this run (a new inode = rotation)
        self._open_failed: set[str] = set()  # paths whose open failure was logged
        # Closed for good but with batches in flight: their entries stay (a crash before the
        # acks must still resume them) and must not be adopted again by ``_gc_entries``.
        self._retired: dict[str, FileReader] = {}
        self._rotated = metrics.files_rotated
        self._m_open = metrics.files_open.labels(name)

    # -- discovery ------------------------------------------------------------------------

    def scan(self) -> None:
        """Glob the includes: open new paths, notice rotations and deletions, drop stale
        checkpoint entries (after adopting their rotated inode if it is still there)."""
        paths = self.discovery.scan()
        present = set(paths)
        for path in paths:
            self.check_path(path)
        for path in list(self._by_path):
            if path not in present:
                self._drain(self._by_path.pop(path), "deleted")
        self._gc_entries()

    def check_known_paths(self) -> None:
        for path in list(self._by_path):
            self.check_path(path)

    def check_path(self, path: str) -> None:
        """Open a new path; notice that a known path was rotated away or deleted."""
        try:
            st = os.stat(path)  # follows symlinks to the real file
        except OSError:
            if path in self._by_path:
                self._drain(self._by_path.pop(path), "deleted")
            return
        if not stat.S_ISREG(st.st_mode):
            return
        key = (st.st_dev, st.st_ino)
        current = self._by_path.get(path)
        if current is not None and (current.dev, current.ino) == key:
            current.seen_at = time.time()
            return
        if current is not None:  # the path names a new inode: rename rotation
            del self._by_path[path]
            self._drain(current, "renamed")
        existing = self._by_inode.get(key)
        if existing is not None:
            if existing.path == path and existing.draining_since is not None:
                existing.draining_since = None  # renamed back (runtime reopen failed)
                self._by_path[path] = existing
            return
        reader = self._open(path, path, self.config.read_from_head or path in self._known_paths)
        if reader is not None:
            self._by_path[path] = reader
        if current is not None:  # generations rotated away before we could see them
            self._adopt_siblings(current.path, current.real_path, current.key,
                                 newer_than=current.seen_at)

    def _drain(self, reader: FileReader, kind: str) -> None:
        reader.draining_since = time.monotonic()
        self._rotated.labels(self.name, kind).inc()

    def _adopt_siblings(self, path: str, real_path: str, key: str, newer_than: float = 0.0,
                        inode: tuple[int, int] | None = None) -> None:
        """Read rotated siblings of ``real_path`` that nobody reads, to their end."""
        for sibling in sorted(glob.glob(glob.escape(real_path) + ".*")):
            if self.discovery.excluded(sibling):
                continue
            try:
                st = os.stat(sibling)
            except OSError:
                continue
            found = (st.st_dev, st.st_ino)
            if (found in self._by_inode or (inode is not None and found != inode)
                    or st.st_mtime < newer_than or not stat.S_ISREG(st.st_mode)):
                continue
            reader = self._open(path, sibling, True, key)
            if reader is not None:
                log.info("tail %s: reading rotated %s to its end", self.name, sibling)
                self._drain(reader, "adopted")

    def _open(self, path: str, real_path: str, from_head: bool,
              key: str | None = None) -> FileReader | None:
        try:
            fd = os.open(real_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if real_path not in self._open_failed:
                self._open_failed.add(real_path)
                log.warning("tail %s: cannot open %s: %s", self.name, real_path, exc)
            return None
        st = os.fstat(fd)  # the inode actually opened, whatever happened since the stat
        inode = (st.st_dev, st.st_ino)
        if inode in self._by_inode:
            os.close(fd)
            return None
        self._open_failed.discard(real_path)
        reader = FileReader(path, fd, st, parse_path(path, self.config.tag_prefix),
                            self.config, from_head,
                            real_path=None if real_path == path else real_path, key=key)
        self.readers.append(reader)
        self._by_inode[inode] = reader
        self._known_paths.add(path)
        self._m_open.inc()
        self.identify(reader)
        return reader

    def identify(self, reader: FileReader, force: bool = False) -> bool:
        """Compute the reader's identity when its first line is there; True when known."""
        try:
            result = reader.identify(self.store, force)
        except OSError as exc:
            log.warning("tail %s: cannot read %s: %s", self.name, reader.path, exc)
            return False
        if result is Identified.TRUNCATED:
            self._rotated.labels(self.name, "truncated").inc()
        return result is not Identified.NOT_YET

    def _gc_entries(self) -> None:
        """Forget positions of files that are gone (their path names another inode now)."""
        owned = {r.identity for r in self.readers} | self._retired.keys()
        for identity, entry in list(self.store.entries.items()):
            if identity in owned:
                continue
            try:
                st = os.stat(entry.path)
                current = (st.st_dev, st.st_ino)
            except OSError:
                current = None
            if current == (entry.dev, entry.ino):
                continue
            if current is not None:  # rotated while nobody read it: finish it first
                self._adopt_siblings(entry.path, entry.real_path, entry.key,
                                     inode=(entry.dev, entry.ino))
                if identity in {r.identity for r in self.readers}:
                    continue
            self.store.remove(identity)

    # -- closing --------------------------------------------------------------------------

    def retire(self, reader: FileReader) -> None:
        """Close a drained file for good; its entry goes once its last batch is safe."""
        reader.retired = True
        self.close(reader)
        if reader.identity is None:
            return
        if reader.tracker is not None and reader.tracker.pending:
            self._retired[reader.identity] = reader
        else:
            self.store.remove(reader.identity)

    def forget(self, reader: FileReader) -> None:
        """The last batch of a retired file is safe: drop its entry."""
        if reader.identity is not None:
            self._retired.pop(reader.identity, None)
            self.store.remove(reader.identity)

    def close(self, reader: FileReader) -> None:
        if reader.closed:
            return
        reader.close()
        self._m_open.dec()
        self.readers.remove(reader)
        if self._by_inode.get((reader.dev, reader.ino)) is reader:
            del self._by_inode[(reader.dev, reader.ino)]
        if self._by_path.get(reader.path) is reader:
            del self._by_path[reader.path]

    def close_all(self) -> None:
        for reader in list(self.readers):
            self.close(reader)
