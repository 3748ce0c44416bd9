"""The generations of one followed file, and what to do with each (spec §2.4, §2.5 item 3).

A *lineage* is the real path of a followed file (``/var/log/pods/.../nginx/0.log``); its
rotated *generations* are the siblings ``<lineage>.*``: kubelet's ``0.log.<timestamp>``
(plain) and ``0.log.<timestamp>.gz`` (compressed at the next rotation), Docker's
``-json.log.1``, logrotate's ``.1``/``.2.gz``. ``*.tmp`` (a compression in progress) is
ignored. Generations are told apart by the fingerprint of their first line, which survives
renaming and compression (the head of a ``.gz`` is decompressed to compute it); plain ones
also by inode.

``classify`` decides, purely, for every generation:

* plain, already read by us (inode claimed by a reader) → nothing;
* plain with a checkpoint entry (same fingerprint; same inode, or a copytruncate copy) →
  read from the checkpoint (the agent was down, or the file was truncated);
* plain, fingerprint already handled → nothing (read before, or a copy of what we read);
* plain, never seen → read from its start (rotated before we could see it);
* compressed, and we still hold the original open → nothing (the open descriptor still
  reads the data);
* compressed with a checkpoint / a reader that lost its descriptor → the unread rest is lost:
  ``uncompressed size - offset`` (exact: the gzip trailer holds the size; for a reader the
  caller counts it, with the incomplete line it holds);
* compressed, fingerprint handled → nothing; never seen → all of it lost.

Compressed data is never read as log text. Checkpoint entries of the lineage left over
(their file vanished) are counted with the size last seen. The first time a lineage is
seen, its existing generations are only recorded (like Fluentd, rotated files present at
the first start are not read), except those newer than the previous run's last scan
(the container started after the previous run last looked) or than this run's start.
"""

from __future__ import annotations

import logging
import os
import stat
import zlib
from dataclasses import dataclass, field

from shipper.sources.tail.checkpoints import Entry
from shipper.sources.tail.identity import FINGERPRINT_BYTES, fingerprint, fingerprint_source

log = logging.getLogger(__name__)

COMPRESSED_SUFFIXES = (".gz",)
IGNORED_SUFFIXES = (".tmp", ".zip")
_GZ_INPUT_LIMIT = 256 * 1024  # compressed bytes read to decompress a head
_CACHE_MAX = 4096

COMPRESSED = "compressed_unread"
DELETED = "deleted_unread"
TRUNCATED = "truncated_unread"


@dataclass(slots=True)
class Generation:
    """One rotated generation on disk."""

    path: str
    dev: int
    ino: int
    size: int  # content bytes (uncompressed size for .gz)
    mtime: float
    compressed: bool
    fingerprint: str | None  # None: empty or unreadable


@dataclass(slots=True)
class Claim:
    """A reader of this lineage, as ``classify`` needs to see it."""

    dev: int
    ino: int
    fingerprint: str | None
    offset: int
    attached: bool  # holds a descriptor: the data stays readable whatever happens on disk
    token: object = None  # handed back in ``Plan.orphaned``


@dataclass
class Plan:
    """What ``classify`` decided for one lineage."""

    adopt: list[tuple[Generation, tuple[str, Entry] | None]] = field(default_factory=list)
    lost: list[tuple[str, int, str]] = field(default_factory=list)  # reason, bytes, path
    # claims whose data is gone: (token, size of the compressed content, its path); the
    # caller counts ``size - offset`` (it knows whether the incomplete last line counts)
    orphaned: list[tuple[object, int, str]] = field(default_factory=list)
    # reason, bytes, path: sent before a restart but never acknowledged, and no longer
    # readable: maybe delivered (an agent killed between delivery and checkpoint cannot know)
    unconfirmed: list[tuple[str, int, str]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)  # checkpoint identities settled
    handled: set[str] = field(default_factory=set)


class Generations:
    """Lists the generations of a lineage; remembers the heads of compressed files.

    Directory listings are indexed by name prefix and kept until ``refresh`` (the file table
    calls it before every scan or path check, and when it saw a directory change), so a
    scan of thousands of files in ONE directory lists it once, not once per file.
    """

    def __init__(self) -> None:
        self._gz: dict[tuple[int, int, int, int], tuple[str | None, int]] = {}
        self._failed: set[str] = set()
        self._dirs: dict[str, dict[str, list[str]]] = {}  # directory -> prefix -> names

    def refresh(self) -> None:
        """Forget every directory listing (the next ``list`` looks again)."""
        self._dirs.clear()

    def _siblings(self, lineage: str) -> list[str]:
        directory, base = os.path.split(lineage)
        index = self._dirs.get(directory)
        if index is None:
            index = {}
            try:
                names = os.listdir(directory or ".")
            except OSError:
                names = []
            for name in names:  # "0.log.2024.gz" is a sibling of "0", "0.log", "0.log.2024"
                dot = name.find(".")
                while dot > 0:
                    index.setdefault(name[:dot], []).append(name)
                    dot = name.find(".", dot + 1)
            if len(self._dirs) >= _CACHE_MAX:
                self._dirs.clear()
            self._dirs[directory] = index
        return [os.path.join(directory, name) for name in index.get(base, ())]

    def list(self, lineage: str, base: bool = True) -> list[Generation]:
        """Every rotated generation of ``lineage``, oldest first (by mtime, then name), and
        (``base``) the lineage's own file last: when no include path leads to it any more
        (its symlink was retargeted or removed), it is just one more generation to finish."""
        found = []
        for path in self._siblings(lineage):
            if path.endswith(IGNORED_SUFFIXES):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted while we listed
            if not stat.S_ISREG(st.st_mode):
                continue
            compressed = path.endswith(COMPRESSED_SUFFIXES)
            fp, size = self._gz_info(path, st) if compressed else self._plain_info(path, st)
            found.append(Generation(path, st.st_dev, st.st_ino, size, st.st_mtime,
                                    compressed, fp))
        found.sort(key=lambda g: (g.mtime, g.path))
        if base:
            try:
                st = os.stat(lineage)
            except OSError:
                return found
            if stat.S_ISREG(st.st_mode):
                fp, size = self._plain_info(lineage, st)
                found.append(Generation(lineage, st.st_dev, st.st_ino, size, st.st_mtime,
                                        False, fp))
        return found

    def _plain_info(self, path: str, st: os.stat_result) -> tuple[str | None, int]:
        try:
            with open(path, "rb") as handle:
                head = handle.read(FINGERPRINT_BYTES)
        except OSError:
            return None, st.st_size
        source = fingerprint_source(head, final=True)
        return (fingerprint(source) if source else None), st.st_size

    def _gz_info(self, path: str, st: os.stat_result) -> tuple[str | None, int]:
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._gz.get(key)
        if cached is not None:
            return cached
        try:
            info = gzip_head(path, st.st_size)
        except (OSError, zlib.error, ValueError) as exc:
            if path not in self._failed:
                self._failed.add(path)
                log.warning("cannot read the head of compressed %s: %s", path, exc,
                            extra={"event": "tail_gzip_unreadable"})
            return None, 0
        if len(self._gz) >= _CACHE_MAX:
            self._gz.clear()
        self._gz[key] = info
        return info


def gzip_head(path: str, compressed_size: int) -> tuple[str | None, int]:
    """Fingerprint of the first line and uncompressed size of a gzip file (one member, as
    kubelet, Docker and logrotate write; the size is exact below 4 GiB)."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise ValueError("not a gzip file")
        handle.seek(0)
        data = handle.read(_GZ_INPUT_LIMIT)
        handle.seek(max(compressed_size - 4, 0))
        trailer = handle.read(4)
    if len(trailer) != 4:
        raise ValueError("truncated gzip file")
    size = int.from_bytes(trailer, "little")
    head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, FINGERPRINT_BYTES)
    source = fingerprint_source(head, final=True)
    return (fingerprint(source) if source else None), size


def classify(generations: list[Generation], handled: set[str] | None,
             claims: list[Claim], entries: list[tuple[str, Entry]],
             since: float | None = None) -> Plan:
    """Decide what to read, skip or count as lost in one lineage (see the module doc).

    ``claims``: readers of the lineage; ``entries``: its checkpoint entries owned by no
    reader; ``handled``: fingerprints already dealt with (None: lineage seen first now);
    ``since``: on first sight, generations modified at or after this wall-clock time are
    new (the file appeared while the agent was down, or after it started) and are treated
    as never seen; older ones, or all when None, are only recorded.
    """
    plan = Plan()
    if handled is None and since is not None:
        handled = {g.fingerprint for g in generations
                   if g.fingerprint is not None and g.mtime < since}
    first_sight = handled is None
    known = set(handled or ())
    by_inode = {(c.dev, c.ino): c for c in claims}
    attached_fps = {c.fingerprint for c in claims if c.attached and c.fingerprint}
    unused = dict(entries)
    present: set[str] = set()
    for gen in generations:
        fp = gen.fingerprint
        if fp is None:
            continue
        present.add(fp)
        if not gen.compressed:
            if (gen.dev, gen.ino) in by_inode:
                continue
            entry = _take_entry(unused, fp, gen)
            if entry is not None and entry[1].gone:  # given up before: count only its rest
                plan.remove.append(entry[0])
                _unread(plan, DELETED, entry[1].size, entry[1], entry[1].path)
            elif entry is not None:
                plan.adopt.append((gen, entry))
            elif fp not in known and not first_sight:
                plan.adopt.append((gen, None))
            known.add(fp)
            continue
        if fp in attached_fps:
            continue
        orphan = next((c for c in claims if not c.attached and c.fingerprint == fp
                       and not _on_disk(c, generations)), None)
        entry = _take_entry(unused, fp, None)
        if orphan is not None:
            plan.orphaned.append((orphan.token, gen.size, gen.path))
        elif entry is not None:
            plan.remove.append(entry[0])
            size = entry[1].size if entry[1].gone else gen.size
            _unread(plan, COMPRESSED, size, entry[1], gen.path)
        elif fp not in known and not first_sight:
            _lose(plan, COMPRESSED, gen.size, gen.path)
        known.add(fp)
    for identity, left in unused.items():  # their file is gone: count what we last saw
        claim = by_inode.get((left.dev, left.ino))
        if claim is not None and claim.fingerprint is None and not claim.attached:
            continue  # its reader has not looked at the file yet: it will claim the entry
        plan.remove.append(identity)
        if claim is not None and claim.fingerprint == left.fingerprint:
            continue  # a stale duplicate of a file being read: nothing is lost
        # Same inode with other content (or a first line not even complete): truncated.
        reason = DELETED if claim is None else TRUNCATED
        _unread(plan, reason, left.size, left, left.path)
    claimed = {c.fingerprint for c in claims if c.fingerprint}
    plan.handled = (known | claimed) & (present | claimed)
    return plan


def _take_entry(entries: dict[str, Entry], fp: str, gen: Generation | None,
                ) -> tuple[str, Entry] | None:
    """A checkpoint entry for this content: same inode first, else a copy big enough."""
    match = None
    for identity, entry in entries.items():
        if entry.fingerprint != fp:
            continue
        if gen is None or (entry.dev, entry.ino) == (gen.dev, gen.ino):
            match = (identity, entry)
            break
        if gen.size >= entry.offset and match is None:
            match = (identity, entry)
    if match is not None:
        del entries[match[0]]
    return match


def _on_disk(claim: Claim, generations: list[Generation]) -> bool:
    return any((g.dev, g.ino) == (claim.dev, claim.ino) for g in generations)


def _unread(plan: Plan, reason: str, size: int, entry: Entry, path: str) -> None:
    """The bytes of a checkpointed file that can no longer be read: ``offset..sent`` were
    handed to the pipeline before the restart and may have been delivered (their
    acknowledgement, or its save, was lost with the previous run): unconfirmed; the rest
    was never sent: lost."""
    sent = min(max(entry.sent, entry.offset), size)
    if sent > entry.offset:
        plan.unconfirmed.append((reason, sent - entry.offset, path))
    _lose(plan, reason, size - sent, path)


def _lose(plan: Plan, reason: str, nbytes: int, path: str) -> None:
    if nbytes > 0:
        plan.lost.append((reason, nbytes, path))
