"""Building forward requests (spec §1.3-§1.5, §1.7): payloads, PackedForward messages, PING.

A record becomes one payload: its msgpack tag followed by its msgpack entry
``[EventTime, record]``. The tag has to travel with the record because one forward message
carries one tag, and a chunk of the buffer mixes tags. ``build_messages`` groups a chunk's
payloads by tag into PackedForward messages (entries as ``bin``, option ``size``, ``chunk``,
and ``compressed: gzip`` when asked).

The ``chunk`` id is a digest of the tag and entries, not a random number: delivery resends the
very same payloads after a lost ack, so the resend carries the same chunk id and a shipper
aggregator maps it to the same documents (409 instead of a duplicate). Two chunks can only
share an id when they hold the same records with the same nanosecond times.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from shipper.compression import gzip_fast
from shipper.record import Record

NS = 1_000_000_000
_UINT32 = 1 << 32


def event_time(time_ns: int) -> msgpack.ExtType | int:
    """EventTime ext (fixext8: uint32 seconds, uint32 nanoseconds) when it fits, else seconds."""
    sec, nsec = divmod(time_ns, NS)
    if 0 <= sec < _UINT32:
        return msgpack.ExtType(0, sec.to_bytes(4, "big") + nsec.to_bytes(4, "big"))
    return sec


def _plain(value: Any) -> Any:
    """A packable copy of what msgpack refused: odd types as text, lone surrogates escaped,
    integers beyond 64 bits as text. A record is shipped changed rather than not at all."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_plain(k) if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**64 else str(value)
    if value is None or isinstance(value, bool | float | bytes):
        return value
    return str(value)


class EntryEncoder:
    """Turns records into payloads; caches the packed form of recent tags."""

    __slots__ = ("_id_key", "_packer", "_tags", "_time_as_integer")

    def __init__(self, time_as_integer: bool = False, id_key: str | None = None) -> None:
        self._packer = msgpack.Packer(use_bin_type=True)
        self._tags: dict[str, bytes] = {}
        self._time_as_integer = time_as_integer
        self._id_key = id_key

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        pack = self._packer.pack
        tags = self._tags
        id_key = self._id_key
        out: list[bytes] = []
        for record in records:
            tag = tags.get(record.tag)
            if tag is None:
                if len(tags) > 4096:
                    tags.clear()
                tag = tags[record.tag] = pack(record.tag)
            t = record.time_ns // NS if self._time_as_integer else event_time(record.time_ns)
            body = record.body
            if id_key is not None and record.doc_id is not None:
                body = {**body, id_key: record.doc_id}  # a copy: bodies may be shared
            try:
                entry = pack([t, body])
            except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
                self._packer.reset()
                entry = pack([t, _plain(body)])
            out.append(tag + entry)
        return out


def split_payload(payload: bytes) -> tuple[bytes, bytes]:
    """``(packed tag, packed entry)`` of one payload."""
    b0 = payload[0]
    if 0xA0 <= b0 <= 0xBF:
        end = 1 + (b0 & 0x1F)
    elif b0 == 0xD9:
        end = 2 + payload[1]
    elif b0 == 0xDA:
        end = 3 + int.from_bytes(payload[1:3], "big")
    elif b0 == 0xDB:
        end = 5 + int.from_bytes(payload[1:5], "big")
    else:
        raise ValueError(f"payload does not start with a msgpack string (0x{b0:02x})")
    if end >= len(payload):
        raise ValueError("payload has no entry after its tag")
    return payload[:end], payload[end:]


def decode_payload(payload: bytes) -> dict[str, Any]:
    """Tag, time and record of a payload, for the dead-letter store."""
    tag, entry = split_payload(payload)
    time_value, record = msgpack.unpackb(entry, raw=False, strict_map_key=False)
    if isinstance(time_value, msgpack.ExtType):
        sec = int.from_bytes(time_value.data[:4], "big")
        nsec = int.from_bytes(time_value.data[4:8], "big")
        time_value = sec + nsec / NS
    return {"tag": msgpack.unpackb(tag, raw=False), "time": time_value, "record": record}


def _bin_header(n: int) -> bytes:
    if n < 0x100:
        return b"\xc4" + n.to_bytes(1, "big")
    if n < 0x10000:
        return b"\xc5" + n.to_bytes(2, "big")
    return b"\xc6" + n.to_bytes(4, "big")


@dataclass(slots=True)
class Message:
    """One PackedForward request and the payload positions it carries."""

    indices: list[int]
    data: bytes = b""
    chunk: str | None = None
    entries: list[bytes] = field(default_factory=list)


def chunk_id(tag: bytes, entries: bytes) -> str:
    """Base64 of a 128-bit digest of the message content (see the module docstring)."""
    digest = hashlib.blake2b(tag, digest_size=16)
    digest.update(entries)
    return base64.b64encode(digest.digest()).decode("ascii")


def build_messages(payloads: Sequence[bytes], compress: bool = False,
                   require_ack: bool = True) -> list[Message]:
    """PackedForward messages for ``payloads``, one per tag, in order of first appearance."""
    groups: dict[bytes, Message] = {}
    for i, payload in enumerate(payloads):
        tag, entry = split_payload(payload)
        message = groups.get(tag)
        if message is None:
            message = groups[tag] = Message([])
        message.indices.append(i)
        message.entries.append(entry)
    messages = []
    for tag, message in groups.items():
        entries = b"".join(message.entries)
        option: dict[str, Any] = {"size": len(message.indices)}
        if require_ack:
            message.chunk = option["chunk"] = chunk_id(tag, entries)
        if compress:
            entries = gzip_fast(entries)
            option["compressed"] = "gzip"
        message.data = (b"\x93" + tag + _bin_header(len(entries)) + entries
                        + msgpack.packb(option, use_bin_type=True))
        message.entries = []
        messages.append(message)
    return messages


def client_digest(salt: str, hostname: str, nonce: bytes, shared_key: str) -> str:
    """``hex(SHA512(salt + hostname + nonce + shared_key))`` (spec §1.7)."""
    h = hashlib.sha512(salt.encode())
    h.update(hostname.encode())
    h.update(nonce)
    h.update(shared_key.encode())
    return h.hexdigest()


def ping(hostname: str, nonce: bytes, auth_salt: bytes, shared_key: str, username: str,
         password: str, salt: str | None = None) -> tuple[bytes, str]:
    """The PING message and the shared-key salt it used (PONG is checked against it)."""
    salt = salt if salt is not None else os.urandom(16).hex()
    digest = client_digest(salt, hostname, nonce, shared_key)
    if auth_salt:
        h = hashlib.sha512(auth_salt)
        h.update(username.encode())
        h.update(password.encode())
        user, password_digest = username, h.hexdigest()
    else:
        user, password_digest = "", ""
    message = ["PING", hostname, salt, digest, user, password_digest]
    return msgpack.packb(message, use_bin_type=True), salt
