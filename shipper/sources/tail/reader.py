"""Reading one file incarnation (one inode's content): chunks in, batches of records out.

The reader owns the read offset, the incomplete last line, the identity and the decoder of
one file incarnation, and (while it holds one) the descriptor. It never decides about
rotation, deletion or emission (``files`` and ``source`` do); it only answers "what is new in
this inode".

* Big chunks (``read_chunk_bytes``) are split on LF in bulk; the bytes after the last LF wait
  for the next read, so a record is never built from half a line.
* A physical line longer than ``max_line_bytes + LINE_SLACK`` is not held in memory: its
  head is kept, the rest only counted until its LF arrives (then shipped truncated).
* The identity needs the first line (``identify``); until it is complete nothing is read.
  Then the checkpoint store decides the start offset. The first line's bytes are kept and
  compared with the file's head after every read: a file truncated and refilled past our
  offset between two reads (T07) shows a different head, and is treated as truncated.
* The descriptor can be given back (``detach``) when the open-file cap needs it and taken
  again (``attach``) later: offsets, incomplete line and open groups stay in memory.
* A UTF-8 byte order mark at offset 0 is skipped; a leading run of NUL bytes in the
  incomplete last line (a hole left by a writer without O_APPEND) is skipped.
* ``offset`` counts bytes consumed from the file; the safe checkpoint of every batch comes
  from the decoder (never inside a partial group or multiline event) and is at most the end
  of the last complete line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from shipper.record import Record
from shipper.sources.tail.checkpoints import CheckpointStore, Entry
from shipper.sources.tail.chunks import Chunk, Handoff, Identified, Inherited, Truncated
from shipper.sources.tail.config import MultilineConfig, TailConfig
from shipper.sources.tail.formats import BOM, Decoder, detect_format, make_decoder
from shipper.sources.tail.identity import (
    FINGERPRINT_BYTES,
    file_identity,
    fingerprint,
    fingerprint_source,
)
from shipper.sources.tail.multiline import Event
from shipper.sources.tail.partials import Group
from shipper.sources.tail.paths import FileMeta
from shipper.sources.tail.progress import AckTracker

LINE_SLACK = 64 * 1024  # room for the CRI prefix / JSON escaping around a max-size message

__all__ = ["Chunk", "FileReader", "Handoff", "Identified", "Truncated"]


class FileReader:
    """State of one file incarnation being read."""

    def __init__(self, path: str, open_path: str, dev: int, ino: int, meta: FileMeta,
                 config: TailConfig, from_head: bool, lineage: str, key: str | None = None,
                 multiline: MultilineConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``path`` is the discovered path (it names the records); ``open_path`` the file to
        open (a rotated sibling's own name, or ``path``); ``lineage`` the real path of the
        file's current generation; ``key`` the identity key (the container id of the path,
        else the lineage)."""
        self.path = path
        self.open_path = open_path
        self.lineage = lineage
        self.fd: int | None = None
        self.dev = dev
        self.ino = ino
        self.meta = meta
        self.static = meta.static_fields()
        self.key = key or meta.container_id or lineage
        self.config = config
        self.multiline = multiline
        self.from_head = from_head
        self.clock = clock
        self.identity: str | None = None
        self.fingerprint: str | None = None
        self.head: bytes = b""  # the bytes the fingerprint hashes (checked after reads)
        self.generation = 0
        self.resume: tuple[str, Entry] | None = None  # checkpoint to start from (adopted)
        self.decoder: Decoder | None = None
        self.tracker: AckTracker | None = None
        self.offset = 0  # next byte to read
        self.size_seen = 0  # size of this content at the last look (loss accounting)
        self.replaced = False  # truncated under us: the inode holds other content now
        self.cut = 0  # bytes cut off the end before we read them (collected by the owner)
        self.eof = False
        self.bytes_read = 0  # since the owner last collected it
        self.last_data = clock()
        # ``ReadLoop.active()`` when data was last read (None: never), see ``ReadLoop.idle``.
        self.last_active: float | None = None
        self.opened_at = clock()
        self.wanted_since: float | None = None  # waiting for a descriptor (open-file cap)
        self.draining_since: float | None = None  # rotated away, retargeted or deleted
        self.deleted_since: float | None = None  # unlinked while we hold it open
        self.waiting_for: FileReader | None = None  # previous generation still handing over
        self.successor: FileReader | None = None
        self.handed_over = False
        self.inherited: Inherited | None = None
        self.ready: list[Record] = []  # records to ship with the next chunk
        self.busy = False  # the read loop is between reads of this file
        self.given_up = False  # its data is gone (counted): ship what is in memory, retire
        self.retired = False  # closed for good (drained): its checkpoint entry can go
        self.closed = False
        self._buf = b""  # incomplete last line; ends at ``offset``
        self._long: list[int] | None = None  # [start, length so far] of an over-long line
        self._long_head = b""
        self._skip_to_newline = False

    # -- descriptor -----------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.fd is not None

    def attach(self, fd: int) -> None:
        self.fd = fd
        self.opened_at = self.clock()
        self.wanted_since = None

    def detach(self) -> None:
        """Give the descriptor back (open-file cap, or closing); state stays in memory."""
        fd, self.fd = self.fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        self.detach()
        self.closed = True

    def observe(self, check_head: bool = True) -> int:
        """Look at the file: its current size (and whether it was unlinked). ``size_seen``
        keeps the size of THIS content: a shrink below our offset, or a changed first line,
        marks it ``replaced`` (truncated, maybe refilled) and ``size_seen`` stays the last
        size of the old content, which is what loss accounting needs. A shrink above our
        offset with the same first line cut bytes we had not read: ``cut`` counts them."""
        size = self._stat()
        if self.replaced:
            return size
        assert self.fd is not None
        if size < self.offset or ((check_head or size != self.size_seen) and self.head
                                  and os.pread(self.fd, len(self.head), 0) != self.head):
            self.replaced = True
        else:
            if size < self.size_seen:
                self.cut += self.size_seen - size
            self.size_seen = size
        return size

    def _stat(self) -> int:
        assert self.fd is not None
        st = os.fstat(self.fd)
        if st.st_nlink == 0 and self.deleted_since is None:
            self.deleted_since = self.clock()
        return st.st_size

    # -- identity -------------------------------------------------------------------------

    def identify(self, store: CheckpointStore, force: bool = False) -> Identified:
        """Compute the identity once the first line is complete and pick the start offset.

        ``force`` uses whatever the file holds (closing a file whose first line never ended).
        """
        assert self.fd is not None
        head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        source = fingerprint_source(head, final=force)
        if source is None:
            return Identified.NOT_YET
        fp = fingerprint(source)
        size = self._stat()
        self.size_seen = size
        result = Identified.READY
        start: int | None = None
        if self.resume is not None and self.resume[1].fingerprint == fp:
            found: tuple[str, Entry] | None = self.resume
        else:
            found = store.find(self.key, self.dev, self.ino, fp)
        self.resume = None
        carry = 0
        if found is not None and found[1].generation >= self.generation:
            old_identity, entry = found
            self.generation = entry.generation
            if entry.offset <= size:
                start = entry.offset
                self.identity = old_identity
                carry = entry.time_ns
                if not carry:  # written by an older version: from now on, like a new file
                    carry = time.time_ns()
                    store.set_time(old_identity, carry)
            else:  # truncated while we were not looking: new content at old offsets
                store.remove(old_identity)
                self.generation += 1
                result = Identified.TRUNCATED
        if start is None:
            start = 0
            if not self.from_head and result is Identified.READY and size:
                start = size
                self._skip_to_newline = os.pread(self.fd, 1, size - 1) != b"\n"
        if self.identity is None:
            # Lines without a time of their own before the file's first timestamped line
            # are timed when the file was first seen (``decoding``): kept in its entry.
            carry = time.time_ns()
            self.identity = file_identity(self.key, self.dev, self.ino, fp, self.generation)
            store.put(self.identity, Entry(self.path, self.lineage, self.key, self.dev,
                                           self.ino, fp, self.generation, start, size,
                                           time_ns=carry))
        self.fingerprint = fp
        self.head = source
        self.tracker = AckTracker(start, carry)
        self.decoder = make_decoder(detect_format(source), self.identity, self.static,
                                    self.config.max_line_bytes, self.multiline, carry)
        self.offset = start
        if self.inherited is not None:
            inherited, self.inherited = self.inherited, None
            self.inherit(inherited.groups, inherited.events, inherited.handoff)
        return result

    def inherit(self, groups: dict[str, Group], events: dict[str | None, Event],
                handoff: Handoff) -> None:
        """Continue the open messages of the previous generation (see ``Handoff``)."""
        if self.decoder is None:
            self.inherited = Inherited(groups, events, handoff)
            return
        self.ready.extend(self.decoder.adopt_pending(groups, events, handoff))

    def reset_truncated(self) -> None:
        """Forget everything read: the inode now holds new content from offset 0."""
        self.generation += 1
        self.identity = None
        self.fingerprint = None
        self.head = b""
        self.decoder = None
        self.tracker = None
        self.offset = 0
        self.from_head = True
        self.eof = False
        self.ready = []
        self._buf = b""
        self._long = None
        self._long_head = b""
        self._skip_to_newline = False

    def drop_incomplete(self) -> int:
        """Forget the incomplete last line (its end can no longer be read); its size."""
        dropped = self.offset - self.consumed()
        self._buf = b""
        self._long = None
        self._long_head = b""
        self.offset -= dropped
        return dropped

    def rewind(self, offset: int, size: int) -> None:
        """Read again from ``offset`` in a copy of ``size`` bytes of this content (found
        after a copytruncate): the incomplete line is dropped, it is read again whole."""
        self.offset = offset
        self.eof = False
        self.replaced = False
        self.size_seen = size
        self._buf = b""
        self._long = None
        self._long_head = b""

    # -- reading --------------------------------------------------------------------------

    def read(self, max_batch: int) -> Iterator[Chunk]:
        """Read one chunk and yield its batches, decoded lazily (one at a time).

        Yields nothing at end of file (``eof`` is then True). Raises ``Truncated``. The
        descriptor is used only before the first yield, so it may be taken away (cap,
        deletion timeout) while a batch is being emitted.
        """
        assert self.decoder is not None and self.fd is not None
        if self.ready:  # inherited events that cannot continue here: ship them first
            ready, self.ready = self.ready, []
            yield self._chunk(ready, self.consumed())
            return
        size = self.observe(check_head=False)  # the watch loop checks it every second
        if self.replaced:
            raise Truncated(self.path)
        if size == self.offset:
            self.eof = True
            return
        data = os.pread(self.fd, min(self.config.read_chunk_bytes, size - self.offset),
                        self.offset)
        if self.head and os.pread(self.fd, len(self.head), 0) != self.head:
            self.replaced = True  # truncated and refilled since ``observe``
            raise Truncated(self.path)
        if not data:
            self.eof = True
            return
        start = self.offset - len(self._buf)
        self.offset += len(data)
        self.bytes_read += len(data)
        self.eof = self.offset >= size
        self.last_data = self.clock()
        if start == 0 and data.startswith(BOM):
            data = data[len(BOM):]
            start = len(BOM)
        yield from self._consume(data, start, max_batch)

    def _chunk(self, records: list[Record], end: int) -> Chunk:
        """The chunk of ``records`` once every line before ``end`` was decoded."""
        decoder = self.decoder
        assert decoder is not None
        safe, carry = decoder.safe_point(end)
        return Chunk(records, safe, self._handoffs(), carry)

    def _handoffs(self) -> list[Handoff]:
        decoder = self.decoder
        if decoder is None or not decoder.done_handoffs:
            return []
        done = list(decoder.done_handoffs)
        decoder.done_handoffs.clear()
        return done

    def _consume(self, data: bytes, start: int, max_batch: int) -> Iterator[Chunk]:
        """Split ``data`` (which follows the incomplete line) and yield decoded batches.

        The incomplete-line state is settled BEFORE the first yield: while a batch is being
        emitted the watch task may give the file up and drop that line (``drop_incomplete``),
        which must not be undone when the generator resumes.
        """
        decoder = self.decoder
        assert decoder is not None
        first: Chunk | None = None
        if self._long is not None or self._skip_to_newline:
            newline = data.find(b"\n")
            if newline < 0:
                if self._long is not None:
                    self._long[1] += len(data)
                return
            if self._long is not None:
                long_start, length = self._long
                length += newline
                head = self._long_head
                self._long = None
                self._long_head = b""
                records = decoder.decode_long(head, length, long_start)
                start = long_start + length + 1
                first = self._chunk(records, start)
            else:  # started at the end of a file in the middle of a line: skip that line
                start = self.offset - len(data) + newline + 1
                self._skip_to_newline = False
                first = Chunk([], start, carry=decoder.carry_ns)
            data = data[newline + 1:]
        # Split the block as read and glue the incomplete line onto its first piece: copying
        # the incomplete line in front of the block, or cutting the block at its last newline,
        # would each copy the whole block again.
        lines = data.split(b"\n")
        del data
        if self._buf:
            lines[0] = self._buf + lines[0]
        rest = lines.pop()
        rest_start = self.offset - len(rest)
        if rest[:1] == b"\0":
            kept = rest.lstrip(b"\0")
            rest_start += len(rest) - len(kept)
            rest = kept
        if len(rest) > self.config.max_line_bytes + LINE_SLACK:
            self._long = [rest_start, len(rest)]
            self._long_head = rest[:self.config.max_line_bytes + LINE_SLACK]
            rest = b""
        self._buf = rest
        if first is not None:
            yield first
        for index in range(0, len(lines), max_batch):
            records, start = decoder.decode(lines[index:index + max_batch], start)
            yield self._chunk(records, start)

    def consumed(self) -> int:
        """Offset up to which every byte went through the decoder."""
        if self._long is not None:
            return self._long[0]
        return self.offset - len(self._buf)

    def flush(self, final: bool, partials: bool = True, events: bool = True) -> Chunk | None:
        """Ship open partial groups and multiline events (each when asked); at close
        (``final``) everything, and a last line without LF: it is complete now."""
        decoder = self.decoder
        if decoder is None:
            return None
        records = self.ready
        self.ready = []
        if partials or final:
            records += decoder.flush_partials()
        if events or final:
            records += decoder.flush_events()
        end = self.consumed()
        if final:
            if self._long is not None:
                start, length = self._long
                records += decoder.decode_long(self._long_head, length, start)
                end = start + length
            elif self._buf:
                records += decoder.decode_long(self._buf, len(self._buf), end)
                end += len(self._buf)
            records += decoder.flush()  # what the last line opened
            self._long = None
            self._long_head = b""
            self._buf = b""
        if not records and not decoder.done_handoffs and not final:
            return None
        return self._chunk(records, end)

    @property
    def pending(self) -> bool:
        """Open partial groups, multiline events or records waiting to be shipped."""
        return bool(self.ready) or (self.decoder is not None and self.decoder.pending)
