"""The on-disk format of a buffer segment (pure functions, no I/O).

A segment is one file holding one chunk::

    header   magic "SHPBUF\\r\\n" (8) | version u16 | flags u16 | crc32 of the first 12 bytes
    record   length u32 | crc32 u32 | payload (length bytes)      ... repeated, append-only

Integers are little-endian. The checksum is CRC-32 (the IEEE/zlib polynomial, computed by
``shipper.compression``, where zlib-ng's and zlib's agree) over the four length bytes and
then the payload, so a damaged length field is caught as surely as a damaged payload. The
header has its own checksum: a header whose checksum holds but whose version is newer than
``VERSION`` was written by a newer shipper and is refused, never rewritten; a header whose
checksum fails is garbage and its records are salvaged. Later versions must keep the first
16 bytes laid out this way.

``scan`` reads every record it can: after a bad record it resynchronises on the next offset
where a whole record verifies, so one flipped byte costs one record, not the segment.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipper.compression import crc32

MAGIC = b"SHPBUF\r\n"
VERSION = 1
HEADER_SIZE = 16
RECORD_OVERHEAD = 8

_HEADER = struct.Struct("<8sHHI")
_RECORD = struct.Struct("<II")
_LENGTH = struct.Struct("<I")
#: Bytes of payload checksummed while looking for the next good record after damage; past
#: this the rest of the segment is given up (quarantined), so a hostile file cannot stall us.
_RESYNC_BUDGET = 64 * 1024 * 1024


class HeaderError(ValueError):
    """The segment header is missing, short, or fails its checksum."""


class NewerFormatError(ValueError):
    """The segment was written by a newer format version than this build reads."""

    def __init__(self, version: int) -> None:
        super().__init__(f"format version {version}, this build reads up to {VERSION}")
        self.version = version


def encode_header(version: int = VERSION, flags: int = 0) -> bytes:
    head = _HEADER.pack(MAGIC, version, flags, 0)[:12]
    return head + _LENGTH.pack(crc32(head))


def read_header(data: bytes | memoryview) -> int:
    """The format version of a segment whose first bytes are ``data``.

    Raises HeaderError for a short or damaged header, NewerFormatError for a newer version.
    """
    if len(data) < HEADER_SIZE:
        raise HeaderError(f"header is {len(data)} bytes, expected {HEADER_SIZE}")
    magic, version, _flags, crc = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise HeaderError("not a buffer segment (bad magic)")
    if crc32(bytes(data[:12])) != crc:
        raise HeaderError("header checksum mismatch")
    if version > VERSION:
        raise NewerFormatError(version)
    if version < 1:
        raise HeaderError(f"invalid format version {version}")
    return int(version)


def frame(payloads: Sequence[bytes]) -> bytes:
    """Records for ``payloads``, ready to append to a segment."""
    parts: list[bytes] = []
    append = parts.append
    pack = _RECORD.pack
    for payload in payloads:
        n = len(payload)
        append(pack(n, crc32(payload, crc32(n.to_bytes(4, "little")))))
        append(payload)
    return b"".join(parts)


def framed_size(payload: bytes) -> int:
    return RECORD_OVERHEAD + len(payload)


@dataclass(slots=True)
class ScanResult:
    """Where the good records of a segment are, and which byte ranges are damaged."""

    spans: list[tuple[int, int]] = field(default_factory=list)  # payload [start, end)
    bad: list[tuple[int, int]] = field(default_factory=list)  # damaged [start, end)

    def payloads(self, data: bytes | memoryview) -> list[bytes]:
        return [bytes(data[a:b]) for a, b in self.spans]

    def lost(self, data: bytes | memoryview) -> tuple[int, bool]:
        """Records in the damaged ranges, and whether that count is exact (``damaged_records``);
        otherwise it is a lower bound."""
        total, exact = 0, True
        for a, b in self.bad:
            n, known = damaged_records(data, a, b)
            total += n
            exact = exact and known
        return total, exact

    @property
    def end(self) -> int:
        """Offset just past the last good record (0 if there is none)."""
        return self.spans[-1][1] if self.spans else 0


def _record_at(data: bytes | memoryview, off: int, size: int) -> bytes | memoryview | None:
    """The payload of a whole, verified record at ``off`` (a slice of ``data``), or None."""
    if size - off < RECORD_OVERHEAD:
        return None
    length, crc = _RECORD.unpack_from(data, off)
    end = off + RECORD_OVERHEAD + length
    if end > size:
        return None
    payload = data[off + RECORD_OVERHEAD:end]
    if crc32(payload, crc32(data[off:off + 4])) != crc:
        return None
    return payload


def _resync(data: bytes | memoryview, off: int, size: int) -> int:
    """The offset of the next verified record after a bad one at ``off`` (or ``size``).

    First trust the damaged record's length (a flipped payload byte leaves it intact); else
    look for candidates whose length field has a zero high byte (records < 16 MiB), which in
    text payloads are rare, so the search jumps instead of checking every offset.
    """
    if size - off >= RECORD_OVERHEAD:
        (length,) = _LENGTH.unpack_from(data, off)
        nxt = off + RECORD_OVERHEAD + length
        if nxt == size or (off < nxt < size and _record_at(data, nxt, size) is not None):
            return nxt
    raw = bytes(data) if isinstance(data, memoryview) else data
    budget = _RESYNC_BUDGET
    q = off + 3
    while budget > 0:
        q = raw.find(b"\x00", q + 1)
        if q < 0:
            return size
        p = q - 3
        if p <= off:
            continue
        if size - p < RECORD_OVERHEAD:
            return size
        (length,) = _LENGTH.unpack_from(raw, p)
        if p + RECORD_OVERHEAD + length > size:
            continue
        budget -= length + RECORD_OVERHEAD
        if _record_at(raw, p, size) is not None:
            return p
    return size


def damaged_records(data: bytes | memoryview, start: int, end: int) -> tuple[int, bool]:
    """How many records the damaged byte range ``[start, end)`` held: ``(count, exact)``.

    The frames' length fields are followed from ``start``: when they lead exactly to ``end``
    (a flipped payload byte, a bad checksum) each frame is one lost record and the count is
    exact. When they do not (a damaged length, garbage, a segment cut inside a record) the
    count is a lower bound: at least the frames walked, and at least one. A segment cut
    short loses the records after the cut with no trace, so nobody can count those.
    """
    size = len(data)
    count, off = 0, start
    while off < end:
        if end - off < RECORD_OVERHEAD:
            return max(count, 1), False
        (length,) = _LENGTH.unpack_from(data, off)
        nxt = off + RECORD_OVERHEAD + length
        if nxt > end or nxt > size:
            return count + 1, False
        count += 1
        off = nxt
    return max(count, 1), count > 0


def verified_payloads(data: bytes, start: int = HEADER_SIZE) -> list[bytes] | None:
    """Every payload from ``start`` on if every record verifies, else None (then ``scan``).

    The common case of reading a segment back: one pass that checks and copies each payload
    once, where ``scan`` plus ``ScanResult.payloads`` slice and copy it twice.
    """
    out: list[bytes] = []
    append = out.append
    record_at = _record_at
    size = len(data)
    off = start
    while off < size:
        payload = record_at(data, off, size)
        if payload is None:
            return None
        append(payload)  # type: ignore[arg-type]  # a slice of bytes is bytes
        off += RECORD_OVERHEAD + len(payload)
    return out


def scan(data: bytes | memoryview, start: int = HEADER_SIZE) -> ScanResult:
    """Verify every record from ``start`` to the end of ``data``."""
    result = ScanResult()
    size = len(data)
    off = start
    while off < size:
        payload = _record_at(data, off, size)
        if payload is not None:
            end = off + RECORD_OVERHEAD + len(payload)
            result.spans.append((off + RECORD_OVERHEAD, end))
            off = end
            continue
        nxt = _resync(data, off, size)
        result.bad.append((off, nxt))
        off = nxt
    return result
