"""The ``tail`` source: follows container log files and emits acknowledged batches.

Two asyncio tasks share the file table (spec §2.5; reliability §4 A):

* the **read loop** (``readloop.ReadLoop``) reads, emits and retires. ``await emit(batch)``
  blocks while the output buffers are full: that is the whole backpressure mechanism.
* the **watch loop** keeps looking while reading is blocked: it globs the includes at start,
  every ``refresh_interval_secs`` (every 2 s at most when file events are unavailable) and
  when a file event arrives; stats every known path each second (rotation, deletion);
  enforces ``deleted_file_timeout_secs``; applies the open-file cap; and writes the
  acknowledged checkpoints at most every ``checkpoint_interval_secs``. So rotations during
  an outage are followed (the old inode stays open and readable), deleted files do not hold
  disk space for ever, and acknowledgements keep reaching the disk.

Nothing but acknowledgements moves a checkpoint. ``poll_files`` and ``read_available`` are
the two loops' bodies, usable step by step (the property-based test drives them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shipper.errors import SourceError, StorageError
from shipper.health import SourceHealth
from shipper.metrics import Metrics
from shipper.protocols import Emit, MultilineHints
from shipper.sources.tail.checkpoints import CheckpointStore
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.discovery import Watcher
from shipper.sources.tail.files import FileTable
from shipper.sources.tail.readloop import ReadLoop
from shipper.sources.tail.unreadable import REPEAT_SECS

log = logging.getLogger(__name__)

POLL_SECS = 0.25  # growth check of open files when nothing happened
PATH_CHECK_SECS = 1.0  # rotation/deletion check of known paths between rescans
FALLBACK_RESCAN_SECS = 2.0  # rescan period when file events cannot be relied on
_MIN_RESCAN_SECS = 0.1  # delay of a rescan after a file event
_MAX_DRAIN_PASSES = 10_000
# File times come from a coarse kernel clock (behind ``time.time()`` by up to a tick; whole
# seconds on some file systems): a file written just after the previous run's last scan
# began may carry an older mtime. It must still count as new (read), so the time is moved
# back by this much; reading such a file is never a duplicate (no run saw it).
MTIME_SLACK_SECS = 2.0
_POSITIONS = "positions file"  # the storage component named in the readiness reason


class TailSource:
    """Source protocol implementation for container log files."""

    def __init__(self, name: str, config: TailConfig, state_dir: Path, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic,
                 shard: Callable[[str], bool] | None = None) -> None:
        """``shard`` (``workers: N``): called with a file's real path, True when this
        worker process reads it; None reads every file."""
        self.name = name
        self.config = config
        self.clock = clock
        self.store = CheckpointStore(Path(state_dir) / name)
        self.files = FileTable(name, config, self.store, metrics, clock, shard)
        self.reading = ReadLoop(name, config, self.files, metrics, clock)
        self.reading.persist = self._persist
        self._stopping = False
        self._wake: asyncio.Event | None = None
        self._watch_wake: asyncio.Event | None = None
        self._save_lock: asyncio.Lock | None = None
        self._save_failing = False
        self._watcher: Watcher | None = None
        self._next_scan = self._next_check = self._last_save = 0.0
        self._started = time.time()
        self._missing_dirs: set[str] = set()  # include directories missing at the last scan
        self._m_missing_dirs = metrics.tail_include_dirs_missing.labels(name)
        # include directories that cannot be listed: directory -> when last warned
        self._unreadable_dirs: dict[str, float] = {}
        self._m_unreadable_dirs = metrics.tail_include_dirs_unreadable.labels(name)
        self._m_checkpoint_errors = metrics.checkpoint_storage_errors
        self.health = SourceHealth(name)  # /readyz: not ready while positions cannot be saved

    def use_multiline_hints(self, hints: MultilineHints) -> None:
        """Ask ``hints`` for each new file's pod multiline preset (before the own rules)."""
        self.files.rules.hints = hints

    # -- Source protocol ------------------------------------------------------------------

    async def open(self) -> None:
        """Load the checkpoints and bind to the running loop (``run`` calls it)."""
        loop = asyncio.get_running_loop()
        self.reading.loop_thread = threading.get_ident()
        self.reading.call_soon_threadsafe = loop.call_soon_threadsafe
        self._wake = asyncio.Event()
        self._watch_wake = asyncio.Event()
        self._save_lock = asyncio.Lock()
        started = time.time()
        try:
            await asyncio.to_thread(self.store.load)
        except StorageError as exc:
            raise SourceError(f"tail source {self.name}: {exc}") from exc
        saved = self.store.saved_at
        self.files.new_since = None if saved is None else saved - MTIME_SLACK_SECS
        self._started = started

    async def run(self, emit: Emit) -> None:
        """Tail until ``stop``; see the module docstring for the two loops."""
        await self.open()
        assert self._wake is not None
        self._watcher = Watcher(asyncio.get_running_loop(), self._on_fs_event)
        self.poll_files()
        watch = asyncio.create_task(self._watch_loop(), name=f"tail-watch-{self.name}")
        try:
            while not self._stopping:
                self._wake.clear()
                progressed = await self.reading.read_pass(emit)
                if not self._stopping:
                    progressed = await self.reading.housekeeping(emit) or progressed
                if self._stopping:
                    break
                if watch.done():
                    watch.result()  # a failure of the watch loop is the source's failure
                if self.files.waiting:  # files wait for a descriptor: hand them over now
                    self.files.balance()
                    if self.files.changed:
                        self.files.changed = False
                        progressed = True
                if progressed:
                    await asyncio.sleep(0)  # let acks, outputs and other sources run
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECS):
                        await self._wake.wait()
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            if not self._stopping:  # cancelled without stop(): persist what is safe anyway
                self._stopping = self.reading.stopping = True
                self._shutdown_sync()

    async def stop(self) -> None:
        """Stop reading, persist the acknowledged positions, close every file. Waits for
        nothing else: batches still in flight are simply re-read after a restart."""
        self._stopping = self.reading.stopping = True
        for event in (self._wake, self._watch_wake):
            if event is not None:
                event.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._save_lock is None:  # never ran
            return
        await self._save(force=True)
        self.files.close_all()

    async def close(self) -> None:
        """Persist the progress acknowledged after ``stop`` (while outputs drained)."""
        if self._save_lock is not None:
            await self._save(force=True)

    # -- the two loops' bodies ------------------------------------------------------------

    def poll_files(self) -> None:
        """Discovery, path checks, deadlines and the open-file cap (one watch step)."""
        now = self.clock()
        files = self.files
        if now >= self._next_scan:
            began = time.time()
            files.scan()
            # What the next run may take as seen: files changed since then were not.
            self.store.scanned_at = began
            files.new_since = self._started  # from now on, a new file appeared while running
            self._check_include_dirs()
            files.unreadable.unresolved(
                files.discovery.unresolved(files.present.difference(files.by_path)),
                files.present)
            if self._watcher is not None:
                self._watcher.ensure(files.discovery.watch_dirs())
            period = self.config.refresh_interval_secs
            if self._watcher is None or not self._watcher.complete:
                period = min(period, FALLBACK_RESCAN_SECS)
            self._next_scan, self._next_check = now + period, now + PATH_CHECK_SECS
        elif now >= self._next_check:
            self._next_check = now + PATH_CHECK_SECS
            files.check_known_paths()
        self._observe(now)
        files.balance()
        if files.changed:
            files.changed = False
            if self._wake is not None:
                self._wake.set()

    def _check_include_dirs(self) -> None:
        """Say when an include directory is missing (at start, or when it goes away) and
        when it appears; ``shipper_tail_include_dirs_missing`` counts them meanwhile.

        Not a readiness failure: on a booting node the directory appears with the first
        container, and a source without files has nothing to lose. A directory that stays
        missing is a typo, which this warning and the gauge make visible."""
        missing_list, unreadable = self.files.discovery.dir_problems()
        self._check_unreadable_dirs(unreadable)
        missing = set(missing_list)
        if missing == self._missing_dirs:
            return
        for directory in sorted(missing - self._missing_dirs):
            log.warning("tail %s: include directory %s does not exist; its files will be "
                        "read once it appears", self.name, directory,
                        extra={"event": "tail_include_dir_missing", "source": self.name,
                               "directory": directory})
        for directory in sorted(self._missing_dirs - missing):
            log.info("tail %s: include directory %s appeared", self.name, directory,
                     extra={"event": "tail_include_dir_appeared", "source": self.name,
                            "directory": directory})
        self._missing_dirs = missing
        self._m_missing_dirs.set(len(missing))

    def _check_unreadable_dirs(self, unreadable: dict[str, str]) -> None:
        """Warn about an include directory the agent may not list at once and then every
        ``REPEAT_SECS`` while it lasts (``glob`` would find nothing there, silently); say
        when it can be listed again. ``shipper_tail_include_dirs_unreadable`` counts them."""
        now = self.clock()
        for directory, why in sorted(unreadable.items()):
            warned = self._unreadable_dirs.get(directory)
            if warned is not None and now - warned < REPEAT_SECS:
                continue
            self._unreadable_dirs[directory] = now
            log.warning("tail %s: cannot list include directory %s: %s; its files are not "
                        "read until the agent may list it", self.name, directory, why,
                        extra={"event": "tail_include_dir_unreadable", "source": self.name,
                               "directory": directory})
        for directory in [d for d in self._unreadable_dirs if d not in unreadable]:
            del self._unreadable_dirs[directory]
            log.info("tail %s: include directory %s can be listed again", self.name,
                     directory, extra={"event": "tail_include_dir_readable",
                                       "source": self.name, "directory": directory})
        self._m_unreadable_dirs.set(len(unreadable))

    async def read_available(self, emit: Emit) -> None:
        """Read and ship until nothing is left to do now (bounded)."""
        for _ in range(_MAX_DRAIN_PASSES):
            progressed = await self.reading.read_pass(emit)
            worked = await self.reading.housekeeping(emit)
            if self.files.waiting:
                self.files.balance()
            if not (progressed or worked or self.files.changed):
                return
            self.files.changed = False

    def _observe(self, now: float) -> None:
        """Look at every open file even while reading is blocked: the size last seen makes
        loss accounting exact, and an unlinked file starts its deletion timeout."""
        timeout = self.config.deleted_file_timeout_secs
        for reader in list(self.files.readers):
            if not reader.attached:
                continue
            try:
                reader.observe()
            except OSError:
                continue
            self.files.collect_cut(reader)
            if reader.replaced:  # truncated: follow the new content (and its copy) now
                log.info("tail %s: %s was truncated, reading it again from the start",
                         self.name, reader.path,
                         extra={"event": "tail_truncated", "source": self.name})
                self.files.recovery.truncated(reader)
                continue
            if reader.identity is None and not reader.busy:
                self.files.identify(reader)  # so its size and offset reach the checkpoint
            if reader.deleted_since is not None and now - reader.deleted_since >= timeout:
                log.warning("tail %s: %s was deleted %ds ago and is not read to its end; "
                            "closing it", self.name, reader.path, timeout,
                            extra={"event": "tail_deleted_file_closed", "source": self.name})
                self.files.expire(reader)

    async def _watch_loop(self) -> None:
        assert self._watch_wake is not None
        failing = False
        while not self._stopping:
            self._watch_wake.clear()
            try:
                self.poll_files()
            except Exception:  # a bug here must not stop shipping: log it, try again
                if not failing:
                    log.exception("tail %s: watching the files failed; retrying", self.name,
                                  extra={"event": "tail_watch_failed", "source": self.name})
                failing = True
            else:
                failing = False
            if self.store.dirty and (
                    self.clock() - self._last_save >= self.config.checkpoint_interval_secs):
                self._last_save = self.clock()
                await self._save()
            delay = max(0.01, min(self._next_check, self._next_scan) - self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, PATH_CHECK_SECS)):
                    await self._watch_wake.wait()

    def _on_fs_event(self, structural: bool) -> None:
        if structural:  # a burst of events causes one glob, not one per event
            self._next_scan = min(self._next_scan, self.clock() + _MIN_RESCAN_SECS)
            if self._watch_wake is not None:
                self._watch_wake.set()
        if self._wake is not None:
            self._wake.set()

    # -- persistence and shutdown ---------------------------------------------------------

    def _note_sizes(self) -> None:
        for reader in self.files.readers:
            if reader.identity is not None:
                self.store.set_size(reader.identity, reader.size_seen)

    async def _save(self, force: bool = False) -> None:
        assert self._save_lock is not None
        async with self._save_lock:
            if not self.store.dirty and not force:
                return
            self._note_sizes()
            taken = set(self.store.unsaved)
            data = self.store.snapshot()
            try:
                await asyncio.to_thread(self.store.write, data)
            except StorageError as exc:
                self.store.dirty = True
                self._checkpoint_failed(exc)
                if not self._save_failing:
                    log.error("tail %s: cannot persist positions: %s", self.name, exc,
                              extra={"event": "tail_checkpoint_failed", "source": self.name})
                self._save_failing = True
            else:
                self.store.unsaved -= taken
                if self._save_failing:
                    self.health.storage_recovered(_POSITIONS)
                    log.info("tail %s: positions persisted again", self.name,
                             extra={"event": "tail_checkpoint_recovered", "source": self.name})
                self._save_failing = False

    def _checkpoint_failed(self, exc: StorageError) -> None:
        """Count a failed positions write and make the agent not ready until one succeeds."""
        self._m_checkpoint_errors.labels(self.name, self.store.failed_step).inc()
        self.health.storage_failed(_POSITIONS, str(exc))

    async def _persist(self) -> None:
        """Write the checkpoints now (a fresh entry's time is about to be relied on)."""
        if self._save_lock is not None:
            await self._save(force=True)

    def _shutdown_sync(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self._note_sizes()
        taken = set(self.store.unsaved)
        try:
            self.store.write(self.store.snapshot())
            self.store.unsaved -= taken
        except StorageError as exc:
            self._checkpoint_failed(exc)
            log.error("tail %s: cannot persist positions at exit: %s", self.name, exc,
                      extra={"event": "tail_checkpoint_failed", "source": self.name})
        self.files.close_all()
