"""Delivery.start_output and the counters an operator alerts on, with a scripted fake output:
start failures a real server produces only by accident (and in tests/integration, for real)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import Chunk, MemoryBuffer
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery, retry_reason
from shipper.errors import (
    TLS_ERROR_TYPE,
    OutputCredentialsError,
    OutputError,
    OutputPermanentError,
    OutputRetryableError,
    OutputTLSError,
)
from shipper.health import OutputHealth
from shipper.metrics import RETRY_REASONS, Metrics
from shipper.protocols import ItemError, Outcome, Status
from shipper.retry import Backoff


class StartingOutput:
    """``start`` raises the scripted errors in turn, then succeeds; ``send`` answers from
    ``answers`` (the last one repeats)."""

    name = "fake"
    DEAD_LETTER_REASONS = ("its_own_reason",)

    def __init__(self, failures: Sequence[OutputError], answers: Sequence[Outcome] = ()):
        self.failures = list(failures)
        self.answers = list(answers)
        self.starts = 0
        self.sends = 0

    def encode(self, records: Any) -> list[bytes]:
        return [orjson.dumps(r) for r in records]

    async def start(self) -> None:
        self.starts += 1
        if self.failures:
            raise self.failures.pop(0)

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        self.sends += 1
        answer = self.answers[min(self.sends, len(self.answers)) - 1]
        return Outcome(list(answer.statuses[:len(payloads)]), dict(answer.errors), None, 0,
                       answer.http_status)

    def describe(self, payload: bytes) -> dict[str, Any]:
        return {"record": orjson.loads(payload)}

    async def close(self) -> None:
        return None


def delivery(tmp_path: Any, output: StartingOutput, metrics: Metrics,
             health: OutputHealth) -> Delivery:
    config = BufferConfig(flush_interval_secs=0.01)
    return Delivery(output, MemoryBuffer("fake", config, metrics),
                    DeadLetterStore(tmp_path / "dlq", metrics), metrics, config, health,
                    backoff=Backoff(0.001, 0.002))


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"output": "fake", **labels})


async def test_every_start_attempt_is_counted_by_result(tmp_path: Any) -> None:
    m = Metrics()
    output = StartingOutput([OutputRetryableError("cannot reach"),
                             OutputRetryableError("cannot reach"),
                             OutputCredentialsError("credentials rejected (401)"),
                             OutputTLSError("certificate verify failed: x"),
                             OutputPermanentError("not Elasticsearch")])
    health = OutputHealth("fake", 300, has_backlog=lambda: True)
    await asyncio.wait_for(delivery(tmp_path, output, m, health).start_output(), 5)
    name = "shipper_output_start_attempts_total"
    assert sample(m, name, result="unavailable") == 2
    assert sample(m, name, result="credentials_rejected") == 1
    assert sample(m, name, result="tls_rejected") == 1
    assert sample(m, name, result="misconfigured") == 1
    assert sample(m, name, result="ok") == 1
    assert health.problem() is None  # the successful start cleared the last refusal


async def test_a_refused_certificate_at_start_is_not_ready_at_once(tmp_path: Any) -> None:
    m = Metrics()
    refused = "output fake: certificate verify failed: unknown CA (hosts[0] https://h:9200)"
    output = StartingOutput([OutputTLSError(refused)] * 1000)
    health = OutputHealth("fake", 300, has_backlog=lambda: True)  # stall timer far away
    start = asyncio.create_task(delivery(tmp_path, output, m, health).start_output())
    try:
        async with asyncio.timeout(5):
            while output.starts < 3:
                await asyncio.sleep(0.001)
        assert health.problem() == ("output fake: TLS certificate rejected (certificate "
                                    "verify failed: unknown CA (hosts[0] https://h:9200))")
        assert not start.done()  # retried, never given up
    finally:
        start.cancel()
        await asyncio.gather(start, return_exceptions=True)


async def test_a_refused_certificate_while_sending_is_not_ready_and_counted_as_tls(
        tmp_path: Any) -> None:
    m = Metrics()
    tls = Outcome.all(3, Status.RETRY, ItemError(0, TLS_ERROR_TYPE, "certificate verify "
                                                                    "failed: expired"))
    output = StartingOutput([], [tls, tls, Outcome.all(3, Status.DELIVERED, http_status=200)])
    health = OutputHealth("fake", 300, has_backlog=lambda: True)
    d = delivery(tmp_path, output, m, health)
    problems: list[str | None] = []
    original = health.record_failure

    def spy(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        problems.append(health.problem())

    health.record_failure = spy  # type: ignore[method-assign]
    chunk = Chunk(1, 0.0)
    chunk.payloads.extend([b'{"a":1}', b'{"a":2}', b'{"a":3}'])
    await asyncio.wait_for(d.deliver(chunk), 5)
    assert problems == ["output fake: TLS certificate rejected (tls_error: certificate "
                        "verify failed: expired)"] * 2
    assert health.problem() is None
    assert sample(m, "shipper_records_retried_total", reason="tls") == 6
    assert sample(m, "shipper_records_retried_total", reason="connection") == 0
    assert sample(m, "shipper_output_requests_total", status="tls_error") == 2
    assert sample(m, "shipper_records_delivered_total") == 3


def test_counters_an_operator_alerts_on_exist_at_zero_before_any_event(tmp_path: Any) -> None:
    m = Metrics()
    delivery(tmp_path, StartingOutput([]), m, OutputHealth("fake", 300))
    for reason in RETRY_REASONS:
        assert sample(m, "shipper_records_retried_total", reason=reason) == 0
    for reason in ("its_own_reason", "rejected", "unknown"):
        assert sample(m, "shipper_records_dead_lettered_total", reason=reason) == 0
    for reason in ("buffer_full", "buffer_corrupt", "dead_letter_full"):
        assert sample(m, "shipper_records_dropped_total", reason=reason) == 0
    for status in ("ok", "partial", "connection_error", "tls_error", "503"):
        assert sample(m, "shipper_output_requests_total", status=status) == 0
    for result in ("ok", "unavailable", "credentials_rejected", "tls_rejected",
                   "misconfigured"):
        assert sample(m, "shipper_output_start_attempts_total", result=result) == 0
    assert sample(m, "shipper_buffer_storage_errors_total", op="write") is None  # memory


@pytest.mark.parametrize(("error", "http_status"), [
    (ItemError(0, "connection_error", "refused"), None),
    (ItemError(0, "timeout", "slow"), None),
    (ItemError(0, TLS_ERROR_TYPE, "certificate verify failed"), None),
    (ItemError(429, "es_rejected_execution_exception", "busy"), 429),
    (ItemError(503, "unavailable_shards_exception", "down"), 503),
    (ItemError(401, "security_exception", "who"), 401),
])
def test_retry_reasons_are_the_ones_declared_up_front(error: ItemError,
                                                      http_status: int | None) -> None:
    outcome = Outcome.all(1, Status.RETRY, error, http_status=http_status)
    assert retry_reason(error, outcome) in RETRY_REASONS
