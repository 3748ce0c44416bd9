"""Handshake replies and ack classification are pure and follow the spec."""

from __future__ import annotations

import msgpack
import pytest

from outputs.forward.request import Message
from outputs.forward.response import ack_of, check_pong, classify, failed, parse_helo
from shipper.errors import OutputCredentialsError, OutputRetryableError
from shipper.protocols import ItemError, Status

NONCE = bytes(range(16))
SALT = "0123456789abcdef0123456789abcdef"
PONG_DIGEST = ("3389a63bef56054281d75fb7b05965b0d1b1ea9eba25b4594ed8e06a02e725af"
               "1fbf401cdbe697423c388ac1948566570a6f592284a536370ca36a5ccf88cbbd")


def test_helo_gives_nonce_auth_and_keepalive() -> None:
    assert parse_helo(["HELO", {"nonce": NONCE, "auth": b"", "keepalive": False}]) == (
        NONCE, b"", False)
    with pytest.raises(OutputRetryableError):
        parse_helo({"ack": "x"})


def test_helo_nonce_and_salt_sent_as_str_of_random_bytes_come_back_exactly() -> None:
    """Fluent Bit packs them as msgpack str; the reader decodes with surrogateescape."""
    nonce, salt = b"\xff\x00\xc3(" * 4, b"\x80\x81abc\xfe" + bytes(10)
    packed = msgpack.packb(["HELO", {"nonce": nonce, "auth": salt}], use_bin_type=False)
    decoded = msgpack.unpackb(packed, raw=False, unicode_errors="surrogateescape")
    assert isinstance(decoded[1]["nonce"], str)
    assert parse_helo(decoded) == (nonce, salt, True)


def test_a_pong_reason_with_undecodable_bytes_is_reported_readably() -> None:
    reason = b"bad \xff key".decode("utf-8", "surrogateescape")
    with pytest.raises(OutputCredentialsError, match="authentication failed: bad \ufffd key"):
        check_pong(["PONG", False, reason, "", ""], SALT, NONCE, "secret", "client.example")


def test_pong_of_the_spec_example_is_accepted() -> None:
    pong = ["PONG", True, "", "server.example", PONG_DIGEST]
    assert check_pong(pong, SALT, NONCE, "secret", "client.example") == "server.example"


@pytest.mark.parametrize(("pong", "message"), [
    (["PONG", False, "shared_key mismatch", "", ""], "authentication failed"),
    (["PONG", True, "", "client.example", PONG_DIGEST], "same hostname"),
    (["PONG", True, "", "server.example", "0" * 128], "shared key mismatch"),
])
def test_bad_pongs_are_credential_errors(pong: list[object], message: str) -> None:
    with pytest.raises(OutputCredentialsError, match=message):
        check_pong(pong, SALT, NONCE, "secret", "client.example")


def test_ack_of_reads_acks_and_spots_a_handshake_we_did_not_expect() -> None:
    assert ack_of({"ack": "abc"}) == "abc"
    with pytest.raises(OutputCredentialsError, match="shared_key"):
        ack_of(["HELO", {}])
    with pytest.raises(OutputRetryableError):
        ack_of([1, 2])


def test_only_unacked_messages_are_retried() -> None:
    messages = [Message([0, 2], chunk="a"), Message([1], chunk="b"), Message([3], chunk=None)]
    outcome = classify(messages, {"a"}, 4)
    assert outcome.statuses == [Status.DELIVERED, Status.RETRY, Status.DELIVERED,
                                Status.DELIVERED]
    assert outcome.errors[1].type == "ack_timeout" and outcome.http_status is None


def test_auth_failures_report_401_for_health() -> None:
    error = ItemError(401, "auth_failed", "refused")
    outcome = failed(2, error)
    assert outcome.statuses == [Status.RETRY] * 2 and outcome.http_status == 401
    assert failed(1, ItemError(0, "connection_error", "x")).http_status is None
