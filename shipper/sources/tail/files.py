"""The table of followed files: which path is read by which reader, and what changes mean.

Decisions made here (spec §2.5 items 2-5; reliability §3 "Tailing and rotation"):

* Files are identified by (st_dev, st_ino) of the symlink TARGET (``os.stat``, never
  ``lstat``); one inode is read by one reader, however many include paths lead to it.
* A known path that now resolves to another inode was rotated by rename (or, for a
  ``/var/log/containers`` symlink, retargeted to the restarted container's ``1.log``): its
  reader goes on reading the old inode to its end, the new file is read from offset 0.
* Whenever a path was rotated, and for every checkpoint entry no reader claims (the agent
  was down), the file's generations are reconciled (``lineage``): generations never seen
  are read, compressed or vanished unread bytes are counted as lost, exactly once.
* A path that disappears is a deletion: the open descriptor is read to its end, for at most
  ``deleted_file_timeout_secs`` once the file is unlinked (``expire``).
* A truncation (the file shrank, or its first line changed) moves the old incarnation to
  its copy when one exists (copytruncate: ``<file>.1`` with the same first line), so lines
  written between our last read and the copy are still read, under their original ids; the
  inode is then read again from 0 as a new incarnation. Without a copy, the unread bytes
  last seen are counted as lost.
* Descriptors are capped (``slots``); readers without one keep their state in memory.
* With ``workers: N`` a path whose real file belongs to another worker (``shard``) is never
  opened here, also when a known path is retargeted there between two scans: the old file
  is read to its end, the new one is the other worker's.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from collections.abc import Callable

from shipper.metrics import Metrics
from shipper.sources.tail import lineage as lin
from shipper.sources.tail import slots
from shipper.sources.tail.checkpoints import CheckpointStore, Entry
from shipper.sources.tail.config import MultilineConfig, TailConfig
from shipper.sources.tail.discovery import Discovery, own_pod
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.reader import FileReader, Identified
from shipper.sources.tail.recovery import Recovery, link
from shipper.sources.tail.rules import RuleChooser
from shipper.sources.tail.unreadable import Unreadable

log = logging.getLogger(__name__)


class FileTable:
    """Every reader, indexed by path, inode and lineage."""

    def __init__(self, name: str, config: TailConfig, store: CheckpointStore,
                 metrics: Metrics, clock: Callable[[], float] = time.monotonic,
                 shard: Callable[[str], bool] | None = None) -> None:
        """``shard``: with ``workers: N``, True for the real paths this worker reads."""
        self.name = name
        self.config = config
        self.store = store
        self.clock = clock
        self.shard = shard
        self.discovery = Discovery(config.include, config.exclude,
                                   own_pod() if config.exclude_own_pod else None, shard)
        self.generations = lin.Generations()
        self.readers: list[FileReader] = []  # every reader not closed for good
        self.by_path: dict[str, FileReader] = {}  # the current reader of each path
        self.by_inode: dict[tuple[int, int], FileReader] = {}
        self.by_lineage: dict[str, dict[FileReader, None]] = {}  # ordered: deterministic
        self._known_paths: set[str] = set()  # paths seen in this run (a new inode = rotation)
        self.present: set[str] = set()  # paths of the last scan
        # paths whose last open failed: not waiting for a descriptor, warned about apart
        self.unreadable = Unreadable(name, metrics.files_unreadable.labels(name), clock)
        self.rules = RuleChooser(name, config, metrics.multiline_hints_unknown.labels(name))
        # Closed for good but with batches in flight: their entries stay (a crash before the
        # acks must still resume them) and must not be reconciled as orphans meanwhile.
        self.retired: dict[str, FileReader] = {}
        self.recovery = Recovery(self)
        # First sight of a file: rotated generations modified since then are new (read).
        # The previous run's last scan until the first scan is done, then this run's start.
        self.new_since: float | None = None
        self.attached = 0
        self.waiting = 0  # readers with work and no descriptor (after the last ``balance``)
        self.changed = False  # a reader got a descriptor or new work: the read loop wakes
        self._metrics = metrics
        self.rotated = metrics.files_rotated
        self._m_open = metrics.files_open.labels(name)
        self._m_waiting = metrics.files_waiting.labels(name)
        self._m_deleted = metrics.files_deleted_open.labels(name)

    # -- discovery ------------------------------------------------------------------------

    def scan(self) -> None:
        """Glob the includes: new paths, rotations, deletions; then reconcile orphans."""
        self.generations.refresh()
        paths = self.discovery.scan()
        self.present = set(paths)
        for path in paths:
            self.check_path(path)
        for path in list(self.by_path):
            if path not in self.present:
                self.drain(self.by_path.pop(path), "deleted")
        self.recovery.reconcile_orphans()
        self.recovery.gc_lineages()

    def check_known_paths(self) -> None:
        self.generations.refresh()
        for path in list(self.by_path):
            self.check_path(path)

    def check_path(self, path: str) -> None:
        """Open a new path; notice that a known path was rotated away or deleted."""
        try:
            st = os.stat(path)  # follows symlinks to the real file
        except OSError:
            if path in self.by_path:
                self.drain(self.by_path.pop(path), "deleted")
            return
        if not stat.S_ISREG(st.st_mode):
            return
        key = (st.st_dev, st.st_ino)
        current = self.by_path.get(path)
        if current is not None and (current.dev, current.ino) == key:
            if not current.attached:
                current.size_seen = st.st_size  # growth of a file waiting for a descriptor
            return
        if current is not None:  # the path names a new inode: rename rotation or retarget
            del self.by_path[path]
            self.drain(current, "renamed")
            self.generations.refresh()  # its directory changed: list it again
        existing = self.by_inode.get(key)
        if existing is not None:
            if existing.path == path and existing.draining_since is not None:
                existing.draining_since = None  # renamed back (runtime reopen failed)
                self.by_path[path] = existing
            return
        lineage = os.path.realpath(path)
        if self.shard is not None and not self.shard(lineage):
            return  # retargeted into another worker's shard since the scan: theirs now
        first_sight = self.store.handled(lineage) is None
        from_head = self.config.read_from_head or path in self._known_paths or not first_sight
        reader = self.new_reader(path, path, st.st_dev, st.st_ino, st.st_size, lineage,
                                  from_head)
        self.by_path[path] = reader
        if first_sight:  # record what exists (and read what appeared since ``new_since``)
            self.recovery.reconcile(lineage, path, first_sight=True)
            self.recovery.restarted_between(None, lineage, path)
        if current is not None:  # generations rotated away before we could see them
            adopted = self.recovery.reconcile(current.lineage, current.path)
            if current.lineage == lineage:
                link([current, *adopted, reader])
            else:
                self.recovery.restarted_between(current.lineage, lineage, path)
        elif not first_sight:
            # The path was missing for a while (renamed away before its new file was
            # created, or a restart adopted the rotated generation from its checkpoint
            # before the new file existed): that generation still waits for a successor.
            previous = self._awaiting_successor(lineage, reader)
            if previous is not None:
                link([previous, reader])

    def _awaiting_successor(self, lineage: str, reader: FileReader) -> FileReader | None:
        """The youngest drained generation of ``lineage`` that has not handed over yet and
        has no successor: the new ``reader`` continues its open messages."""
        found = None
        for other in self.by_lineage.get(lineage, ()):
            if (other is not reader and not other.closed and not other.given_up
                    and other.draining_since is not None and other.successor is None
                    and not other.handed_over):
                found = other
        return found

    def drain(self, reader: FileReader, kind: str) -> None:
        """The reader's file is no longer its path's current file: read it to its end."""
        if reader.draining_since is None:
            reader.draining_since = self.clock()
            self.rotated.labels(self.name, kind).inc()
            self.changed = True

    # -- lineages -------------------------------------------------------------------------

    def owned(self) -> set[str]:
        return {r.identity for r in self.readers if r.identity} | self.retired.keys()

    def current_is(self, reader: FileReader) -> bool:
        try:
            st = os.stat(reader.open_path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (reader.dev, reader.ino)

    # -- readers and descriptors ----------------------------------------------------------

    def new_reader(self, path: str, open_path: str, dev: int, ino: int, size: int,
                    lineage: str, from_head: bool, key: str | None = None,
                    resume: tuple[str, Entry] | None = None) -> FileReader:
        reader = FileReader(path, open_path, dev, ino, parse_path(path, self.config.tag_prefix),
                            self.config, from_head, lineage, key, self.multiline_rule(path),
                            self.clock)
        reader.resume = resume
        reader.size_seen = size
        reader.wanted_since = self.clock()
        self.readers.append(reader)
        self.by_inode[(dev, ino)] = reader
        self.by_lineage.setdefault(lineage, {})[reader] = None
        self._known_paths.add(path)
        if self.attached < self.config.max_open_files:
            self.attach(reader)
        return reader

    def multiline_rule(self, path: str) -> MultilineConfig | None:
        return self.rules.choose(path)  # the pod's annotation, else the source's rules

    def attach(self, reader: FileReader) -> bool:
        """Give ``reader`` a descriptor on its inode; False when that is not possible now."""
        try:
            fd = os.open(reader.open_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.unreadable.failed(reader.open_path, exc)
            if exc.errno == errno.ENOENT:
                self._moved(reader)
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (reader.dev, reader.ino):
            os.close(fd)  # renamed or replaced since we looked
            self._moved(reader)
            return False
        self.unreadable.opened(reader.open_path)
        reader.attach(fd)
        self.attached += 1
        self._m_open.set(self.attached)
        self.changed = True
        if reader.identity is None:
            self.identify(reader)
        return True

    def detach(self, reader: FileReader) -> None:
        if reader.attached:
            reader.detach()
            self.attached -= 1
            self._m_open.set(self.attached)

    def _moved(self, reader: FileReader) -> None:
        """Its inode is not at ``open_path`` any more: find it among the generations."""
        self.generations.refresh()
        if self.by_path.get(reader.path) is reader:
            self.check_path(reader.path)  # marks it draining, opens the new file
        for gen in self.generations.list(reader.lineage):
            if (gen.dev, gen.ino) == (reader.dev, reader.ino) and not gen.compressed:
                reader.open_path = gen.path
                return
        self.recovery.reconcile(reader.lineage, reader.path)  # compressed or gone: counted

    def balance(self) -> None:
        """Apply the open-file cap (``slots.plan``)."""
        detach, attach = slots.plan(self.readers, self.config.max_open_files, self.clock())
        for reader in detach:
            self.detach(reader)
        for reader in attach:
            if not reader.closed and not reader.attached:
                self.attach(reader)
        waiting = deleted = 0
        failing: list[str] = []
        now = self.clock()
        for reader in self.readers:
            if not reader.attached and slots.wants(reader):
                if reader.open_path in self.unreadable:
                    failing.append(reader.open_path)  # retried, but no descriptor is missing
                else:
                    waiting += 1
                if reader.wanted_since is None:
                    reader.wanted_since = now
            elif reader.attached and reader.deleted_since is not None:
                deleted += 1
        self.waiting = waiting
        self._m_waiting.set(waiting)
        self._m_deleted.set(deleted)
        self.unreadable.update(failing)

    def identify(self, reader: FileReader, force: bool = False) -> bool:
        """Compute the reader's identity when its first line is there; True when known."""
        if not reader.attached:
            return False
        try:
            result = reader.identify(self.store, force)
        except OSError as exc:
            log.warning("tail %s: cannot read %s: %s", self.name, reader.path, exc,
                        extra={"event": "tail_read_failed", "source": self.name})
            return False
        if result is Identified.NOT_YET:
            return False
        if result is Identified.TRUNCATED:
            self.rotated.labels(self.name, "truncated").inc()
        assert reader.fingerprint is not None
        self.store.mark_handled(reader.lineage, reader.fingerprint, reader.path)
        self.changed = True
        return True

    # -- truncation, loss and closing -----------------------------------------------------

    def collect_cut(self, reader: FileReader) -> None:
        """Count bytes cut off the end of a file before they were read."""
        if reader.cut:
            self.lose(lin.TRUNCATED, reader.cut, reader.path)
            reader.cut = 0

    def lose(self, reason: str, nbytes: int, path: str) -> None:
        """Count bytes that can no longer be read (never silent)."""
        if nbytes <= 0:
            return
        self._metrics.lost_bytes.labels(self.name, reason).inc(nbytes)
        log.warning("tail %s: %d bytes of %s could not be read (%s)", self.name, nbytes, path,
                    reason, extra={"event": "tail_bytes_lost", "source": self.name,
                                   "reason": reason, "bytes": nbytes, "path": path})

    def unconfirmed(self, reason: str, nbytes: int, path: str) -> None:
        """Count bytes sent before a restart, never acknowledged, that can no longer be read
        again: maybe delivered, maybe not (the previous run was killed in between)."""
        if nbytes <= 0:
            return
        self._metrics.unconfirmed_bytes.labels(self.name, reason).inc(nbytes)
        log.warning("tail %s: %d bytes of %s were sent before the restart but never "
                    "acknowledged, and cannot be read again (%s): maybe not delivered",
                    self.name, nbytes, path, reason,
                    extra={"event": "tail_bytes_unconfirmed", "source": self.name,
                           "reason": reason, "bytes": nbytes, "path": path})

    def expire(self, reader: FileReader) -> None:
        """A deleted file held for ``deleted_file_timeout_secs``: free its disk space now and
        count what it still held. What was read stays in memory and is shipped."""
        try:
            size = reader.observe() if reader.attached else reader.size_seen
        except OSError:
            size = reader.size_seen
        self.abandon(reader, lin.DELETED, size, reader.path)

    def abandon(self, reader: FileReader, reason: str, size: int, path: str) -> None:
        """Give ``reader`` up, counting the ``size - offset`` bytes it never read, and the
        incomplete line it holds when there were such bytes (its end is among them)."""
        unread = size - reader.offset
        if unread > 0:
            unread += reader.drop_incomplete()
        self.lose(reason, unread, path)
        # Counted once: a restart before its in-memory records are shipped counts only those
        # (saved with the next checkpoint, within checkpoint_interval_secs).
        reader.size_seen = reader.consumed()
        entry = self.store.entries.get(reader.identity or "")
        if entry is not None:
            entry.size, entry.gone = reader.size_seen, True
            self.store.dirty = True
        self.give_up(reader)

    def give_up(self, reader: FileReader) -> None:
        """Stop reading ``reader`` (its bytes were counted); the read loop ships what it
        holds in memory and retires it."""
        self.detach(reader)
        reader.given_up = True
        if reader.draining_since is None:
            reader.draining_since = self.clock()
        if self.by_inode.get((reader.dev, reader.ino)) is reader:
            del self.by_inode[(reader.dev, reader.ino)]
        self.changed = True

    def retire(self, reader: FileReader) -> None:
        """Close a drained file for good; its entry goes once its last batch is safe."""
        reader.retired = True
        self.close(reader)
        if reader.identity is None:
            return
        if reader.tracker is not None and reader.tracker.pending:
            self.retired[reader.identity] = reader
        else:
            self.store.remove(reader.identity)

    def forget(self, reader: FileReader) -> None:
        """The last batch of a retired file is safe: drop its entry."""
        if reader.identity is not None:
            self.retired.pop(reader.identity, None)
            self.store.remove(reader.identity)

    def close(self, reader: FileReader) -> None:
        if reader.closed:
            return
        self.detach(reader)
        reader.close()
        self.readers.remove(reader)
        if self.by_inode.get((reader.dev, reader.ino)) is reader:
            del self.by_inode[(reader.dev, reader.ino)]
        if self.by_path.get(reader.path) is reader:
            del self.by_path[reader.path]
        members = self.by_lineage.get(reader.lineage)
        if members is not None:
            members.pop(reader, None)
            if not members:
                del self.by_lineage[reader.lineage]
        successor = reader.successor
        if successor is not None and successor.waiting_for is reader:
            successor.waiting_for = None

    def close_all(self) -> None:
        for reader in list(self.readers):
            self.close(reader)
