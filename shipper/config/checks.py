"""Reusable extra validations for config fields (``metadata={"check": ...}``).

A check receives the already converted value and returns an error message, or None when the
value is fine. Checks are pure functions so the whole config can be validated before anything
starts; the message is shown after the file, line and key path, so it should read as a
sentence about the value (``must be between 1 and 65535``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sized


def port(value: int) -> str | None:
    """A TCP/UDP port number."""
    if not 1 <= value <= 65535:
        return f"must be between 1 and 65535, got {value}"
    return None


def between(low: int, high: int) -> Callable[[int], str | None]:
    """A count that must lie in ``low..high`` (both included)."""

    def check(value: int) -> str | None:
        if not low <= value <= high:
            return f"must be between {low} and {high}, got {value}"
        return None

    return check


def positive(value: float) -> str | None:
    """A count, size or duration that must be greater than zero."""
    if value <= 0:
        return f"must be greater than 0, got {value}"
    return None


def non_negative(value: float) -> str | None:
    """A count, size or duration that may be zero."""
    if value < 0:
        return f"must not be negative, got {value}"
    return None


def non_empty(value: Sized) -> str | None:
    """A string, list or mapping that must contain something."""
    if len(value) == 0:
        return "must not be empty"
    return None


def at_least_one(what: str) -> Callable[[Sized], str | None]:
    """A list or mapping that must hold at least one ``what`` (``at least one source...``)."""

    def check(value: Sized) -> str | None:
        if len(value) == 0:
            return f"at least one {what} is required"
        return None

    return check


def split_host_port(value: str, *, allow_any_port: bool = False) -> tuple[str, int]:
    """Split ``host:port`` (``[v6addr]:port`` for IPv6) and return both parts.

    ``allow_any_port`` accepts port 0, which asks the kernel for a free port when listening.

    Raises ValueError with an operator-readable message when the value is malformed, so the
    same parsing serves validation and the code that later binds or connects.
    """
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port (like 127.0.0.1:24231), got {value!r}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) == 2:
            raise ValueError(f"expected [ipv6-address]:port, got {value!r}")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address must be written in brackets ([::1]:port), got {value!r}")
    if not port_text.isdigit():
        raise ValueError(f"the port must be a number, got {value!r}")
    number = int(port_text)
    if allow_any_port and number == 0:
        return host, number
    problem = port(number)
    if problem is not None:
        raise ValueError(f"the port {problem}")
    return host, number


def host_port(value: str) -> str | None:
    """A ``host:port`` connect address."""
    try:
        split_host_port(value)
    except ValueError as exc:
        return str(exc)
    return None


def listen_address(value: str) -> str | None:
    """A ``host:port`` listen address; port 0 picks a free port.

    A host written as numbers and dots must be an IPv4 address (``256.1.1.1`` is refused
    here rather than when the agent binds); other names are resolved when it binds.
    """
    try:
        host, _ = split_host_port(value, allow_any_port=True)
    except ValueError as exc:
        return str(exc)
    if host and all(c.isdigit() or c == "." for c in host) and _ipv4(host) is None:
        return f"{host} is not an IPv4 address, in {value!r}"
    if value.startswith("[") and _ip(host) is None:
        return f"{host} is not an IPv6 address, in {value!r}"
    return None


_ANY_HOST = ("0.0.0.0", "::", "")
#: ``localhost`` without asking DNS: the loopback addresses it names on every Linux.
_LOCALHOST = frozenset({"127.0.0.1", "::1"})


def _ipv4(host: str) -> str | None:
    """``127.1`` or ``127.0.0.1`` as the C library reads them (what bind would use)."""
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def _ip(host: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _bound_hosts(host: str) -> frozenset[str]:
    """The addresses a listen host stands for, so differently written equal hosts compare."""
    lowered = host.lower().rstrip(".")
    if lowered in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return _LOCALHOST
    canonical = _ip(lowered)
    if canonical is None and lowered and all(c.isdigit() or c == "." for c in lowered):
        canonical = _ipv4(lowered)
    return frozenset({canonical or lowered})


def shared_listeners(listeners: list[tuple[str, str]]) -> list[str]:
    """``(who, host:port)`` pairs that cannot all bind: one message per clash.

    Two listeners clash on the same port when their hosts are equal or either is a wildcard
    (``0.0.0.0``, ``::``), which on Linux also takes the port of every specific address. Port
    0 asks the kernel for a free port and never clashes; malformed addresses are reported by
    their own field check.
    """
    seen: list[tuple[str, frozenset[str], int]] = []
    problems = []
    for who, address in listeners:
        try:
            host_text, number = split_host_port(address, allow_any_port=True)
        except ValueError:
            continue
        if number == 0:
            continue
        host = _bound_hosts(host_text)
        for other, other_host, other_port in seen:
            if other_port == number and (host & other_host or host & set(_ANY_HOST)
                                         or other_host & set(_ANY_HOST)):
                problems.append(f"{who} listens on {address}, which {other} already takes; "
                                "the second could not start (address already in use)")
                break
        else:
            seen.append((who, host, number))
    return problems
