"""The tap inside the agent: hands parsed access-log records to live subscribers.

The pipeline calls ``offer`` after the filters, on the event loop, synchronously; it checks
``active`` first, so with nobody listening the tap costs one attribute read per batch. With
subscribers, each access-log record is matched against each subscriber's filter (the checks
that need only the parsed line first: method, code, path, authority, direction) and projected
into a tap event at most once, only if some subscriber may want it; a match is appended to
that subscriber's bounded queue. A full queue loses the record for that subscriber only
(counted in ``shipper_tap_records_total{result="dropped"}``): shipping never waits for a tap
reader, and the memory a slow reader can pin is ``queue_records`` events.

A failure in here is logged and swallowed: the tap is a window onto the pipeline and must
never become a reason for records not to be shipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from shipper.metrics import Metrics
from shipper.record import Record
from shipper.tap.config import TapConfig
from shipper.tap.event import tap_event
from shipper.tap.query import TapQuery

log = logging.getLogger(__name__)


class TapFull(Exception):
    """``max_subscribers`` streams are already open."""


class Subscriber:
    """One ``/tap`` stream: its filter and its bounded queue of events."""

    def __init__(self, query: TapQuery, limit: int, on_drop: Any) -> None:
        self.query = query
        self._limit = limit
        self._queue: deque[dict[str, Any]] = deque()
        self._ready = asyncio.Event()
        self._on_drop = on_drop
        self.dropped = 0
        self.closed = False

    def offer(self, event: dict[str, Any]) -> None:
        if len(self._queue) >= self._limit:
            self.dropped += 1
            self._on_drop()
            return
        self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        """End the stream; ``take`` returns None once the queue is read."""
        self.closed = True
        self._ready.set()

    def drain(self) -> list[dict[str, Any]]:
        """Every queued event, without waiting."""
        events = list(self._queue)
        self._queue.clear()
        return events

    async def take(self, timeout: float, max_events: int = 500) -> list[dict[str, Any]] | None:
        """Up to ``max_events`` queued events; [] after ``timeout`` with none; None when
        closed and drained."""
        if not self._queue and not self.closed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return []
        if not self._queue:
            return None if self.closed else []
        n = min(len(self._queue), max_events)
        return [self._queue.popleft() for _ in range(n)]


class Tap:
    """The agent's tap: ``offer`` from the pipeline, ``subscribe`` from ``/tap``."""

    def __init__(self, metrics: Metrics, config: TapConfig | None = None) -> None:
        config = config or TapConfig(enabled=True)
        self._max = config.max_subscribers
        self._limit = config.queue_records
        self._subscribers: list[Subscriber] = []
        self.active = False
        self._gauge = metrics.tap_subscribers
        self._sent = metrics.tap_records.labels("sent")
        self._dropped = metrics.tap_records.labels("dropped")
        self._failed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self, query: TapQuery) -> Subscriber:
        if len(self._subscribers) >= self._max:
            raise TapFull(f"{self._max} tap streams are open (telemetry.tap.max_subscribers)")
        sub = Subscriber(query, self._limit, self._dropped.inc)
        self._subscribers.append(sub)
        self._changed()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._changed()

    def sent(self, n: int) -> None:
        """A stream wrote ``n`` events to its client."""
        self._sent.inc(n)

    def close(self) -> None:
        """End every stream (agent shutdown)."""
        for sub in list(self._subscribers):
            self.unsubscribe(sub)

    def _changed(self) -> None:
        self.active = bool(self._subscribers)
        self._gauge.set(len(self._subscribers))

    def offer(self, records: list[Record]) -> None:
        """Give every subscriber the access-log records it asked for (never raises)."""
        subscribers = self._subscribers
        try:
            for record in records:
                envoy = record.body.get("envoy")
                if type(envoy) is not dict:
                    continue
                event = None
                for sub in subscribers:
                    query = sub.query
                    if not query.matches_request(envoy):
                        continue
                    if event is None:
                        event = tap_event(record)
                        if event is None:
                            break
                        event["envoy"] = dict(envoy)  # the record's dict is not ours to keep
                    if query.matches_place(event):
                        sub.offer(event)
        except Exception:
            if not self._failed:  # once per agent: a bug here must not flood the log
                self._failed = True
                log.exception("tap failed on a batch; shipping continues",
                              extra={"event": "tap_failed"})
