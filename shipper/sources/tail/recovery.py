"""Recovering from what happened behind the tail's back: rotations it did not see,
restarts, truncations. The decisions are ``lineage.classify``'s; this module applies them to
the file table (``files.FileTable``): adopt generations to read, count lost bytes, give up
readers whose data is gone, and link generations so open messages are handed over.

* ``reconcile`` one lineage: after a rotation was noticed, when a lineage is first seen,
  and for checkpoint entries no reader claims (``reconcile_orphans``: the agent was down).
* ``gc_lineages``: forget lineages whose files are all gone; after a restart, finish the
  ones no include path leads to any more (a symlink retargeted while the agent was down).
* ``restarted_between``: a ``/var/log/containers`` symlink moved from ``0.log`` to ``2.log``:
  ``1.log`` is read too.
* ``truncated``: follow the new content of a truncated inode; move the old incarnation to
  its copy (copytruncate) or count what it had not read.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
from typing import TYPE_CHECKING

from shipper.sources.tail import lineage as lin
from shipper.sources.tail.checkpoints import Entry
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.reader import FileReader

if TYPE_CHECKING:
    from shipper.sources.tail.files import FileTable

log = logging.getLogger(__name__)

class Recovery:
    """Lineage reconciliation and truncation handling for one file table."""

    def __init__(self, table: FileTable) -> None:
        self.t = table
        self.reconciling: set[str] = set()  # lineages being reconciled (no re-entry)
        self.scanned = False  # the first scan after start is done

    def restarted_between(self, old: str | None, new: str, path: str) -> None:
        """The container of ``new`` (kubelet's ``.../<restart count>.log``) restarted while
        we did not look: a symlink moved from ``0.log`` to ``2.log``, or a container seen
        first now already has ``0.log`` and ``1.log``. Files of those restarts that no
        reader follows are new lineages: read them if they are newer than ``new_since``
        (first sight)."""
        directory = os.path.dirname(new)
        if not _restart_file(new) or (old is not None and os.path.dirname(old) != directory):
            return
        for other in glob.glob(os.path.join(glob.escape(directory), "*.log")):
            if (other in (old, new) or not _restart_file(other)
                    or self.t.store.handled(other) is not None):
                continue
            try:
                st = os.stat(other)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in self.t.by_inode:
                self.reconcile(other, path, first_sight=True)

    def reconcile(self, lineage: str, path: str, entries: list[tuple[str, Entry]] | None = None,
                  first_sight: bool = False) -> list[FileReader]:
        """Apply ``lineage.classify`` to one lineage; return the readers adopted, oldest
        first. ``path`` names records of adopted generations; ``entries``: its unowned
        checkpoint entries when the caller already has them; ``first_sight``: the lineage
        was unknown before its current file was opened."""
        if lineage in self.reconciling:
            return []  # reached again while adopting: the outer call finishes the job
        self.reconciling.add(lineage)
        try:
            return self._reconcile(lineage, path, entries, first_sight)
        finally:
            self.reconciling.discard(lineage)

    def _reconcile(self, lineage: str, path: str, entries: list[tuple[str, Entry]] | None,
                   first_sight: bool) -> list[FileReader]:
        if entries is None:
            owned = self.t.owned()
            entries = [(ident, e) for ident, e in self.t.store.entries.items()
                       if e.real_path == lineage and ident not in owned]
        members = [r for r in self.t.by_lineage.get(lineage, ())
                   if not r.closed and not r.given_up]
        claims = [lin.Claim(r.dev, r.ino, r.fingerprint, r.offset, r.attached, r)
                  for r in members]
        generations = self.t.generations.list(lineage)
        handled = None if first_sight else self.t.store.handled(lineage)
        plan = lin.classify(generations, handled, claims, entries,
                            self.t.new_since if self.t.config.read_from_head else None)
        for identity in plan.remove:
            self.t.store.remove(identity)
        for reason, nbytes, where in plan.lost:
            self.t.lose(reason, nbytes, where)
        for reason, nbytes, where in plan.unconfirmed:
            self.t.unconfirmed(reason, nbytes, where)
        for token, size, where in plan.orphaned:
            assert isinstance(token, FileReader)
            self.t.abandon(token, lin.COMPRESSED, size, where)
        adopted = []
        meta_key = parse_path(path, self.t.config.tag_prefix).container_id or lineage
        for gen, found in plan.adopt:
            reader = self.t.new_reader(path, gen.path, gen.dev, gen.ino, gen.size, lineage,
                                      True, key=found[1].key if found else meta_key,
                                      resume=found)
            log.info("tail %s: reading rotated %s %s", self.t.name, gen.path,
                     "from its checkpoint" if found else "from its start",
                     extra={"event": "tail_rotated_adopted", "source": self.t.name})
            self.t.drain(reader, "adopted")
            adopted.append(reader)
        on_disk = {(g.dev, g.ino) for g in generations}
        for reader in members:  # lost its descriptor, and its file is gone: count the rest
            if (not reader.attached and not reader.closed and (reader.dev, reader.ino)
                    not in on_disk and not self.t.current_is(reader)):
                self.t.abandon(reader, lin.DELETED, reader.size_seen, reader.path)
        if plan.handled or generations or members:
            self.t.store.set_handled(lineage, plan.handled, path)
        else:
            self.t.store.drop_lineage(lineage)
        return adopted

    def reconcile_orphans(self) -> None:
        """Checkpoint entries no reader claims: rotated, truncated or deleted while the agent
        was down (or while their reader had no descriptor). Entries of files that still
        exist but are no longer included (configuration changed) are dropped."""
        owned = self.t.owned()
        by_lineage: dict[str, list[tuple[str, Entry]]] = {}
        for identity, entry in list(self.t.store.entries.items()):
            if identity in owned:
                continue
            claimer = self.t.by_inode.get((entry.dev, entry.ino))
            if claimer is not None and claimer.identity is None and not claimer.attached:
                continue  # not looked at yet: it may well be this entry's file
            if entry.path not in self.t.present and os.path.lexists(entry.path):
                self.t.store.remove(identity)
                continue
            by_lineage.setdefault(entry.real_path, []).append((identity, entry))
        for lineage, entries in by_lineage.items():
            self._link_adopted(lineage, self.reconcile(lineage, entries[0][1].path, entries))

    def _link_adopted(self, lineage: str, adopted: list[FileReader]) -> None:
        """Generations adopted after a restart hand their open messages to the lineage's
        current file, whether adopted from a checkpoint or from their start (no position
        was saved: the file was empty when last seen). Without the link the rotated piece
        and the new file's rest would become two records."""
        if not adopted:
            return
        current = next((r for r in self.t.by_lineage.get(lineage, ())
                        if r.draining_since is None and not r.closed), None)
        if current is not None and current.waiting_for is None:
            link([*adopted, current])
        else:  # no current file yet: it is linked when it appears (``check_path``)
            link(adopted)

    def gc_lineages(self) -> None:
        """Forget lineages whose files are all gone. After a restart (first scan), look at
        every known lineage once: generations rotated or copied while the agent was down,
        and lineages no include path leads to any more (retargeted meanwhile)."""
        first = not self.scanned
        self.scanned = True
        for lineage in list(self.t.store.lineages):
            if first and lineage in self.t.store.lineages:  # rotated while we were down?
                path = self.t.store.lineage_paths.get(lineage, lineage)
                self._link_adopted(lineage, self.reconcile(lineage, path))
                now = os.path.realpath(path)
                if now != lineage:  # the path was retargeted while the agent was down
                    self.restarted_between(lineage, now, path)
                continue
            if lineage in self.t.by_lineage:
                continue
            if not os.path.lexists(lineage) and not self.t.generations.list(lineage):
                self.t.store.drop_lineage(lineage)

    def truncated(self, reader: FileReader) -> FileReader:
        """The reader's inode was truncated: move the old incarnation to its copy (or give
        it up, counting what it had not read) and return the reader of the new content."""
        self.t.rotated.labels(self.t.name, "truncated").inc()
        self.t.generations.refresh()  # the copy may have appeared just now
        copy = None
        gone = (lin.TRUNCATED, reader.size_seen, reader.path)
        for gen in self.t.generations.list(reader.lineage):
            if gen.fingerprint != reader.fingerprint or (gen.dev, gen.ino) in self.t.by_inode:
                continue
            if not gen.compressed and gen.size >= reader.consumed():
                copy = gen
                break
            if gen.compressed:  # compressed right away (logrotate without delaycompress)
                gone = (lin.COMPRESSED, gen.size, gen.path)
                break
        fd, reader.fd = reader.fd, None  # the descriptor goes to the new incarnation
        assert fd is not None
        fresh = FileReader(reader.path, reader.open_path, reader.dev, reader.ino, reader.meta,
                           self.t.config, True, reader.lineage, reader.key, reader.multiline,
                           self.t.clock)
        fresh.generation = reader.generation + 1
        fresh.draining_since = reader.draining_since
        fresh.attach(fd)
        self.t.readers.append(fresh)
        self.t.by_lineage.setdefault(reader.lineage, {})[fresh] = None
        self.t.by_inode[(reader.dev, reader.ino)] = fresh
        if self.t.by_path.get(reader.path) is reader:
            self.t.by_path[reader.path] = fresh
        if copy is not None:
            reader.dev, reader.ino, reader.open_path = copy.dev, copy.ino, copy.path
            self.t.by_inode[(copy.dev, copy.ino)] = reader
            reader.rewind(reader.consumed(), copy.size)
            self.t.drain(reader, "copied")
            if not self.t.attach(reader):
                self.t.abandon(reader, lin.DELETED, reader.size_seen, reader.path)
        else:
            self.t.abandon(reader, *gone)
        self.t.identify(fresh)
        return fresh



def link(chain: list[FileReader]) -> None:
    """Generations in order: each hands its open messages to the next (``handover``)."""
    for older, newer in itertools.pairwise(chain):
        older.successor = newer
        newer.waiting_for = older


def _restart_file(path: str) -> bool:
    """kubelet names a container's log files by restart count: ``0.log``, ``1.log``..."""
    name = os.path.basename(path)
    return name.endswith(".log") and name[:-4].isdigit()
