"""The read side of the tail source: read, emit, acknowledge, hand over, retire.

Runs on one asyncio task (``TailSource.run``); the watch task (discovery, deadlines, the
open-file cap, checkpoint saves) runs beside it and may take a reader's descriptor away at
any ``await`` — readers never touch their descriptor after yielding a chunk, and the loop
checks ``attached`` before every read.

* **Read**: round-robin over readers with a descriptor, at most ``CHUNKS_PER_PASS`` chunks
  per file per pass, so one busy file cannot starve the others. ``await emit(batch)`` blocks
  while the output buffers are full: reading then stops (backpressure), nothing is dropped
  and no checkpoint moves.
* **Acknowledge**: every batch covers a contiguous byte range of one file and carries an
  ``AckGroup``; its ``on_safe`` feeds the file's ``AckTracker`` and only the acknowledged
  prefix is written to the checkpoint store. A batch may also finish messages handed over
  by the previous generation (``Handoff``): that generation's range is then acknowledged too.
* **Hand over**: a rotated file read to its end gives its open partial groups and multiline
  events to its successor (same lineage) if the successor has not read anything yet, so a
  message split by the rotation is still one record. The successor waits for that. A
  generation without a successor yet (adopted from its checkpoint at start-up, or renamed
  before its new file existed) keeps its open messages up to ``rotate_wait_secs`` for the
  new file (``FileTable`` links it when it appears).
* **Retire** a rotated/deleted file once it was read to the end and ``rotate_wait_secs``
  passed without new data; ship what a given-up file (deleted too long, compressed) still
  holds in memory and retire it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable

from shipper.acks import AckGroup
from shipper.metrics import Metrics
from shipper.protocols import Emit
from shipper.record import Batch
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.files import FileTable
from shipper.sources.tail.progress import AckTracker
from shipper.sources.tail.reader import Chunk, FileReader, Handoff, Truncated

log = logging.getLogger(__name__)

CHUNKS_PER_PASS = 4  # fairness: chunks read from one file before moving to the next


class ReadLoop:
    """Reading, emitting and acknowledging for one tail source."""

    def __init__(self, name: str, config: TailConfig, files: FileTable, metrics: Metrics,
                 clock: Callable[[], float]) -> None:
        self.name = name
        self.config = config
        self.files = files
        self.store = files.store
        self.clock = clock
        self.stopping = False
        self.loop_thread: int | None = None
        self.call_soon_threadsafe: Callable[..., object] | None = None
        # Seconds spent inside ``emit`` (blocked on full buffers, or running the filters):
        # idle times are measured on a clock that stops meanwhile (``active``).
        self.paused = 0.0
        # Writes the checkpoints now (``TailSource``); None in tests that drive the loop.
        self.persist: Callable[[], Awaitable[None]] | None = None
        self._metrics = metrics
        self._m_records = metrics.records_read.labels(name)
        self._m_bytes = metrics.bytes_read.labels(name)

    # -- reading --------------------------------------------------------------------------

    async def read_pass(self, emit: Emit) -> bool:
        """Read every file a little; True if anything was read or shipped."""
        progressed = False
        max_batch = self.config.max_batch_records
        for reader in list(self.files.readers):
            if reader.closed or not reader.attached or reader.given_up or _waits(reader):
                continue
            if reader.identity is None and not self.files.identify(reader):
                continue
            reader.busy = True
            try:
                for _ in range(CHUNKS_PER_PASS):
                    if not reader.attached:
                        break
                    before = reader.offset
                    chunks = reader.read(max_batch)
                    failed = False
                    try:
                        while True:
                            # Only the reading of the file is guarded: an OSError raised
                            # by ``emit`` (the pipeline, a buffer) is not the file's, and
                            # propagates; its batch was never acknowledged, so it is read
                            # again after the restart.
                            try:
                                chunk = next(chunks, None)
                            except Truncated:
                                log.info("tail %s: %s was truncated, reading it again from "
                                         "the start", self.name, reader.path,
                                         extra={"event": "tail_truncated",
                                                "source": self.name})
                                self.files.recovery.truncated(reader)
                                progressed = failed = True
                                break
                            except OSError as exc:
                                log.error("tail %s: reading %s failed, giving it up: %s",
                                          self.name, reader.path, exc,
                                          extra={"event": "tail_read_failed",
                                                 "source": self.name})
                                self.files.give_up(reader)
                                failed = True
                                break
                            if chunk is None:
                                break
                            await self.emit(emit, reader, chunk)
                            progressed = True
                            if self.stopping:
                                return progressed
                    finally:
                        self.collect(reader)
                        if reader.offset != before:
                            reader.last_active = self.active()
                    if failed or reader.offset == before or reader.eof:
                        break
            finally:
                reader.busy = False
        return progressed

    async def emit(self, emit: Emit, reader: FileReader, chunk: Chunk) -> None:
        tracker, identity = reader.tracker, reader.identity
        assert tracker is not None and identity is not None
        if not chunk.records:  # bytes consumed with nothing to ship: safe at once
            if tracker.advance(chunk.safe_offset, chunk.carry):
                self.store.set_offset(identity, tracker.committed, tracker.carry)
            for handoff in chunk.handoffs:
                self._handoff_safe(handoff)
            return
        decoder = reader.decoder
        if (decoder is not None and decoder.used_initial and identity in self.store.unsaved
                and self.persist is not None):
            # A malformed line was timed with the file's first-seen time, which a restart
            # knows only from the checkpoint entry: write it before the record can be
            # indexed, or a replay would time (and index) it differently.
            decoder.used_initial = False  # one write (a failing store is not retried here)
            await self.persist()
        token = tracker.add(chunk.safe_offset, chunk.carry)
        group = AckGroup(on_safe=functools.partial(self._on_safe, reader, tracker, token,
                                                   chunk.handoffs))
        self._m_records.inc(len(chunk.records))
        started = self.clock()
        try:
            await emit(Batch(chunk.records, group, self.name))
        finally:
            self.paused += self.clock() - started
        entry = self.store.entries.get(identity)
        if entry is not None and chunk.safe_offset > entry.sent:
            # Handed to the pipeline: maybe delivered from now on. Saved with the next
            # checkpoint write, so a restart that cannot read these bytes again (compressed
            # or deleted meanwhile) tells "maybe delivered" from "never sent".
            entry.sent = chunk.safe_offset
            self.store.dirty = True
        # When no buffer is full, ``emit`` never suspends, and one pass over a backlog of
        # many files can take seconds: hand the loop over after every batch so delivery,
        # acknowledgements, telemetry probes and the metadata watch keep running.
        await asyncio.sleep(0)

    def active(self) -> float:
        """The clock minus the time spent in ``emit``: while reading is blocked nothing is
        read, so a file must not look idle (and have its open messages flushed) for it."""
        return self.clock() - self.paused

    def idle(self, reader: FileReader) -> float:
        """Seconds since the reader last got data, not counting time spent in ``emit``."""
        if reader.last_active is None:
            return self.clock() - reader.last_data
        return self.active() - reader.last_active

    def collect(self, reader: FileReader) -> None:
        self.files.collect_cut(reader)
        if reader.bytes_read:
            self._m_bytes.inc(reader.bytes_read)
            reader.bytes_read = 0
        decoder = reader.decoder
        if decoder is not None and decoder.flags:
            for flag, count in decoder.flags.items():
                self._metrics.records_flagged.labels(self.name, flag).inc(count)
            decoder.flags.clear()

    # -- acknowledgements (loop thread) ---------------------------------------------------

    def _on_safe(self, reader: FileReader, tracker: AckTracker, token: int,
                 handoffs: list[Handoff], group: AckGroup) -> None:
        if (self.call_soon_threadsafe is not None
                and threading.get_ident() != self.loop_thread):
            self.call_soon_threadsafe(self._on_safe, reader, tracker, token, handoffs, group)
            return
        self._settle(reader, tracker, token)
        for handoff in handoffs:
            self._handoff_safe(handoff)

    def _handoff_safe(self, handoff: Handoff) -> None:
        handoff.remaining -= 1
        if handoff.remaining == 0:
            self._settle(handoff.reader, handoff.tracker, handoff.token)

    def _settle(self, reader: FileReader, tracker: AckTracker, token: int) -> None:
        if reader.tracker is not tracker or reader.identity is None:
            return  # reset since: those bytes are gone, their progress is meaningless
        if tracker.ack(token):
            self.store.set_offset(reader.identity, tracker.committed, tracker.carry)
        if reader.retired and tracker.pending == 0:
            self.files.forget(reader)

    # -- hand over, flush, retire ---------------------------------------------------------

    async def housekeeping(self, emit: Emit) -> bool:
        """Hand over, flush idle open messages, retire drained files; True if any work."""
        cfg = self.config
        worked = False
        for reader in list(self.files.readers):
            if reader.closed or self.stopping:
                continue
            if reader.given_up:
                await self.retire(emit, reader)
                worked = True
                continue
            if not reader.attached or reader.busy:
                continue
            now = self.clock()
            idle = self.idle(reader)
            if (reader.draining_since is not None and not reader.handed_over
                    and not _waits(reader)
                    and not _awaits_successor(reader, now, cfg.rotate_wait_secs)
                    and (reader.identity is None or (reader.eof and _at_end(reader)))):
                self._hand_over(reader)
                worked = True
            if reader.eof and reader.pending:
                rule = reader.multiline
                partials = idle >= cfg.partial_flush_secs
                events = rule is not None and idle >= rule.flush_timeout_secs
                if (partials or events) and _at_end(reader):
                    chunk = reader.flush(final=False, partials=partials, events=events)
                    if chunk is not None:
                        await self.emit(emit, reader, chunk)
                        self.collect(reader)
                        worked = True
            if reader.draining_since is None or not reader.handed_over:
                continue
            waited = now - reader.draining_since
            try:
                unread = reader.observe() - reader.offset
            except OSError:
                unread = 0
            if unread <= 0 and waited >= cfg.rotate_wait_secs and idle >= cfg.rotate_wait_secs:
                await self.retire(emit, reader)
                worked = True
        return worked

    def _hand_over(self, reader: FileReader) -> None:
        reader.handed_over = True
        successor = reader.successor
        decoder, tracker = reader.decoder, reader.tracker
        if (successor is None or successor.closed or successor.given_up
                or successor.consumed() > 0 or decoder is None or tracker is None):
            return
        groups, events = decoder.take_pending()
        count = len(groups) + len(events)
        if count:
            handoff = Handoff(reader, tracker,
                              tracker.add(reader.consumed(), decoder.carry_ns), count)
            successor.inherit(groups, events, handoff)
            self.files.changed = True

    async def retire(self, emit: Emit, reader: FileReader) -> None:
        """Ship what is left of a drained (or given-up) file and close it for good."""
        if reader.identity is None and reader.attached:
            self.files.identify(reader, force=True)
        if reader.identity is not None:
            chunk = reader.flush(final=True)
            if chunk is not None:
                await self.emit(emit, reader, chunk)
                self.collect(reader)
        if self.stopping:
            return
        successor = reader.successor
        if successor is not None and successor.waiting_for is reader:
            successor.waiting_for = None
        self.files.retire(reader)


def _at_end(reader: FileReader) -> bool:
    """Look again: ``eof`` is from the last read, which may be long ago when ``emit`` was
    blocked meanwhile. False (and ``eof`` cleared, so the read pass goes on) when bytes
    arrived since; a hand-over or a flush of open messages must wait for them."""
    try:
        size = reader.observe(check_head=False)
    except OSError:
        return True  # nothing more can be read from it anyway
    if reader.replaced or size > reader.offset:
        reader.eof = False
        return False
    return True


def _awaits_successor(reader: FileReader, now: float, wait: float) -> bool:
    """A generation rotated away with open messages and no next generation yet (its path
    was renamed before the new file was created, or a restart adopted it from its
    checkpoint before the new file existed): the new file may still continue them, so the
    hand-over waits for it, at most ``rotate_wait_secs``; then they are shipped as they are."""
    return (reader.successor is None and reader.pending and reader.draining_since is not None
            and now - reader.draining_since < wait)


def _waits(reader: FileReader) -> bool:
    """The previous generation has not handed over yet (its open messages may continue)."""
    previous = reader.waiting_for
    if previous is None:
        return False
    if previous.closed or previous.given_up or previous.handed_over:
        reader.waiting_for = None
        return False
    return True
