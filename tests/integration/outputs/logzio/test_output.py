"""The logzio output against a local HTTPS listener that behaves as documented (spec §2)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from outputs.logzio import LogzioOutput
from outputs.logzio.config import LogzioConfig
from shipper.demo.embedded_es import free_loopback_port
from shipper.errors import OutputCredentialsError, OutputPermanentError, OutputTLSError
from shipper.protocols import Status
from tests.integration.outputs.logzio.support import TOKEN, Harness, make_output, records
from tests.logzio_listener import Fault, LogzioListener


@pytest.mark.parametrize("gzip", [False, True])
async def test_records_arrive_as_logzio_k8s_sends_them(listener: LogzioListener,
                                                       gzip: bool) -> None:
    output = make_output(listener, gzip=gzip)
    await output.start()
    try:
        outcome = await output.send(output.encode(records(50)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.DELIVERED] * 50
    assert outcome.http_status == 200
    assert [s.gzip for s in listener.seen] == [gzip]
    assert listener.seen[0].log_type == "k8s"
    assert listener.seen[0].token_valid
    first = listener.stored[0]
    assert first["message"] == "line-00000"
    assert "log" not in first
    assert (first["type"], first["fluentd_tags"]) == ("k8s", "kube.web")
    assert first["@timestamp"] == "2026-11-22T00:00:00.000Z"
    assert listener.messages() == [f"line-{i:05d}" for i in range(50)]


async def test_a_chunk_is_split_into_bodies_within_max_request_bytes(
        listener: LogzioListener) -> None:
    output = make_output(listener, max_request_bytes=8192, max_line_bytes=2048)
    await output.start()
    try:
        outcome = await output.send(output.encode(records(40, size=900)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.DELIVERED] * 40
    assert len(listener.seen) > 1
    assert all(s.wire_bytes <= 8192 for s in listener.seen)
    assert sorted(listener.messages()) == listener.messages()  # in order, once each
    assert len(listener.messages()) == 40


async def test_400_counts_are_exported_exactly_and_no_line_is_named_on_a_guess(
        tmp_path: Path) -> None:
    # A listener with a lower line limit than ours stands in for a line it counts as
    # oversized that our own check let through.
    with LogzioListener({TOKEN}, max_line_bytes=3000) as strict:
        h = Harness(strict, tmp_path)
        batch = records(20)
        big = records(4, size=5000, prefix="big")
        await h.delivery.start_output()
        await h.deliver(batch[:8] + big[:2] + batch[8:] + big[2:])
        assert len(strict.seen) == 1  # nothing was sent again
        assert strict.statuses() == [400]
        assert len(strict.stored) == 20
        assert len(set(strict.messages())) == 20
    # The listener did not say which 4 lines it refused: every line of the request is a
    # dead letter flagged as such, and the listener's own counts are exported as they are.
    assert h.value("shipper_records_delivered_total") == 0
    assert h.value("shipper_records_dead_lettered_total", reason="logzio_unidentified") == 24
    assert h.value("shipper_records_retried_total", reason="4xx") == 0
    assert h.value("shipper_logzio_lines_total", kind="successful") == 20
    assert h.value("shipper_logzio_lines_total", kind="oversized") == 4
    assert h.value("shipper_logzio_lines_total", kind="malformed") == 0
    assert h.output.health.lines == {"successful": 20, "malformed": 0, "oversized": 4,
                                     "empty": 0}
    letters = [json.loads(line) for line in h.dead_letter_lines()]
    assert sorted(d["record"]["message"].split(" ")[0] for d in letters) == sorted(
        [f"line-{i:05d}" for i in range(20)] + [f"big-{i:05d}" for i in range(4)])
    assert all(d["error"]["type"] == "logzio_unidentified" for d in letters)
    assert all("stored 20 of 24 lines of this request" in d["error"]["reason"]
               for d in letters)


async def test_413_halves_the_request_until_each_part_fits(tmp_path: Path) -> None:
    with LogzioListener({TOKEN}, max_body_bytes=16_384) as small:
        h = Harness(small, tmp_path)
        await h.delivery.start_output()
        await h.deliver(records(64, size=1000))
        statuses = small.statuses()
        assert statuses[0] == 413
        assert statuses.count(200) >= 4
        assert set(statuses) == {200, 413}
        assert small.messages() == [f"line-{i:05d}" + " " + "x" * 989 for i in range(64)]
    assert h.value("shipper_records_delivered_total") == 64
    assert h.dead_letter_lines() == []


async def test_a_line_the_listener_refuses_as_too_large_alone_is_dead_lettered(
        tmp_path: Path) -> None:
    with LogzioListener({TOKEN}, max_body_bytes=2000) as small:
        h = Harness(small, tmp_path)
        await h.delivery.start_output()
        await h.deliver(records(3, size=500) + records(1, size=3000, prefix="huge"))
        assert len(small.stored) == 3
    (letter,) = [json.loads(line) for line in h.dead_letter_lines()]
    assert letter["error"]["type"] == "payload_too_large"
    assert letter["record"]["message"].startswith("huge-00000")
    assert letter["listener"] == small.url + "/"
    assert h.value("shipper_records_delivered_total") == 3


async def test_a_record_too_large_even_truncated_goes_to_dead_letters_unsent(
        listener: LogzioListener, tmp_path: Path) -> None:
    h = Harness(listener, tmp_path, max_line_bytes=4096)
    recs = records(2)
    recs[1].body["kubernetes"]["annotations"] = {f"a{i}": "v" * 100 for i in range(60)}
    long_log = records(1, size=20_000, prefix="long")
    await h.delivery.start_output()
    await h.deliver(recs + long_log)
    assert listener.messages()[0] == "line-00000"
    assert len(listener.stored) == 2
    truncated = listener.stored[1]
    assert truncated["shipper"] == {"flags": ["truncated"], "original_bytes": 20_000}
    assert truncated["message"].startswith("long-00000")
    (letter,) = [json.loads(line) for line in h.dead_letter_lines()]
    assert letter["error"]["type"] == "line_too_large"
    assert len(letter["record"]["kubernetes"]["annotations"]) == 60  # kept whole
    assert h.value("shipper_records_truncated_total") == 1


async def test_latency_within_the_timeout_is_just_slower(listener: LogzioListener) -> None:
    output = make_output(listener, request_timeout_secs=10)
    listener.script(Fault(delay_secs=0.3))
    await output.start()
    try:
        outcome = await output.send(output.encode(records(3)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.DELIVERED] * 3


async def test_a_listener_slower_than_the_timeout_is_retried(listener: LogzioListener) -> None:
    output = make_output(listener, request_timeout_secs=0.3)
    listener.script(Fault(delay_secs=3))
    await output.start()
    try:
        outcome = await output.send(output.encode(records(3)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.RETRY] * 3
    assert outcome.http_status is None
    assert outcome.errors[0].type == "timeout"


async def test_a_reset_connection_is_retried_and_delivers_each_line_once(
        listener: LogzioListener, tmp_path: Path) -> None:
    h = Harness(listener, tmp_path)
    listener.script(Fault(reset=True), Fault(reset=True))
    await h.delivery.start_output()
    await h.deliver(records(30))
    assert listener.messages() == [f"line-{i:05d}" for i in range(30)]
    assert h.value("shipper_records_retried_total", reason="connection") == 60
    assert h.value("shipper_records_delivered_total") == 30


@pytest.mark.parametrize(("status", "header"), [(429, "2"), (500, None), (503, "1")])
async def test_busy_and_failing_listeners_are_retried_with_retry_after(
        listener: LogzioListener, status: int, header: str | None) -> None:
    output = make_output(listener)
    headers = {"Retry-After": header} if header else {}
    listener.script(Fault(status=status, headers=headers))
    await output.start()
    try:
        first = await output.send(output.encode(records(2)))
        second = await output.send(output.encode(records(2)))
    finally:
        await output.close()
    assert first.statuses == [Status.RETRY] * 2
    assert first.http_status == status
    assert first.retry_after == (float(header) if header else None)
    assert second.statuses == [Status.DELIVERED] * 2
    assert len(listener.stored) == 2


async def test_an_unreachable_listener_is_retried_without_a_status() -> None:
    port = free_loopback_port()
    config = LogzioConfig(listener=f"https://127.0.0.1:{port}", token=TOKEN,
                          request_timeout_secs=5)
    output = LogzioOutput("lz", config)
    await output.start()
    try:
        outcome = await output.send(output.encode(records(5)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.RETRY] * 5
    assert outcome.http_status is None
    assert outcome.errors[0].type == "connection_error"


def test_the_listener_answers_401_with_the_two_documented_messages(
        listener: LogzioListener) -> None:
    import ssl
    context = ssl.create_default_context(cafile=listener.ca_file)
    answers = []
    for query in ("", "?token=wrong&type=k8s"):
        request = urllib.request.Request(listener.url + "/" + query, data=b'{"message":"x"}',
                                         method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5, context=context)
        answers.append((info.value.code, info.value.read()))
    assert answers == [(401, b"Logging token is missing"), (401, b"Logging token is not valid")]


async def test_an_unknown_token_is_retried_at_the_backoff_cap_and_never_dropped(
        listener: LogzioListener) -> None:
    listener.tokens.clear()
    output = make_output(listener)
    await output.start()
    try:
        outcome = await output.send(output.encode(records(4, size=600)))
    finally:
        await output.close()
    assert outcome.statuses == [Status.RETRY] * 4
    assert outcome.http_status == 401
    assert outcome.retry_after == output.config.buffer.retry_max_secs
    assert outcome.errors[0].type == "token_invalid"
    assert outcome.errors[0].reason == "Logging token is not valid"
    assert not output.health.ready
    assert output.health.credentials_problem == "Logging token is not valid"


async def test_a_rotated_token_file_recovers_a_refused_token_without_losing_data(
        listener: LogzioListener, tmp_path: Path) -> None:
    secret_dir = tmp_path / "secret"
    token_file = _kubelet_secret(secret_dir, "old-revoked-token")
    h = Harness(listener, tmp_path, token_file=str(token_file))
    await h.delivery.start_output()
    task = asyncio.create_task(h.deliver(records(25)))
    for _ in range(500):  # bounded: until the refusal shows in /readyz
        if h.health.problem() is not None or task.done():
            break
        await asyncio.sleep(0.01)
    problem = h.health.problem()
    assert problem is not None and "credentials rejected" in problem
    assert "Logging token is not valid" in problem
    assert not h.output.health.ready
    assert listener.stored == []
    _kubelet_secret(secret_dir, TOKEN)  # the Secret is updated: kubelet swaps the symlink
    await asyncio.wait_for(task, 30)
    assert listener.messages() == [f"line-{i:05d}" for i in range(25)]
    assert h.health.problem() is None
    assert h.output.health.ready
    assert h.value("shipper_records_delivered_total") == 25
    assert h.value("shipper_records_retried_total", reason="4xx") >= 25
    assert h.dead_letter_lines() == []


async def test_start_without_a_token_file_is_a_credentials_error_that_names_the_file(
        listener: LogzioListener, tmp_path: Path) -> None:
    missing = tmp_path / "none" / "token"
    output = make_output(listener, token_file=str(missing))
    with pytest.raises(OutputCredentialsError, match=r"no Logz\.io token from token_file"):
        await output.start()
    assert str(missing) in output.health.credentials_problem
    assert not output.health.ready


async def test_an_unreadable_ca_file_is_a_permanent_error(listener: LogzioListener,
                                                          tmp_path: Path) -> None:
    output = LogzioOutput("lz", LogzioConfig(listener=listener.url, token=TOKEN,
                                             ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(OutputPermanentError, match="cannot use ca_file"):
        await output.start()


async def test_a_certificate_from_an_unknown_ca_is_not_trusted(listener: LogzioListener,
                                                               ) -> None:
    output = LogzioOutput("lz", LogzioConfig(listener=listener.url, token=TOKEN,
                                             request_timeout_secs=5))
    try:
        with pytest.raises(OutputTLSError) as refused:  # found at start, by a handshake
            await output.start()
        outcome = await output.send(output.encode(records(1)))
    finally:
        await output.close()
    why = "certificate verify failed: unable to get local issuer certificate"
    assert why in str(refused.value)
    assert outcome.statuses == [Status.RETRY]
    assert outcome.errors[0].type == "tls_error"
    assert outcome.errors[0].reason == f"{why} (listener {listener.url}/)"
    assert listener.seen == []


def _kubelet_secret(directory: Path, token: str) -> Path:
    """Write ``token`` the way the kubelet updates a Secret volume: a new timestamped
    directory, an atomic swap of the ``..data`` symlink, and ``token -> ..data/token``."""
    directory.mkdir(parents=True, exist_ok=True)
    generation = len(list(directory.glob("..gen-*")))
    target = directory / f"..gen-{generation}"
    target.mkdir()
    (target / "token").write_text(token + "\n")
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(target.name)
    tmp_link.replace(directory / "..data")
    link = directory / "token"
    if not link.is_symlink():
        link.symlink_to("..data/token")
    return link
