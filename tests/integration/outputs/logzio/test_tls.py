"""A listener certificate the output does not trust is a configuration problem: the output is
not ready at once, with the reason, and keeps retrying until the certificate or the CA bundle
is fixed. The listener is the local one, behind a TLS front whose certificate can change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme

from tests.integration.outputs.logzio.support import TOKEN, Harness, records
from tests.integration.outputs.tlsfront import TlsFront
from tests.logzio_listener import LogzioListener

UNKNOWN_CA = "certificate verify failed: unable to get local issuer certificate"


async def until(condition: Callable[[], Any], timeout_secs: float = 10.0) -> Any:
    """Poll ``condition`` until it returns something truthy (bounded in time)."""
    async with asyncio.timeout(timeout_secs):
        while not (found := condition()):
            await asyncio.sleep(0.01)
    return found


@pytest.fixture
def trusted(tmp_path: Path) -> tuple[trustme.CA, str]:
    """The CA the output trusts, and its ``ca_file``."""
    ca = trustme.CA()
    path = tmp_path / "trusted-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


@pytest.fixture
def plain_listener() -> Iterator[LogzioListener]:
    with LogzioListener({TOKEN}, tls=False) as running:
        yield running


def harness(front: TlsFront, ca_file: str, state: Path) -> Harness:
    return Harness(SimpleNamespace(url=front.url, ca_file=ca_file), state)  # type: ignore[arg-type]


async def test_an_untrusted_certificate_at_start_is_not_ready_at_once_and_retried(
        tmp_path: Path, trusted: tuple[trustme.CA, str],
        plain_listener: LogzioListener) -> None:
    ca, ca_file = trusted
    stranger = trustme.CA().issue_cert("127.0.0.1")
    with TlsFront("127.0.0.1", plain_listener.port, stranger) as front:
        h = harness(front, ca_file, tmp_path)
        start = asyncio.create_task(h.delivery.start_output())
        try:
            problem = await until(h.health.problem)  # not after the stall timer: now
            assert problem == (f"output lz: TLS certificate rejected ({UNKNOWN_CA} "
                               f"(listener {front.url}/))")
            assert h.value("shipper_output_start_attempts_total", result="tls_rejected") >= 1
            assert not h.output.health.ready
            assert not start.done()  # still retrying
            # The listener gets a certificate from the trusted CA: the next attempt starts.
            front.use(ca.issue_cert("127.0.0.1"))
            await asyncio.wait_for(start, 10)
        finally:
            start.cancel()
        assert h.health.problem() is None
        assert h.output.health.ready
        assert h.value("shipper_output_start_attempts_total", result="ok") == 1
        await h.deliver(records(5))
        assert plain_listener.messages() == [f"line-{i:05d}" for i in range(5)]
        await h.output.close()


async def test_a_host_name_mismatch_is_not_ready_at_once(
        tmp_path: Path, trusted: tuple[trustme.CA, str],
        plain_listener: LogzioListener) -> None:
    ca, ca_file = trusted
    with TlsFront("127.0.0.1", plain_listener.port, ca.issue_cert("logs.example")) as front:
        h = harness(front, ca_file, tmp_path)
        start = asyncio.create_task(h.delivery.start_output())
        try:
            problem = await until(h.health.problem)
        finally:
            start.cancel()
        await h.output.close()
    assert problem.startswith("output lz: TLS certificate rejected (certificate verify "
                              "failed: IP address mismatch")
    assert f"(listener {front.url}/)" in problem
    assert h.value("shipper_output_start_attempts_total", result="tls_rejected") >= 1
    assert plain_listener.seen == []


async def test_an_untrusted_certificate_during_delivery_keeps_the_records_and_retries(
        tmp_path: Path, trusted: tuple[trustme.CA, str],
        plain_listener: LogzioListener) -> None:
    ca, ca_file = trusted
    with TlsFront("127.0.0.1", plain_listener.port, ca.issue_cert("127.0.0.1")) as front:
        h = harness(front, ca_file, tmp_path)
        await h.delivery.start_output()
        front.use(trustme.CA().issue_cert("127.0.0.1"))  # replaced by an unknown CA's
        sending = asyncio.create_task(h.deliver(records(4)))
        try:
            problem = await until(h.health.problem)
            assert problem == (f"output lz: TLS certificate rejected (tls_error: {UNKNOWN_CA} "
                               f"(listener {front.url}/))")
            await until(lambda: h.value("shipper_records_retried_total", reason="tls") >= 8)
            assert h.value("shipper_output_requests_total", status="tls_error") >= 2
            assert h.value("shipper_records_retried_total", reason="connection") == 0
            assert not sending.done()
            front.use(ca.issue_cert("127.0.0.1"))
            await asyncio.wait_for(sending, 10)
        finally:
            sending.cancel()
        await h.output.close()
    assert h.health.problem() is None
    assert plain_listener.messages() == [f"line-{i:05d}" for i in range(4)]
    assert h.value("shipper_records_delivered_total") == 4
    assert h.dead_letter_lines() == []


async def test_a_fixed_ca_file_is_read_again_without_a_restart(
        tmp_path: Path, trusted: tuple[trustme.CA, str],
        plain_listener: LogzioListener) -> None:
    _, ca_file = trusted
    other = trustme.CA()
    with TlsFront("127.0.0.1", plain_listener.port, other.issue_cert("127.0.0.1")) as front:
        h = harness(front, ca_file, tmp_path)
        start = asyncio.create_task(h.delivery.start_output())
        try:
            await until(h.health.problem)
            other.cert_pem.write_to_path(ca_file)  # the operator fixes the CA bundle
            await asyncio.wait_for(start, 10)
        finally:
            start.cancel()
        await h.deliver(records(2))
        await h.output.close()
    assert h.health.problem() is None
    assert len(plain_listener.stored) == 2
    assert json.loads(json.dumps(h.output.health.snapshot()))["tls_problem"] is None
