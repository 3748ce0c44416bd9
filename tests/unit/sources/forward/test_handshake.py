"""The server side of HELO/PING/PONG matches the spec's worked example (forward spec §1.7)."""

from __future__ import annotations

import msgpack
import pytest

from shipper.sources.forward.config import ForwardClient, ForwardSecurity, ForwardUser
from shipper.sources.forward.handshake import ServerHandshake, hexdigest

NONCE = bytes(range(16))
AUTH = bytes(range(16, 32))
SALT = "0123456789abcdef0123456789abcdef"
PING_DIGEST = ("3a680037d3979b4f789647cd22e7e55f2197791eb498799823c424e2213124ed"
               "63938d1c422f50e08ec02957ef44df338e46c77e8ea164b0dde6d64e171b30df")
PASSWORD_DIGEST = ("9f48c52936da01248e1c3e2ffab158a8a3cc201cc13aeca8b9d689a6ea13e98f"
                   "0d661aa675e93490805b0d8834cccc5df9028c9a3a2797e71086eedb85069223")
PONG_DIGEST = ("3389a63bef56054281d75fb7b05965b0d1b1ea9eba25b4594ed8e06a02e725af"
               "1fbf401cdbe697423c388ac1948566570a6f592284a536370ca36a5ccf88cbbd")
HELO_HEX = ("92a448454c4f83a56e6f6e6365c410000102030405060708090a0b0c0d0e0f"
            "a461757468c410101112131415161718191a1b1c1d1e1fa96b656570616c697665c3")


def server(**kw: object) -> ServerHandshake:
    security = ForwardSecurity(shared_key="secret", self_hostname="server.example", **kw)
    return ServerHandshake(security, "127.0.0.1", nonce=NONCE, auth_salt=AUTH)


def ping(digest: str = PING_DIGEST, user: str = "", password: str = "") -> list[object]:
    return ["PING", "client.example", SALT, digest, user, password]


def test_helo_bytes_are_the_spec_example() -> None:
    assert server().helo() == bytes.fromhex(HELO_HEX)


def test_digests_are_the_spec_example() -> None:
    assert hexdigest(SALT, "client.example", NONCE, "secret") == PING_DIGEST
    assert hexdigest(AUTH, "alice", "pass") == PASSWORD_DIGEST


def test_a_correct_ping_gets_the_spec_pong() -> None:
    result = server().check_ping(ping())
    assert result.ok
    assert msgpack.unpackb(result.reply) == ["PONG", True, "", "server.example", PONG_DIGEST]
    assert result.client_hostname == "client.example"


def test_a_wrong_key_is_refused_with_the_spec_reason() -> None:
    result = server().check_ping(ping(digest="0" * 128))
    assert not result.ok
    assert msgpack.unpackb(result.reply) == ["PONG", False, "shared_key mismatch", "", ""]


@pytest.mark.parametrize("message", [
    ["PING", "client.example", SALT, PING_DIGEST, ""],  # 5 elements
    ["PONG", "client.example", SALT, PING_DIGEST, "", ""],
    {"PING": 1},
    ["PING", 1, SALT, PING_DIGEST, "", ""],
])
def test_malformed_pings_are_invalid(message: object) -> None:
    result = server().check_ping(message)
    assert not result.ok and result.reason == "invalid ping message"


def test_user_auth_checks_the_password_digest() -> None:
    users = [ForwardUser("bob", "other"), ForwardUser("alice", "pass")]
    good = server(user_auth=True, users=users).check_ping(
        ping(user="alice", password=PASSWORD_DIGEST))
    assert good.ok
    bad = server(user_auth=True, users=users).check_ping(
        ping(user="alice", password="f" * 128))
    assert not bad.ok and bad.reason == "username/password mismatch"
    unknown = server(user_auth=True, users=users).check_ping(
        ping(user="mallory", password=PASSWORD_DIGEST))
    assert not unknown.ok


def test_client_entries_pick_the_key_and_can_deny_anonymous_hosts() -> None:
    clients = [ForwardClient(network="10.0.0.0/8", shared_key="other")]
    denied = server(allow_anonymous_source=False, clients=clients).check_ping(ping())
    assert not denied.ok and denied.reason == "anonymous source host '127.0.0.1' denied"
    local = [ForwardClient(network="127.0.0.0/8", shared_key="local-key")]
    wrong_key = server(clients=local).check_ping(ping())
    assert wrong_key.reason == "shared_key mismatch"
    digest = hexdigest(SALT, "client.example", NONCE, "local-key")
    assert server(clients=local).check_ping(ping(digest=digest)).ok


def test_a_client_may_be_limited_to_some_users() -> None:
    users = [ForwardUser("alice", "pass")]
    clients = [ForwardClient(network="127.0.0.1", users=["bob"])]
    result = server(user_auth=True, users=users, clients=clients).check_ping(
        ping(user="alice", password=PASSWORD_DIGEST))
    assert not result.ok and result.reason == "username/password mismatch"
