"""Delivery: the only place that sleeps and retries.

For one output, ``max_in_flight`` workers take ready chunks from the buffer and make attempts
until every payload of the chunk is settled: DELIVERED (including 409 duplicates on create),
or REJECTED and written to the dead-letter store with the reason. Only the RETRY subset is
sent again, after a capped, fully jittered exponential backoff that honours Retry-After.
Retries never give up: an outage is bounded by the buffer, not by a timer (reliability.md G5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from shipper.buffer import Buffer, Chunk
from shipper.buffer.config import BufferConfig
from shipper.crashpoints import crashpoint
from shipper.deadletter import DeadLetterStore
from shipper.errors import OutputCredentialsError, OutputError
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Output, Status
from shipper.retry import Backoff

log = logging.getLogger(__name__)

_CREDENTIAL_STATUSES = (401, 403)


def retry_reason(error: ItemError | None, outcome: Outcome) -> str:
    """A bounded label for the retry counter: the HTTP status class, or 'connection'."""
    status = error.status if error is not None else outcome.http_status
    if not status:
        return "connection"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class Delivery:
    """Moves chunks from one buffer to one output, exactly as the outcome says."""

    def __init__(self, output: Output, buffer: Buffer, dead_letters: DeadLetterStore,
                 metrics: Metrics, config: BufferConfig, health: OutputHealth,
                 backoff: Backoff | None = None) -> None:
        self._output = output
        self._buffer = buffer
        self._dlq = dead_letters
        self._metrics = metrics
        self._config = config
        self._health = health
        self._backoff = backoff or Backoff(config.retry_initial_secs, config.retry_max_secs)
        name = output.name
        self._delivered = metrics.records_delivered.labels(name)
        self._duplicates = metrics.records_duplicate.labels(name)
        self._latency = metrics.delivery_latency.labels(name)
        self._last_success = metrics.last_success.labels(name)

    async def start_output(self) -> None:
        """Start the output, retrying with backoff until it answers (never crash on an outage)."""
        attempt = 0
        while True:
            try:
                await self._output.start()
                self._health.started = True
                return
            except OutputCredentialsError as exc:
                self._health.record_failure(str(exc), credentials_rejected=True)
                self._log_throttled("output_start_failed", str(exc))
            except OutputError as exc:
                self._health.record_failure(str(exc))
                self._log_throttled("output_start_failed", str(exc))
            attempt += 1
            await asyncio.sleep(self._backoff.delay(attempt))

    async def run(self) -> None:
        """Deliver until the buffer is closed and empty."""
        await self.start_output()
        workers = [asyncio.create_task(self._worker(), name=f"delivery-{self._output.name}-{i}")
                   for i in range(max(1, self._config.max_in_flight))]
        try:
            await asyncio.gather(*workers)
        finally:
            for w in workers:
                w.cancel()

    async def _worker(self) -> None:
        while True:
            chunk = await self._buffer.get()
            if chunk is None:
                return
            try:
                await self.deliver(chunk)
            except asyncio.CancelledError:
                self._buffer.requeue(chunk)
                raise
            crashpoint("delivery_after_send")
            self._latency.observe(time.monotonic() - chunk.created)
            await self._buffer.settle(chunk)

    async def deliver(self, chunk: Chunk) -> None:
        """Attempt until every payload of ``chunk`` is delivered or dead-lettered."""
        if not chunk.payloads:
            return
        pending: list[int] | None = None  # None: every payload (the first attempt)
        attempt = 0
        name = self._output.name
        while True:
            payloads = (chunk.payloads if pending is None
                        else [chunk.payloads[i] for i in pending])
            outcome = await self._output.send(payloads)
            retry: list[int] = []
            rejected: list[tuple[int, ItemError]] = []
            statuses = outcome.statuses
            if len(statuses) != len(payloads):
                # An output bug must not lose data: treat the whole attempt as retryable.
                statuses = [Status.RETRY] * len(payloads)
            # Counted in C: the all-delivered answer is the common one, and a Python loop
            # over its statuses would cost as much as the bookkeeping of a whole batch.
            delivered = statuses.count(Status.DELIVERED)
            if delivered != len(statuses):
                for k, status in enumerate(statuses):
                    if status is Status.RETRY:
                        retry.append(k)
                    elif status is not Status.DELIVERED:
                        err = (outcome.errors.get(k)
                               or ItemError(0, "rejected", "rejected by output"))
                        rejected.append((k, err))
            if delivered:
                self._delivered.inc(delivered - outcome.duplicates)
                if outcome.duplicates:
                    self._duplicates.inc(outcome.duplicates)
                self._last_success.set(time.time())
            if rejected:
                described = [(self._describe(payloads[k]), err) for k, err in rejected]
                self._dlq.write(name, described)
            self._metrics.requests.labels(name, self._status_label(outcome, retry)).inc()
            if not retry:
                self._health.record_success()
                return
            if delivered or rejected:
                self._health.record_success()
            first = outcome.errors.get(retry[0])
            reason = retry_reason(first, outcome)
            self._metrics.records_retried.labels(name, reason).inc(len(retry))
            credentials = outcome.http_status in _CREDENTIAL_STATUSES
            detail = f"{first.type}: {first.reason}" if first else f"HTTP {outcome.http_status}"
            self._health.record_failure(detail, credentials_rejected=credentials)
            pending = retry if pending is None else [pending[k] for k in retry]
            attempt += 1
            delay = self._backoff.delay(attempt, outcome.retry_after)
            self._log_throttled("delivery_retry", detail, records=len(pending),
                                delay_secs=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)

    def _describe(self, payload: bytes) -> dict[str, object]:
        try:
            return self._output.describe(payload)
        except Exception as exc:  # a payload we cannot decode is still kept, raw
            return {"raw": payload.decode("utf-8", "replace"), "describe_error": str(exc)}

    @staticmethod
    def _status_label(outcome: Outcome, retry: Sequence[int]) -> str:
        if outcome.http_status is None:
            return "connection_error" if retry else "ok"
        if outcome.http_status >= 300:
            return str(outcome.http_status)
        return "partial" if retry else "ok"

    def _log_throttled(self, event: str, message: str, **fields: object) -> None:
        """A repeating condition: ``shipper.logs.RepeatLimiter`` writes it at most once per
        10 s per output and message, with the count of the lines it held back."""
        log.warning(message, extra={"event": event, "output": self._output.name, **fields})
