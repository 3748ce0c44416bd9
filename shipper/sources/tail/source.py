"""The ``tail`` source: follows container log files and emits acknowledged batches.

One asyncio task does everything, in bounded steps (spec §2.5; reliability §4 A):

1. **Discover** (``files.FileTable``): glob the includes at start, then every
   ``refresh_interval_secs`` and when a file event arrives; stat every known path each
   second. Rename rotation, deletion and rotated siblings are handled there.
2. **Read**: round-robin over open files, at most ``_CHUNKS_PER_PASS`` chunks per file per
   pass, so one busy file cannot starve the others. ``await emit(batch)`` blocks while the
   output buffers are full: the whole source then stops reading (backpressure), nothing is
   dropped and no checkpoint moves.
3. **Acknowledge**: every batch covers a contiguous byte range of one file and carries an
   ``AckGroup``; its ``on_safe`` feeds the file's ``AckTracker``, and only the acknowledged
   prefix is written to the checkpoint store (at most every ``checkpoint_interval_secs``,
   and on stop). Nothing else writes progress.
4. **Retire** a rotated/deleted file once it was read to the end and ``rotate_wait_secs``
   passed without new data (or after ``drain_timeout_secs`` if set, counting lost bytes).
5. **Idle**: when no file had data, wait for a file event or ``_POLL_SECS``; never spin.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from pathlib import Path

from shipper.acks import AckGroup
from shipper.errors import SourceError, StorageError
from shipper.metrics import Metrics
from shipper.protocols import Emit
from shipper.record import Batch
from shipper.sources.tail.checkpoints import CheckpointStore
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.discovery import Watcher
from shipper.sources.tail.files import FileTable
from shipper.sources.tail.progress import AckTracker
from shipper.sources.tail.reader import Chunk, FileReader, Truncated

log = logging.getLogger(__name__)

_POLL_SECS = 0.25  # growth check of open files when nothing happened
_PATH_CHECK_SECS = 1.0  # rotation/deletion check of known paths between rescans
_CHUNKS_PER_PASS = 4  # fairness: chunks read from one file before moving to the next
_MIN_RESCAN_SECS = 0.1  # a burst of file events causes one glob, not one per event


class TailSource:
    """Source protocol implementation for container log files."""

    def __init__(self, name: str, config: TailConfig, state_dir: Path, metrics: Metrics) -> None:
        self.name = name
        self.config = config
        self.store = CheckpointStore(Path(state_dir) / name)
        self._files = FileTable(name, config, self.store, metrics)
        self._stopping = False
        self._rescan_due = True
        self._wake: asyncio.Event | None = None
        self._save_lock: asyncio.Lock | None = None
        self._save_failing = False
        self._watcher: Watcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._metrics = metrics
        self._m_records = metrics.records_read.labels(name)
        self._m_bytes = metrics.bytes_read.labels(name)

    # -- Source protocol ------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Tail until ``stop``; see the module docstring for the steps."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._save_lock = asyncio.Lock()
        try:
            await asyncio.to_thread(self.store.load)
        except StorageError as exc:
            raise SourceError(f"tail source {self.name}: {exc}") from exc
        self._watcher = Watcher(self._loop, self._on_fs_event)
        cfg = self.config
        next_scan = next_check = last_save = last_scan = 0.0
        try:
            while not self._stopping:
                self._wake.clear()
                now = time.monotonic()
                if now >= next_scan or (self._rescan_due and now - last_scan >= _MIN_RESCAN_SECS):
                    self._rescan_due = False
                    last_scan = now
                    next_scan, next_check = now + cfg.refresh_interval_secs, now + _PATH_CHECK_SECS
                    self._files.scan()
                    self._watcher.ensure(self._files.discovery.watch_dirs())
                elif now >= next_check:
                    next_check = now + _PATH_CHECK_SECS
                    self._files.check_known_paths()
                progressed = await self._read_pass(emit)
                if not self._stopping:
                    await self._housekeeping(emit)
                if not self._stopping and self.store.dirty and (
                        time.monotonic() - last_save >= cfg.checkpoint_interval_secs):
                    last_save = time.monotonic()
                    await self._save()
                if self._stopping:
                    break
                if progressed:
                    await asyncio.sleep(0)  # let acks, outputs and other sources run
                    continue
                try:
                    async with asyncio.timeout(_POLL_SECS):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            if not self._stopping:  # cancelled without stop(): persist what is safe anyway
                self._stopping = True
                self._shutdown_sync()

    async def stop(self) -> None:
        """Stop reading, persist the acknowledged positions, close every file. Waits for
        nothing else: batches still in flight are simply re-read after a restart."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._save_lock is None:  # never ran
            return
        await self._save(force=True)
        self._files.close_all()

    async def close(self) -> None:
        """Persist the progress acknowledged after ``stop`` (while outputs drained)."""
        if self._save_lock is not None:
            await self._save(force=True)

    # -- events and acks (loop thread) ----------------------------------------------------

    def _on_fs_event(self, structural: bool) -> None:
        if structural:
            self._rescan_due = True
        if self._wake is not None:
            self._wake.set()

    def _on_safe(self, reader: FileReader, tracker: AckTracker, token: int,
                 group: AckGroup) -> None:
        if threading.get_ident() != self._loop_thread and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_safe, reader, tracker, token, group)
            return
        if reader.tracker is not tracker or reader.identity is None:
            return  # truncated since: those bytes are gone, their progress is meaningless
        if tracker.ack(token):
            self.store.set_offset(reader.identity, tracker.committed)
        if reader.retired and tracker.pending == 0:
            self._files.forget(reader)

    # -- reading --------------------------------------------------------------------------

    async def _read_pass(self, emit: Emit) -> bool:
        """Read every open file a little; True if any byte was read."""
        progressed = False
        max_batch = self.config.max_batch_records
        for reader in list(self._files.readers):
            if reader.closed or (reader.identity is None and not self._files.identify(reader)):
                continue
            for _ in range(_CHUNKS_PER_PASS):
                before = reader.offset
                try:
                    for chunk in reader.read(max_batch):
                        await self._emit(emit, reader, chunk)
                        if self._stopping:
                            return progressed
                except Truncated:
                    self._truncated(reader)
                    progressed = True
                    break
                except OSError as exc:
                    log.error("tail %s: reading %s failed, closing it: %s",
                              self.name, reader.path, exc)
                    self._files.close(reader)
                    break
                finally:
                    self._collect(reader)
                if reader.offset == before:
                    break
                progressed = True
                if reader.eof:
                    break
        return progressed

    async def _emit(self, emit: Emit, reader: FileReader, chunk: Chunk) -> None:
        tracker, identity = reader.tracker, reader.identity
        assert tracker is not None and identity is not None
        if not chunk.records:  # bytes consumed with nothing to ship: safe at once
            if tracker.advance(chunk.safe_offset):
                self.store.set_offset(identity, tracker.committed)
            return
        token = tracker.add(chunk.safe_offset)
        group = AckGroup(on_safe=functools.partial(self._on_safe, reader, tracker, token))
        self._m_records.inc(len(chunk.records))
        await emit(Batch(chunk.records, group, self.name))

    def _collect(self, reader: FileReader) -> None:
        if reader.bytes_read:
            self._m_bytes.inc(reader.bytes_read)
            reader.bytes_read = 0
        decoder = reader.decoder
        if decoder is not None and decoder.flags:
            for flag, count in decoder.flags.items():
                self._metrics.records_flagged.labels(self.name, flag).inc(count)
            decoder.flags.clear()

    def _truncated(self, reader: FileReader) -> None:
        log.info("tail %s: %s was truncated, reading it again from the start",
                 self.name, reader.path)
        self._metrics.files_rotated.labels(self.name, "truncated").inc()
        if reader.identity is not None:
            self.store.remove(reader.identity)
        reader.reset_truncated()
        self._files.identify(reader)

    async def _housekeeping(self, emit: Emit) -> None:
        """Flush dangling partial messages; retire drained rotated/deleted files."""
        cfg = self.config
        for reader in list(self._files.readers):
            if reader.closed or self._stopping:
                continue
            now = time.monotonic()
            idle = now - reader.last_data
            if reader.eof and reader.has_partials and idle >= cfg.partial_flush_secs:
                chunk = reader.flush(final=False)
                if chunk is not None:
                    await self._emit(emit, reader, chunk)
                    self._collect(reader)
            if reader.draining_since is None or self._stopping:
                continue
            waited = now - reader.draining_since
            try:
                unread = reader.size() - reader.offset
            except OSError:
                unread = 0
            if unread <= 0 and waited >= cfg.rotate_wait_secs and idle >= cfg.rotate_wait_secs:
                await self._retire(emit, reader, 0)
            elif 0 < cfg.drain_timeout_secs <= waited:
                await self._retire(emit, reader, max(unread, 0))

    async def _retire(self, emit: Emit, reader: FileReader, lost: int) -> None:
        """Ship what is left of a drained file and close it for good."""
        if reader.identity is None:
            self._files.identify(reader, force=True)
        if reader.identity is not None:
            chunk = reader.flush(final=True)
            if chunk is not None:
                await self._emit(emit, reader, chunk)
                self._collect(reader)
        if self._stopping:
            return
        if lost:
            reason = "deleted_unread" if not os.path.exists(reader.real_path) else "rotated_unread"
            self._metrics.lost_bytes.labels(self.name, reason).inc(lost)
            log.warning("tail %s: closed %s with %d bytes unread (drain_timeout_secs)",
                        self.name, reader.path, lost)
        self._files.retire(reader)

    # -- persistence and shutdown ---------------------------------------------------------

    async def _save(self, force: bool = False) -> None:
        assert self._save_lock is not None
        async with self._save_lock:
            if not self.store.dirty and not force:
                return
            data = self.store.snapshot()
            try:
                await asyncio.to_thread(self.store.write, data)
            except StorageError as exc:
                self.store.dirty = True
                if not self._save_failing:
                    log.error("tail %s: cannot persist positions: %s", self.name, exc)
                self._save_failing = True
            else:
                if self._save_failing:
                    log.info("tail %s: positions persisted again", self.name)
                self._save_failing = False

    def _shutdown_sync(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        try:
            self.store.write(self.store.snapshot())
        except StorageError as exc:
            log.error("tail %s: cannot persist positions at exit: %s", self.name, exc)
        self._files.close_all()
