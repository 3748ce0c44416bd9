"""Reading what a forward server says (spec §1.5, §1.7). Pure: no I/O, no clock.

``parse_helo`` and ``check_pong`` implement the client's side of the handshake, including
Fluentd's "same hostname" rejection and a constant-time digest comparison. ``classify`` turns
the acks that arrived for one attempt into an Outcome: a message's payloads are DELIVERED
when its chunk was acked, RETRY otherwise (ack timeout, connection lost, ack mismatch), so
delivery resends only the messages that were not acknowledged.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence
from typing import Any

from outputs.forward.request import Message, client_digest
from shipper.errors import OutputCredentialsError, OutputRetryableError
from shipper.protocols import ItemError, Outcome, Status

# Forward has no HTTP status; a refused handshake reports 401 so health says "credentials".
AUTH_FAILED_STATUS = 401


def _text(value: Any) -> str:
    """Printable text of a server's string (undecodable bytes become U+FFFD)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _raw(value: Any) -> Any:
    """The bytes of a nonce or salt sent as msgpack bin (Fluentd) or str (Fluent Bit: random
    bytes, decoded by the reader with surrogateescape, so this gives them back exactly)."""
    return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value


def parse_helo(message: Any) -> tuple[bytes, bytes, bool]:
    """``(nonce, auth salt, keepalive)`` of a HELO; raises when it is not one."""
    if not isinstance(message, list) or len(message) != 2 or message[0] != "HELO" \
            or not isinstance(message[1], dict):
        raise OutputRetryableError(f"expected HELO from the server, got {message!r:.100}")
    options = message[1]
    nonce = options.get("nonce", b"")
    auth = options.get("auth", b"")
    nonce, auth = _raw(nonce), _raw(auth)
    if not isinstance(nonce, bytes) or not nonce or not isinstance(auth, bytes):
        raise OutputRetryableError("HELO without a usable nonce")
    return nonce, auth, bool(options.get("keepalive", True))


def check_pong(message: Any, salt: str, nonce: bytes, shared_key: str,
               self_hostname: str) -> str:
    """Validate PONG; returns the server's hostname. Raises OutputCredentialsError when the
    server refused us or cannot prove it knows the key."""
    if not isinstance(message, list) or len(message) != 5 or message[0] != "PONG":
        raise OutputRetryableError(f"expected PONG from the server, got {message!r:.100}")
    _, ok, reason, hostname, digest = message
    if ok is not True:
        raise OutputCredentialsError(f"authentication failed: {_text(reason)}")
    hostname = _text(hostname)
    if hostname == self_hostname:
        raise OutputCredentialsError(
            "same hostname between input and output: invalid configuration "
            "(set self_hostname to a different name)")
    expected = client_digest(salt, hostname, nonce, shared_key)
    if not hmac.compare_digest(expected.encode(), _text(digest).encode()):
        raise OutputCredentialsError("shared key mismatch: the server does not know our key")
    return hostname


def ack_of(message: Any) -> Any:
    """The chunk id an ack message names; raises on anything else a server may send."""
    if isinstance(message, dict) and "ack" in message:
        return message["ack"]
    if isinstance(message, list) and message and message[0] == "HELO":
        raise OutputCredentialsError(
            "the server requires the shared-key handshake: set shared_key")
    raise OutputRetryableError(f"unexpected reply from the server: {message!r:.100}")


def classify(messages: Sequence[Message], acked: Collection[str], n_payloads: int,
             error: ItemError | None = None) -> Outcome:
    """Outcome of one attempt: acked messages delivered, the others retried."""
    statuses = [Status.RETRY] * n_payloads
    errors: dict[int, ItemError] = {}
    missing = error or ItemError(0, "ack_timeout", "no ack for the chunk in time")
    any_retry = False
    for message in messages:
        ok = message.chunk is None or message.chunk in acked
        for i in message.indices:
            if ok:
                statuses[i] = Status.DELIVERED
            else:
                errors[i] = missing
                any_retry = True
    http_status = None
    if any_retry and error is not None and error.status == AUTH_FAILED_STATUS:
        http_status = AUTH_FAILED_STATUS
    return Outcome(statuses, errors, None, 0, http_status)


def failed(n_payloads: int, error: ItemError) -> Outcome:
    """Every payload to be retried (nothing was sent, or nothing can be known)."""
    status = AUTH_FAILED_STATUS if error.status == AUTH_FAILED_STATUS else None
    return Outcome.all(n_payloads, Status.RETRY, error, http_status=status)
