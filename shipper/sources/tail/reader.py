"""Reading one open file (one inode): chunks in, batches of records out.

The reader owns the descriptor, the read offset, the incomplete last line, the identity and
the decoder of one file incarnation. It never decides about rotation, deletion or emission
(the source does); it only answers "what is new in this inode".

* Big chunks (``read_chunk_bytes``) are split on LF in bulk; the bytes after the last LF wait
  for the next read, so a record is never built from half a line.
* A physical line longer than ``max_line_bytes + LINE_SLACK`` is not held in memory: its
  head is kept, the rest only counted until its LF arrives (then shipped truncated).
* The identity needs the first line (``identity``); until it is complete nothing is read.
  Then the checkpoint store decides the start offset.
* ``offset`` counts bytes consumed from the file; the safe checkpoint of every batch comes
  from the decoder (never inside a partial group) and is at most the end of the last
  complete line.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from shipper.record import Record
from shipper.sources.tail.checkpoints import CheckpointStore, Entry
from shipper.sources.tail.config import TailConfig
from shipper.sources.tail.formats import Decoder, detect_format, make_decoder
from shipper.sources.tail.identity import (
    FINGERPRINT_BYTES,
    file_identity,
    fingerprint,
    fingerprint_source,
)
from shipper.sources.tail.paths import FileMeta
from shipper.sources.tail.progress import AckTracker

LINE_SLACK = 64 * 1024  # room for the CRI prefix / JSON escaping around a max-size message


class Identified(enum.Enum):
    NOT_YET = 0  # first line incomplete: try again later
    READY = 1
    TRUNCATED = 2  # ready, but the saved offset was past the end: restarted at 0


class Truncated(Exception):
    """The file shrank below the read offset (truncated in place)."""


@dataclass(slots=True)
class Chunk:
    """Output of one read: records to emit and the offset safe once they are acknowledged."""

    records: list[Record]
    safe_offset: int


class FileReader:
    """State of one file incarnation being read."""

    def __init__(self, path: str, fd: int, st: os.stat_result, meta: FileMeta,
                 config: TailConfig, from_head: bool, real_path: str | None = None,
                 key: str | None = None) -> None:
        """``path`` is the discovered path (it names the records); ``real_path`` the file
        actually opened when it differs (a rotated sibling); ``key`` overrides the identity
        key (a sibling keeps the key of the path it was rotated away from)."""
        self.path = path
        self.real_path = real_path or os.path.realpath(path)
        self.fd = fd
        self.dev = st.st_dev
        self.ino = st.st_ino
        self.meta = meta
        self.static = meta.static_fields()
        self.key = key or meta.container_id or self.real_path
        self.seen_at = time.time()  # wall clock: last time ``path`` resolved to this inode
        self.config = config
        self.from_head = from_head
        self.identity: str | None = None
        self.generation = 0
        self.decoder: Decoder | None = None
        self.tracker: AckTracker | None = None
        self.offset = 0  # next byte to read
        self.eof = False
        self.bytes_read = 0  # since the owner last collected it
        self.last_data = time.monotonic()
        self.draining_since: float | None = None  # set when rotated away or deleted
        self.retired = False  # closed for good (drained): its checkpoint entry can go
        self.closed = False
        self._buf = b""  # incomplete last line; ends at ``offset``
        self._long: list[int] | None = None  # [start, length so far] of an over-long line
        self._long_head = b""
        self._skip_to_newline = False

    # -- identity -------------------------------------------------------------------------

    def identify(self, store: CheckpointStore, force: bool = False) -> Identified:
        """Compute the identity once the first line is complete and pick the start offset.

        ``force`` uses whatever the file holds (closing a file whose first line never ended).
        """
        head = os.pread(self.fd, FINGERPRINT_BYTES, 0)
        source = fingerprint_source(head)
        if source is None:
            if not force or not head:
                return Identified.NOT_YET
            source = head
        fp = fingerprint(source)
        size = os.fstat(self.fd).st_size
        result = Identified.READY
        start: int | None = None
        found = store.find(self.key, self.dev, self.ino, fp)
        if found is not None and found[1].generation >= self.generation:
            old_identity, entry = found
            self.generation = entry.generation
            if entry.offset <= size:
                start = entry.offset
            else:  # truncated while we were not looking: new content at old offsets
                store.remove(old_identity)
                self.generation += 1
                result = Identified.TRUNCATED
        if start is None:
            start = 0
            if not self.from_head and result is Identified.READY and size:
                start = size
                self._skip_to_newline = os.pread(self.fd, 1, size - 1) != b"\n"
        self.identity = file_identity(self.key, self.dev, self.ino, fp, self.generation)
        store.put(self.identity, Entry(self.path, self.real_path, self.key, self.dev, self.ino,
                                       fp, self.generation, start))
        self.tracker = AckTracker(start)
        self.decoder = make_decoder(detect_format(source), self.identity, self.static,
                                    self.config.max_line_bytes)
        self.offset = start
        return result

    def reset_truncated(self) -> None:
        """Forget everything read: the inode now holds new content from offset 0."""
        self.generation += 1
        self.identity = None
        self.decoder = None
        self.tracker = None
        self.offset = 0
        self.from_head = True
        self.eof = False
        self._buf = b""
        self._long = None
        self._long_head = b""
        self._skip_to_newline = False

    # -- reading --------------------------------------------------------------------------

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self, max_batch: int) -> Iterator[Chunk]:
        """Read one chunk and yield its batches, decoded lazily (one at a time).

        Yields nothing at end of file (``eof`` is then True). Raises ``Truncated``.
        """
        assert self.decoder is not None and not self.closed
        size = self.size()
        if size < self.offset:
            raise Truncated(self.path)
        if size == self.offset:
            self.eof = True
            return
        data = os.pread(self.fd, min(self.config.read_chunk_bytes, size - self.offset),
                        self.offset)
        if not data:
            self.eof = True
            return
        start = self.offset - len(self._buf)
        self.offset += len(data)
        self.bytes_read += len(data)
        self.eof = self.offset >= size
        self.last_data = time.monotonic()
        yield from self._consume(data, start, max_batch)

    def _consume(self, data: bytes, start: int, max_batch: int) -> Iterator[Chunk]:
        decoder = self.decoder
        assert decoder is not None
        if self._long is not None or self._skip_to_newline:
            newline = data.find(b"\n")
            if newline < 0:
                if self._long is not None:
                    self._long[1] += len(data)
                return
            if self._long is not None:
                long_start, length = self._long
                length += newline
                records = decoder.decode_long(self._long_head, length, long_start,
                                              time.time_ns())
                start = long_start + length + 1
                self._long = None
                self._long_head = b""
                yield Chunk(records, decoder.safe_offset(start))
            else:  # started at the end of a file in the middle of a line: skip that line
                start = self.offset - len(data) + newline + 1
                self._skip_to_newline = False
                yield Chunk([], start)
            data = data[newline + 1:]
        buf = self._buf + data if self._buf else data
        last = buf.rfind(b"\n")
        if last >= 0:
            rest = buf[last + 1:]
            lines = buf[:last].split(b"\n")
            del buf
            for index in range(0, len(lines), max_batch):
                records, start = decoder.decode(lines[index:index + max_batch], start,
                                                time.time_ns())
                yield Chunk(records, decoder.safe_offset(start))
        else:
            rest = buf
        if len(rest) > self.config.max_line_bytes + LINE_SLACK:
            self._long = [start, len(rest)]
            self._long_head = rest[:self.config.max_line_bytes + LINE_SLACK]
            rest = b""
        self._buf = rest

    def consumed(self) -> int:
        """Offset up to which every byte went through the decoder."""
        if self._long is not None:
            return self._long[0]
        return self.offset - len(self._buf)

    def flush(self, final: bool) -> Chunk | None:
        """Ship open partial groups (and at close, a last line without LF).

        ``final``: the file is being closed, so an incomplete last line is complete now.
        """
        decoder = self.decoder
        if decoder is None:
            return None
        records = decoder.flush()
        end = self.consumed()
        if final:
            now_ns = time.time_ns()
            if self._long is not None:
                start, length = self._long
                records += decoder.decode_long(self._long_head, length, start, now_ns)
                end = start + length
            elif self._buf:
                records += decoder.decode_long(self._buf, len(self._buf), end, now_ns)
                end += len(self._buf)
            self._long = None
            self._long_head = b""
            self._buf = b""
        if not records and not final:
            return None
        return Chunk(records, end)  # no group is open any more: ``end`` is safe

    @property
    def has_partials(self) -> bool:
        return self.decoder is not None and bool(self.decoder.partials)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass
