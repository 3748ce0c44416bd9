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
from shipper.errors import (
    TLS_ERROR_TYPE,
    OutputCredentialsError,
    OutputError,
    OutputPermanentError,
    OutputTLSError,
    StorageError,
)
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Output, Status
from shipper.retry import Backoff

log = logging.getLogger(__name__)

_CREDENTIAL_STATUSES = (401, 403)


def retry_reason(error: ItemError | None, outcome: Outcome) -> str:
    """A bounded label for the retry counter: the HTTP status class, 'connection', or 'tls'
    (the server's certificate failed verification)."""
    status = error.status if error is not None else outcome.http_status
    if not status:
        return "tls" if error is not None and error.type == TLS_ERROR_TYPE else "connection"
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
        metrics.declare_output(name, disk_buffer=config.type == "disk",
                               dead_letter_reasons=getattr(output, "DEAD_LETTER_REASONS", ()))

    async def start_output(self) -> None:
        """Start the output, retrying with backoff until it answers (never crash on an outage).

        Every attempt is counted (``shipper_output_start_attempts_total{result}``): an output
        that cannot start has sent no records yet, so no other counter would show it.
        Rejected credentials and an untrusted certificate make the output not ready at once.
        """
        attempt = 0
        attempts = self._metrics.output_start_attempts
        name = self._output.name
        while True:
            try:
                await self._output.start()
            except OutputCredentialsError as exc:
                attempts.labels(name, "credentials_rejected").inc()
                self._health.record_failure(str(exc), credentials_rejected=True)
                self._log_throttled("output_start_failed", str(exc))
            except OutputTLSError as exc:
                attempts.labels(name, "tls_rejected").inc()
                self._health.record_failure(str(exc), tls_rejected=True)
                self._log_throttled("output_start_failed", str(exc))
            except OutputError as exc:
                result = "misconfigured" if isinstance(exc, OutputPermanentError) \
                    else "unavailable"
                attempts.labels(name, result).inc()
                self._health.record_failure(str(exc))
                self._log_throttled("output_start_failed", str(exc))
            else:
                attempts.labels(name, "ok").inc()
                self._health.started = True
                self._health.record_success()  # clears a refusal seen by an earlier attempt
                return
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
                await self._dead_letter(described)
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
            tls = first is not None and first.type == TLS_ERROR_TYPE
            detail = f"{first.type}: {first.reason}" if first else f"HTTP {outcome.http_status}"
            self._health.record_failure(detail, credentials_rejected=credentials,
                                        tls_rejected=tls)
            pending = retry if pending is None else [pending[k] for k in retry]
            attempt += 1
            delay = self._backoff.delay(attempt, outcome.retry_after)
            self._log_throttled("delivery_retry", detail, records=len(pending),
                                delay_secs=round(delay, 3), attempt=attempt)
            await asyncio.sleep(delay)

    async def _dead_letter(self, described: list[tuple[dict[str, object], ItemError]],
                           ) -> None:
        """Write rejected records to the dead-letter store, waiting out storage faults.

        A failed write (disk full, EIO, EACCES) is handled like an unreachable output: the
        chunk stays unsettled (its records are neither lost nor acknowledged), the write
        alone is retried with backoff (the delivered records are not sent again), the output
        is not ready with the reason, and the condition is logged at most once per 10 s.
        Cancelled at shutdown, the chunk goes back to the buffer and is sent again later.
        """
        failures = 0
        while True:
            try:
                stored = await self._dlq.write(self._output.name, described)
            except StorageError as exc:
                failures += 1
                self._health.storage_failed("dead-letter store", str(exc))
                delay = self._backoff.delay(failures)
                self._log_throttled("dead_letter_write_failed",
                                    f"{exc}; the chunk waits, rejected records are kept",
                                    records=len(described), delay_secs=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            if failures:
                self._health.storage_recovered("dead-letter store")
                log.info("dead letters written again after %d failed attempt(s)", failures,
                         extra={"event": "dead_letter_write_recovered",
                                "output": self._output.name})
            if stored:
                # Stable text per output and error type, so the handler writes it at most
                # once per 10 s; the count, reason and file ride along as fields.
                err = described[0][1]
                self._log_throttled(
                    "records_dead_lettered",
                    f"output {self._output.name}: records rejected ({err.type}) written to the "
                    "dead-letter store", records=stored, reason=f"{err.type}: {err.reason}"[:300],
                    status=err.status, dead_letter_file=str(self._dlq.file_for(self._output.name)))
            return

    def _describe(self, payload: bytes) -> dict[str, object]:
        try:
            return self._output.describe(payload)
        except Exception as exc:  # a payload we cannot decode is still kept, raw
            return {"raw": payload.decode("utf-8", "replace"), "describe_error": str(exc)}

    @staticmethod
    def _status_label(outcome: Outcome, retry: Sequence[int]) -> str:
        if outcome.http_status is None:
            if not retry:
                return "ok"
            first = outcome.errors.get(retry[0])
            return "tls_error" if first is not None and first.type == TLS_ERROR_TYPE \
                else "connection_error"
        if outcome.http_status >= 300:
            return str(outcome.http_status)
        return "partial" if retry else "ok"

    def _log_throttled(self, event: str, message: str, **fields: object) -> None:
        """A repeating condition: ``shipper.logs.RepeatLimiter`` writes it at most once per
        10 s per output and message, with the count of the lines it held back."""
        log.warning(message, extra={"event": event, "output": self._output.name, **fields})
