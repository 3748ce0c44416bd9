"""File identity and deterministic document ids (reliability spec §7, "Checkpoints", "_id").

A file is identified by (container id from its path, or its resolved real path) + st_dev +
st_ino of the resolved target + a hash of its first line (at most 1 KiB). Inodes are reused
after deletion and many files start with the same header, so neither alone is enough
(fluent-bit#8025, vector#5833); together they make a new file, or a reused inode, never map
onto an old checkpoint or old document ids. Runtime lines start with a nanosecond timestamp,
so first lines of different files practically never collide.

``generation`` counts in-place truncations of one inode: after a truncation the same offsets
hold new lines, and the new lines must not get the old ids (``create`` would answer 409 and
the new lines would be counted as delivered while never indexed). Generation 0 adds nothing
to the hash.

``doc_id = f"{identity}-{offset:x}"`` where offset is where the record's first physical line
starts: a plain concatenation (no hashing per record), stable across restarts and re-reads.
"""

from __future__ import annotations

from hashlib import blake2b

FINGERPRINT_BYTES = 1024


def fingerprint_source(head: bytes, final: bool = False) -> bytes | None:
    """The bytes the fingerprint hashes: the first line with its LF, capped at 1 KiB.

    ``head`` is the start of the file (at least ``FINGERPRINT_BYTES`` if the file has that
    many). None while the first line is still incomplete and shorter than the cap: the
    identity is computed only once it cannot change any more. ``final`` (a file that will
    not grow: rotated, compressed, being closed) takes an incomplete first line as it is;
    None then only for an empty file.
    """
    newline = head.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        return head[: newline + 1]
    if len(head) >= FINGERPRINT_BYTES:
        return head[:FINGERPRINT_BYTES]
    if final and head:
        return head
    return None


def fingerprint(first_line: bytes) -> str:
    """Hex hash of the first line (stored in checkpoints to verify a match)."""
    return blake2b(first_line, digest_size=16).hexdigest()


def file_identity(key: str, dev: int, ino: int, fingerprint_hex: str, generation: int = 0) -> str:
    """16 hex chars naming one incarnation of one file."""
    text = f"{key}\0{dev}\0{ino}\0{fingerprint_hex}"
    if generation:
        text += f"\0{generation}"
    return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()


def doc_id(identity: str, offset: int) -> str:
    """Document id of the record whose first physical line starts at ``offset``."""
    return f"{identity}-{offset:x}"
