"""Server side of the forward handshake: HELO, PING check, PONG (spec §1.7).

Pure functions and one small class, no I/O: the connection writes what these return. Digests
are lower-case hex SHA-512 of plain byte concatenations in the spec's order, and every
comparison of a secret-derived value is constant-time (``hmac.compare_digest``). A failed
PING gets ``["PONG", false, reason, "", ""]`` and the connection is then closed by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Any

import msgpack

from shipper.sources.forward.config import ForwardClient, ForwardSecurity

NONCE_BYTES = 16


def _b(value: str | bytes) -> bytes:
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def hexdigest(*parts: str | bytes) -> str:
    """``hex(SHA512(part0 + part1 + ...))`` as the handshake defines it."""
    h = hashlib.sha512()
    for part in parts:
        h.update(_b(part))
    return h.hexdigest()


def helo(nonce: bytes, auth_salt: bytes, keepalive: bool = True) -> bytes:
    """``["HELO", {"nonce": bin, "auth": bin, "keepalive": bool}]`` (one write: some clients
    decode HELO from a single read)."""
    return msgpack.packb(["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": keepalive}],
                         use_bin_type=True)


def pong(ok: bool, reason: str, server_hostname: str, digest: str) -> bytes:
    return msgpack.packb(["PONG", ok, reason, server_hostname, digest], use_bin_type=True)


@dataclass(frozen=True, slots=True)
class PingResult:
    """What to answer to a PING: the PONG bytes, and whether the client is in."""

    ok: bool
    reason: str
    reply: bytes
    client_hostname: str = ""


class ServerHandshake:
    """One connection's handshake state: the nonce and auth salt it sent in HELO."""

    def __init__(self, security: ForwardSecurity, peer_ip: str,
                 nonce: bytes | None = None, auth_salt: bytes | None = None) -> None:
        self.security = security
        self.peer_ip = peer_ip
        self.nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        self.auth_salt = auth_salt if auth_salt is not None else os.urandom(NONCE_BYTES)
        self.hostname = security.self_hostname or socket.gethostname()

    def helo(self) -> bytes:
        return helo(self.nonce, self.auth_salt)

    def _fail(self, reason: str) -> PingResult:
        return PingResult(False, reason, pong(False, reason, "", ""))

    def check_ping(self, message: Any) -> PingResult:
        """Validate a decoded PING message and build the PONG."""
        if (not isinstance(message, list | tuple) or len(message) != 6
                or message[0] != "PING"):
            return self._fail("invalid ping message")
        _, hostname, salt, digest, username, password_digest = message
        # Some clients (fluent-logger for Node.js) send nil when no user is configured.
        username = b"" if username is None else username
        password_digest = b"" if password_digest is None else password_digest
        if not (isinstance(hostname, str | bytes) and isinstance(salt, str | bytes)
                and isinstance(digest, str | bytes) and isinstance(username, str | bytes)
                and isinstance(password_digest, str | bytes)):
            return self._fail("invalid ping message")
        client = self._client_entry()
        if client is None and not self.security.allow_anonymous_source:
            return self._fail(f"anonymous source host '{self.peer_ip}' denied")
        shared_key = (client.shared_key if client is not None and client.shared_key
                      else self.security.shared_key)
        expected = hexdigest(salt, hostname, self.nonce, shared_key)
        if not hmac.compare_digest(expected.encode(), _b(digest)):
            return self._fail("shared_key mismatch")
        if self.security.user_auth and not self._user_ok(
                _b(username), _b(password_digest), client):
            return self._fail("username/password mismatch")
        server_digest = hexdigest(salt, self.hostname, self.nonce, shared_key)
        name = hostname if isinstance(hostname, str) else hostname.decode("utf-8", "replace")
        return PingResult(True, "", pong(True, "", self.hostname, server_digest), name)

    def _client_entry(self) -> ForwardClient | None:
        try:
            address = ipaddress.ip_address(self.peer_ip.split("%", 1)[0])
        except ValueError:
            return None
        for client in self.security.clients:
            network = ipaddress.ip_network(client.network, strict=False)
            if address.version == network.version and address in network:
                return client
            mapped = getattr(address, "ipv4_mapped", None)
            if mapped is not None and network.version == 4 and mapped in network:
                return client
        return None

    def _user_ok(self, username: bytes, password_digest: bytes,
                 client: ForwardClient | None) -> bool:
        allowed = {u.encode() for u in client.users} if client is not None and client.users \
            else None
        ok = False
        for user in self.security.users:
            name = user.username.encode()
            expected = hexdigest(self.auth_salt, name, user.password).encode()
            # Compare every entry, so the time taken does not reveal which user exists.
            match = hmac.compare_digest(name, username) & hmac.compare_digest(
                expected, password_digest)
            if match and (allowed is None or name in allowed):
                ok = True
        return ok
