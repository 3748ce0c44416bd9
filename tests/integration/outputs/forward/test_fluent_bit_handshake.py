"""The forward output authenticates to a server that speaks Fluent Bit's in_forward handshake.

Fluent Bit's in_forward packs the HELO nonce and user-auth salt as msgpack *str* values that
hold 16 random bytes (usually not UTF-8), and no ``keepalive`` option; Fluentd packs them as
*bin*. The server below writes that HELO byte for byte, checks the PING the way in_forward
does (shared-key digest over salt + hostname + the raw nonce + key; password digest over the
raw 16-byte salt + username + password), answers PONG, and acks the chunk.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest

from outputs.forward import ForwardOutput
from outputs.forward.config import ForwardOutputConfig, ForwardServer
from shipper.errors import OutputCredentialsError
from shipper.metrics import Metrics
from shipper.protocols import Status
from shipper.record import Record

NS = 1_000_000_000
KEY = "s3cret-key"
SERVER_NAME = "fluent-bit-aggregator"
# Not UTF-8 (0xff never is; 0xc3 0x28 is a broken two-byte sequence).
NONCE = bytes.fromhex("ff00c328a0a1e2829f01fe7f80c0d9aa")
SALT = bytes.fromhex("c328fffe00018081e0a0c1bf7f10d3aa")


def fluent_bit_helo(nonce: bytes, salt: bytes) -> bytes:
    """in_forward's HELO: fixarray 2, fixstr "HELO", fixmap 2 {"nonce": str16B, "auth": str16B}."""
    assert len(nonce) == 16 and len(salt) == 16
    return (b"\x92" + b"\xa4HELO" + b"\x82"
            + b"\xa5nonce" + bytes([0xa0 | len(nonce)]) + nonce
            + b"\xa4auth" + bytes([0xa0 | len(salt)]) + salt)


def fluentd_helo(nonce: bytes, salt: bytes) -> bytes:
    """The same options as msgpack bin (Fluentd's shape), with keepalive."""
    return msgpack.packb(["HELO", {"nonce": nonce, "auth": salt, "keepalive": True}],
                         use_bin_type=True)


def sha512_hex(*parts: bytes) -> str:
    h = hashlib.sha512()
    for p in parts:
        h.update(p)
    return h.hexdigest()


@dataclass
class FluentBitLikeServer:
    """One-connection-at-a-time forward server with in_forward's security handshake."""

    helo: bytes
    users: dict[str, str] = field(default_factory=dict)
    pings: list[list[Any]] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> FluentBitLikeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        unpacker = msgpack.Unpacker(raw=True)  # bytes in, bytes compared: no decoding guess

        async def next_message() -> Any:
            async with asyncio.timeout(5):
                while True:
                    for obj in unpacker:
                        return obj
                    data = await reader.read(65536)
                    if not data:
                        raise ConnectionError("client closed")
                    unpacker.feed(data)

        try:
            writer.write(self.helo)
            await writer.drain()
            ping = await next_message()
            self.pings.append(ping)
            reason = self._check_ping(ping)
            if reason:
                self.refused.append(reason)
                writer.write(msgpack.packb(["PONG", False, reason, SERVER_NAME, ""]))
                await writer.drain()
                return
            shared_salt = ping[2]
            digest = sha512_hex(shared_salt, SERVER_NAME.encode(), NONCE, KEY.encode())
            writer.write(msgpack.packb(["PONG", True, "", SERVER_NAME, digest]))
            await writer.drain()
            while True:
                message = await next_message()
                tag, entries, option = message[0], message[1], message[2]
                unpacker_entries = msgpack.Unpacker(raw=False, strict_map_key=False)
                unpacker_entries.feed(entries)
                self.records.extend((tag, entry) for entry in unpacker_entries)
                writer.write(msgpack.packb({"ack": option[b"chunk"]}))
                await writer.drain()
        except (ConnectionError, TimeoutError, IndexError):
            pass
        finally:
            writer.close()

    def _check_ping(self, ping: list[Any]) -> str:
        """in_forward's checks: a 6-element PING, the shared-key digest, then the user."""
        if len(ping) != 6 or ping[0] != b"PING":
            return "malformed PING"
        _, hostname, shared_salt, digest, username, password_digest = ping
        if digest.decode() != sha512_hex(shared_salt, hostname, NONCE, KEY.encode()):
            return "shared_key mismatch"
        if self.users:
            password = self.users.get(username.decode())
            if password is None or password_digest.decode() != sha512_hex(
                    SALT, username, password.encode()):
                return "username/password mismatch"
        return ""


def output(port: int, **settings: object) -> ForwardOutput:
    config = ForwardOutputConfig(  # type: ignore[arg-type]
        servers=[ForwardServer("127.0.0.1", port)], heartbeat_type="none",
        connect_timeout_secs=3.0, ack_response_timeout_secs=3.0, self_hostname="node-1",
        **settings)
    return ForwardOutput("fwd-out", config, Metrics())


def records(n: int) -> list[Record]:
    return [Record({"log": f"line {i}"}, 1_700_000_000 * NS + i, "app.log") for i in range(n)]


def test_the_test_helo_is_fluent_bits_byte_shape() -> None:
    helo = fluent_bit_helo(NONCE, SALT)
    assert helo == (bytes.fromhex("92a448454c4f82a56e6f6e6365b0") + NONCE
                    + bytes.fromhex("a461757468b0") + SALT)
    assert msgpack.unpackb(helo, raw=True) == [b"HELO", {b"nonce": NONCE, b"auth": SALT}]
    with pytest.raises(UnicodeDecodeError):  # what broke the output's decoder
        msgpack.unpackb(helo, raw=False)


@pytest.mark.parametrize("shape", ["fluent-bit-str", "fluentd-bin"])
async def test_shared_key_and_user_auth_against_both_helo_shapes(shape: str) -> None:
    helo = (fluent_bit_helo if shape == "fluent-bit-str" else fluentd_helo)(NONCE, SALT)
    async with FluentBitLikeServer(helo, users={"agent": "pa55"}) as srv:
        out = output(srv.port, shared_key=KEY, username="agent", password="pa55")
        await out.start()
        outcome = await out.send(out.encode(records(3)))
        assert outcome.statuses == [Status.DELIVERED] * 3, outcome.errors
        assert srv.refused == []
        assert [entry[1]["log"] for _, entry in srv.records] == ["line 0", "line 1", "line 2"]
        await out.close()


async def test_a_wrong_key_is_still_refused_with_a_str_nonce() -> None:
    async with FluentBitLikeServer(fluent_bit_helo(NONCE, SALT)) as srv:
        out = output(srv.port, shared_key="not-the-key")
        with pytest.raises(OutputCredentialsError, match="shared_key mismatch"):
            await out.start()
        assert srv.refused == ["shared_key mismatch"]
        await out.close()
