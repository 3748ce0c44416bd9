"""The disk buffer of one output: crash-safe chunks in segment files (reliability spec §1, §7).

Each chunk is one append-only segment file in ``<state_dir>/buffers/<output>/`` (format in
``format``). The contract with the rest of the agent is the memory buffer's, with one
difference that is the point of it all — **ack = safe**: a batch's ack group is released as
soon as its records are fsynced here, so the tail checkpoint and forward acks advance while
the output is still down, and the buffer, not the source, carries the data across a crash.

Ordering that makes it crash-safe:

- **write** the records (``pwrite`` at the known end, so a retry after an error rewrites the
  same bytes) → **fsync** the file, and the directory once after the file was created →
  only then **release** the ack holds. ``fsync: always`` does this before ``put`` returns;
  ``interval`` every ``fsync_interval_secs`` (and at shutdown), and soon after a write for
  an ``urgent`` ack group (a client that waits for its ack before sending more): that fsync
  covers whatever else was written since, so waiting clients share fsyncs and sources that
  do not wait keep the interval.
- **settle**: delivery is done with a chunk → **unlink** its file → **fsync** the directory
  → then the bytes count as free. A crash in between re-sends the chunk; the deterministic
  ids make Elasticsearch answer 409, so the index holds each record once.

Storage faults (ENOSPC, EIO...) pause the inputs: ``put`` retries its write with backoff,
a failed fsync marks the buffer unhealthy until an fsync succeeds (the unsynced bytes are
written again first: after a failed fsync the kernel may have dropped them), and the
condition is logged at most once per 10 s. Nothing is dropped and no half record is left
behind: a failed write is truncated away, and recovery would handle it anyway.

Memory stays flat during an outage: new chunks keep their payloads in memory (``hot``) only
while fewer than ``max_in_flight + 2`` chunks do; the others are read back from disk,
CRC-checked, when delivery takes them (so at most ``2 * max_in_flight + 2`` are in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from pathlib import Path

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.disk.chunk import DiskChunk
from shipper.buffer.disk.format import HEADER_SIZE, framed_size
from shipper.buffer.disk.loader import load_chunk
from shipper.buffer.disk.recovery import QUARANTINE, recover
from shipper.buffer.disk.report import StorageReporter
from shipper.buffer.disk.storage import Storage
from shipper.buffer.disk.sync import Syncer
from shipper.buffer.disk.writer import SegmentWriter
from shipper.buffer.memory import Chunk
from shipper.crashpoints import crashpoint
from shipper.metrics import Metrics

log = logging.getLogger(__name__)

_LOAD_ATTEMPTS = 3


class DiskBuffer:
    """Implements ``shipper.buffer.Buffer`` with segment files under ``directory``.

    ``storage`` is the hook for fault injection in tests; ``retry_secs`` the first and the
    longest wait between attempts while storage fails.
    """

    def __init__(self, output: str, config: BufferConfig, metrics: Metrics, directory: Path,
                 *, storage: Storage | None = None,
                 retry_secs: tuple[float, float] = (0.1, 5.0)) -> None:
        self._output = output
        self._config = config
        self.directory = Path(directory)
        self.storage = storage or Storage()
        self._report = StorageReporter(output, metrics, retry_secs)
        self._syncer = Syncer(self.directory, self.storage, self._report)
        self._write_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._space = asyncio.Event()
        self._sync_soon = asyncio.Event()  # an urgent group was written: fsync now
        self._writer = SegmentWriter(config, self.directory, self.storage, self._syncer,
                                     on_sealed=self._sealed, on_grown=self._grown,
                                     keep_hot=self._keep_hot)
        self._ready: deque[DiskChunk] = deque()
        self._in_flight: dict[int, DiskChunk] = {}
        self._undeleted: list[DiskChunk] = []  # settled, but the unlink failed: retried
        self._bytes = 0
        self._hot = 0
        self._cache_chunks = max(2, config.max_in_flight + 2)
        self._opened = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._gauge_bytes = metrics.buffer_bytes.labels(output)
        self._gauge_chunks = metrics.buffer_chunks.labels(output)

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the directory and queue every unsettled record for delivery.

        Raises StorageError when the buffer cannot be used (written by a newer version,
        directory not writable): the agent must not start and overwrite anything.
        """
        if self._opened:
            return
        result = await asyncio.to_thread(recover, self.directory, self.storage)
        now, wall = time.monotonic(), time.time()
        for seg in result.segments:
            self._ready.append(DiskChunk.recovered(seg.seq, seg.path, seg.size, seg.count,
                                                   now - max(0.0, wall - seg.mtime)))
            self._bytes += seg.size
            self._writer.next_seq = max(self._writer.next_seq, seg.seq + 1)
        self._report.corrupt(result.corrupt_records)
        if result.segments or result.quarantined:
            log.info("disk buffer of output %s: %d record(s) in %d chunk(s) to deliver",
                     self._output, sum(s.count for s in result.segments), len(result.segments),
                     extra={"event": "buffer_replay", "output": self._output,
                            "records": sum(s.count for s in result.segments),
                            "bytes": self._bytes, "quarantined": len(result.quarantined),
                            "corrupt_records": result.corrupt_records})
        self._opened = True
        self._update_gauges()
        self._task = asyncio.create_task(self._housekeep(), name=f"buffer-{self._output}")

    def close(self) -> None:
        """Accept no more records; the open chunk becomes ready at the next ``get``."""
        self._closed = True
        self._changed.set()

    async def shutdown(self) -> None:
        """Persist everything (final fsync, so the last acks are released) and close files."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if not self._opened:
            return
        async with self._write_lock:
            self._writer.seal()
        if not await self._syncer.sync():
            log.error("disk buffer of output %s: the last records could not be fsynced; "
                      "their sources were not acknowledged and will send them again",
                      self._output, extra={"event": "buffer_persist_failed",
                                           "output": self._output})
        await self._syncer.close_all()
        log.info("disk buffer of output %s persisted", self._output,
                 extra={"event": "buffer_persisted", "output": self._output,
                        "chunks": self.chunk_count, "bytes": self._bytes})

    # -- producer side -----------------------------------------------------------------------

    def storage_problem(self) -> str | None:
        """The storage fault this buffer is waiting out (``/readyz`` reports it), or None."""
        return self._report.problem

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def chunk_count(self) -> int:
        return len(self._ready) + len(self._in_flight) + (1 if self._writer.open is not None else 0)

    @property
    def empty(self) -> bool:
        chunk = self._writer.open
        return not self._ready and not self._in_flight and not (chunk and chunk.count)

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest unsettled chunk was opened (0 when empty)."""
        now = time.monotonic() if now is None else now
        oldest = [c.created for c in self._in_flight.values()]
        oldest += [c.created for c in self._ready]
        if self._writer.open is not None:
            oldest.append(self._writer.open.created)
        return max(0.0, now - min(oldest)) if oldest else 0.0

    async def put(self, payloads: Sequence[bytes], group: AckGroup | None) -> None:
        """Append payloads; waits for space (block), storage to recover, or drops (drop_newest)."""
        if self._closed:
            raise RuntimeError(f"buffer of output {self._output!r} is closed")
        if not self._opened:
            raise RuntimeError(f"buffer of output {self._output!r} is not open")
        n = len(payloads)
        start = 0
        failures = 0
        wrote = False
        healthy = self._syncer.healthy
        while start < n:
            if not healthy.is_set():
                await healthy.wait()
            outcome, nxt = await self._step(payloads, start, group)
            if outcome == "wrote":
                wrote = True
                if failures:
                    self._report.recovered("write")
                failures = 0
            elif outcome == "failed":
                failures += 1
                await asyncio.sleep(self._report.delay(failures))
            elif outcome == "too_large":
                self._drop(1, group, "too_large")
                log.error("a record of %d bytes can never fit in the disk buffer of output %s "
                          "(total_limit_bytes); dropped and counted", len(payloads[start]),
                          self._output, extra={"event": "buffer_record_too_large",
                                               "output": self._output})
            elif self._config.when_full == "drop_newest":
                self._drop(n - start, group, "buffer_full")
                break
            else:
                await self._space.wait()
            start = nxt
        if wrote and self._config.fsync == "always":
            await self._syncer.sync()
        elif wrote and group is not None and group.urgent:
            self._sync_soon.set()

    async def _step(self, payloads: Sequence[bytes], start: int, group: AckGroup | None,
                    ) -> tuple[str, int]:
        """Write the next run of payloads that fits into one chunk, if any fits."""
        async with self._write_lock:
            new, end = self._writer.plan(payloads, start,
                                         self._config.total_limit_bytes - self._bytes)
            if end > start:
                try:
                    await self._writer.append(payloads, start, end, new, group)
                except OSError as exc:
                    self._report.failed("write", exc)
                    return "failed", start
                self._update_gauges()
                self._changed.set()
                return "wrote", end
            if framed_size(payloads[start]) + HEADER_SIZE > self._config.total_limit_bytes:
                return "too_large", start + 1
            self._space.clear()  # no await since the plan: a settle cannot be missed
            return "full", start

    def _sealed(self, chunk: DiskChunk) -> None:
        if chunk.count:
            self._ready.append(chunk)
            self._changed.set()
        else:  # a header-only segment carries nothing: housekeeping deletes it
            self._undeleted.append(chunk)

    def _grown(self, n: int) -> None:
        self._bytes += n

    def _keep_hot(self) -> bool:
        """Whether a new chunk keeps its payloads in memory (only the newest few do)."""
        if self._hot >= self._cache_chunks:
            return False
        self._hot += 1
        return True

    def _drop(self, n: int, group: AckGroup | None, reason: str) -> None:
        self._report.dropped(n, reason)
        if group is not None:
            group.dropped += n

    # -- durability --------------------------------------------------------------------------

    async def _housekeep(self) -> None:
        """Periodic fsync (``interval``, or at once for an urgent group), retries of failed
        fsyncs and deletions."""
        failures = 0
        every = self._config.fsync_interval_secs if self._config.fsync == "interval" else 1.0
        while True:
            if self._syncer.healthy.is_set():
                failures = 0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._sync_soon.wait(), timeout=every)
                # Cleared before the fsync takes its snapshot: an urgent write after this
                # point sets it again and gets the next round.
                self._sync_soon.clear()
            else:
                failures += 1
                await asyncio.sleep(self._report.delay(failures))
            try:
                if self._undeleted:
                    await self._retry_deletions()
                if self._syncer.chunks:
                    await self._syncer.sync()
            except Exception:  # a bug here must not silently stop every future fsync
                log.exception("disk buffer of output %s: housekeeping failed", self._output,
                              extra={"event": "buffer_housekeeping_failed",
                                     "output": self._output})

    # -- consumer side -----------------------------------------------------------------------

    async def get(self) -> DiskChunk | None:
        """The next chunk to deliver, payloads loaded; ``None`` once closed and empty."""
        while True:
            if self._ready:
                chunk = self._ready.popleft()
                self._in_flight[chunk.id] = chunk
                if chunk.hot or await self._load(chunk):
                    return chunk
                continue
            chunk_open = self._writer.open
            due: float | None = None
            if chunk_open is not None and chunk_open.count:
                due = chunk_open.created + self._config.flush_interval_secs - time.monotonic()
                if due <= 0 or self._closed:
                    async with self._write_lock:
                        if self._writer.open is chunk_open:
                            self._writer.seal()
                    continue
            if self._closed:
                return None
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=due)
            except TimeoutError:
                pass

    async def _load(self, chunk: DiskChunk) -> bool:
        """Read a cold chunk back; False if it had nothing deliverable (then it is settled)."""
        try:
            loaded = await asyncio.to_thread(load_chunk, chunk.path, self.storage, chunk.count)
        except OSError as exc:
            chunk.load_failures += 1
            self._report.failed("read", exc)
            self._in_flight.pop(chunk.id, None)
            if chunk.load_failures < _LOAD_ATTEMPTS and exc.errno != errno.ENOENT:
                self._ready.appendleft(chunk)
                await asyncio.sleep(self._report.delay(chunk.load_failures))
                return False
            log.error("disk buffer segment %s of output %s cannot be read (%s); its %d "
                      "record(s) are counted as corrupt", chunk.path, self._output, exc,
                      chunk.count, extra={"event": "buffer_segment_unreadable",
                                          "output": self._output, "segment": str(chunk.path)})
            self._report.corrupt(chunk.count)
            self._report.recovered("read")  # given up and counted: no longer pending
            await self._retire(chunk, quarantine=True)
            return False
        self._report.recovered("read")
        self._report.corrupt(loaded.corrupt)
        chunk.payloads = loaded.payloads
        chunk.count = len(loaded.payloads)
        if not chunk.payloads:
            self._in_flight.pop(chunk.id, None)
            await self._retire(chunk)
            return False
        chunk.hot = True
        self._hot += 1
        return True

    def settle(self, chunk: Chunk) -> Awaitable[None]:
        """Delivery is done with ``chunk``: delete its segment durably, release its holds."""
        mine = self._in_flight.pop(chunk.id, None)
        if mine is None:
            raise RuntimeError(f"chunk {chunk.id} settled twice or never handed out")
        # Shielded: a delivery cancelled at the shutdown deadline must not leave the
        # deletion half done (the holds unreleased, the bytes still counted).
        return asyncio.shield(self._retire(mine))

    def requeue(self, chunk: Chunk) -> None:
        """Give an unfinished chunk back (delivery was cancelled); it stays unsettled."""
        mine = self._in_flight.pop(chunk.id, None)
        if mine is not None:
            self._ready.appendleft(mine)

    async def _retire(self, chunk: DiskChunk, quarantine: bool = False) -> None:
        crashpoint("buffer_before_delete")
        await self._syncer.forget(chunk)
        try:
            await asyncio.to_thread(self._delete, chunk.path, quarantine)
        except OSError as exc:
            self._report.failed("delete", exc)
            self._undeleted.append(chunk)
        else:
            self._bytes -= chunk.nbytes
            if not self._undeleted:
                self._report.recovered("delete")
        chunk.release_all()
        if chunk.hot:
            self._hot -= 1
            chunk.hot = False
        chunk.payloads = []
        self._update_gauges()
        self._space.set()

    def _delete(self, path: Path, quarantine: bool = False) -> None:
        try:
            if quarantine:
                self.storage.rename(path, self.directory / QUARANTINE
                                    / f"{path.name}.{time.time_ns()}")
            else:
                self.storage.unlink(path)
        except FileNotFoundError:
            pass
        crashpoint("buffer_after_delete")
        self.storage.fsync_dir(self.directory)

    async def _retry_deletions(self) -> None:
        pending, self._undeleted = self._undeleted, []
        for chunk in pending:
            await self._syncer.forget(chunk)  # an empty sealed segment may still be tracked
            try:
                await asyncio.to_thread(self._delete, chunk.path)
            except OSError as exc:
                self._report.failed("delete", exc)
                self._undeleted.append(chunk)
            else:
                self._bytes -= chunk.nbytes
                self._space.set()
        if not self._undeleted:
            self._report.recovered("delete")
        self._update_gauges()

    def _update_gauges(self) -> None:
        self._gauge_bytes.set(self._bytes)
        self._gauge_chunks.set(self.chunk_count)
