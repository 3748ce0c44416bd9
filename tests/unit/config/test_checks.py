"""The reusable field checks return a message for a bad value and None for a good one."""

from __future__ import annotations

import pytest

from shipper.config import checks


def test_a_port_is_between_1_and_65535() -> None:
    assert checks.port(1) is None
    assert checks.port(65535) is None
    assert checks.port(0) == "must be between 1 and 65535, got 0"
    assert checks.port(65536) == "must be between 1 and 65535, got 65536"


def test_positive_non_negative_and_non_empty() -> None:
    assert checks.positive(0.1) is None
    assert checks.positive(0) == "must be greater than 0, got 0"
    assert checks.non_negative(0) is None
    assert checks.non_negative(-1) == "must not be negative, got -1"
    assert checks.non_empty("x") is None
    assert checks.non_empty([]) == "must not be empty"
    assert checks.at_least_one("source")({}) == "at least one source is required"
    assert checks.at_least_one("source")({"a": 1}) is None


@pytest.mark.parametrize(("address", "parts"), [
    ("127.0.0.1:24231", ("127.0.0.1", 24231)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("localhost:9200", ("localhost", 9200)),
    ("[::]:24231", ("::", 24231)),
    ("[::1]:8080", ("::1", 8080)),
])
def test_a_host_port_address_is_split_into_its_parts(address: str,
                                                     parts: tuple[str, int]) -> None:
    assert checks.split_host_port(address) == parts
    assert checks.host_port(address) is None


@pytest.mark.parametrize(("address", "message"), [
    ("localhost", "expected host:port (like 127.0.0.1:24231), got 'localhost'"),
    (":24231", "expected host:port (like 127.0.0.1:24231), got ':24231'"),
    ("host:http", "the port must be a number, got 'host:http'"),
    ("host:0", "the port must be between 1 and 65535, got 0"),
    ("::1:80", "an IPv6 address must be written in brackets ([::1]:port), got '::1:80'"),
    ("[]:80", "expected [ipv6-address]:port, got '[]:80'"),
])
def test_a_malformed_address_is_explained(address: str, message: str) -> None:
    assert checks.host_port(address) == message


def test_between_names_both_bounds() -> None:
    check = checks.between(1, 64)
    assert check(1) is None and check(64) is None
    assert check(0) == "must be between 1 and 64, got 0"
    assert check(65) == "must be between 1 and 64, got 65"


def test_two_listeners_on_one_address_clash_and_a_wildcard_takes_every_host() -> None:
    assert checks.shared_listeners([("a", "0.0.0.0:24224"), ("b", "0.0.0.0:24224")]) == [
        "b listens on 0.0.0.0:24224, which a already takes; the second could not start "
        "(address already in use)"]
    assert len(checks.shared_listeners([("a", "[::]:80"), ("b", "10.0.0.1:80")])) == 1
    assert len(checks.shared_listeners([("a", "127.0.0.1:80"), ("b", "0.0.0.0:80")])) == 1


def test_different_ports_hosts_and_port_0_do_not_clash() -> None:
    assert checks.shared_listeners([
        ("a", "0.0.0.0:24224"), ("b", "0.0.0.0:24225"), ("c", "127.0.0.1:9"),
        ("d", "10.0.0.1:9"), ("e", "127.0.0.1:0"), ("f", "127.0.0.1:0"), ("g", "bad")]) == []


@pytest.mark.parametrize("first", ["localhost:24224", "127.1:24224", "[::ffff:127.0.0.1]:24224",
                                   "[0:0:0:0:0:0:0:0]:24224", "LOCALHOST:24224",
                                   "0.0.0.0:24224"])
def test_listeners_written_differently_but_equal_clash(first):
    assert len(checks.shared_listeners([("a", first), ("b", "127.0.0.1:24224")])) == 1


@pytest.mark.parametrize("first", ["127.0.0.2:24224", "[::1]:24225", "10.0.0.1:24224"])
def test_listeners_on_different_addresses_do_not_clash(first):
    assert checks.shared_listeners([("a", first), ("b", "127.0.0.1:24224")]) == []


@pytest.mark.parametrize(("address", "bad"), [
    ("256.1.1.1:24224", True), ("1.2.3.4.5:24224", True), ("[::g]:24224", True),
    ("127.1:24224", False), ("0.0.0.0:0", False), ("[::]:24224", False),
    ("fluentd.logging:24224", False)])
def test_listen_addresses_that_cannot_be_bound_are_refused(address, bad):
    assert (checks.listen_address(address) is not None) is bad
