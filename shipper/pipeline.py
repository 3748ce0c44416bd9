"""The pipeline: filters, then fan-out into the buffers of the outputs whose ``match`` fits.

``emit`` is what sources call. It runs the synchronous filter chain on the whole batch, lets
each matching output encode its share once, and awaits each buffer's ``put`` — which waits
while that buffer is full, so a slow output slows the sources down instead of growing memory.
The batch's ack group is held by every buffer it entered. This is the one place that decides
how a batch ends: sealed once every route's ``put`` returned, abandoned (never safe) if the
filters, an encoder or a ``put`` raised or was cancelled (``shipper.acks``).
Between the filters and the fan-out the traffic tap, when someone listens, sees the records
(``shipper.tap``); with no subscriber it costs one attribute read per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipper.buffer import Buffer
from shipper.protocols import Filter, Output
from shipper.record import Batch, Record
from shipper.tagmatch import compile_tag_pattern, matches_everything

if TYPE_CHECKING:
    from shipper.tap.hub import Tap

log = logging.getLogger(__name__)


@dataclass
class Route:
    """One output with its buffer and the tags it accepts."""

    output: Output
    buffer: Buffer
    match: str = "**"

    def __post_init__(self) -> None:
        self._all = matches_everything(self.match)
        self._regex = compile_tag_pattern(self.match)
        self._cache: dict[str, bool] = {}

    def select(self, records: list[Record]) -> list[Record]:
        if self._all:
            return records
        cache = self._cache
        out = []
        for r in records:
            ok = cache.get(r.tag)
            if ok is None:
                if len(cache) > 10_000:
                    cache.clear()
                ok = cache[r.tag] = bool(self._regex.match(r.tag))
            if ok:
                out.append(r)
        return out


class FilterStage:
    """A filter applied to the records whose tag matches ``match`` (others pass untouched)."""

    def __init__(self, filter: Filter, match: str = "**") -> None:
        self.filter = filter
        self.match = match
        self._route_all = matches_everything(match)
        self._regex = compile_tag_pattern(match)
        self._cache: dict[str, bool] = {}

    def process(self, records: list[Record]) -> list[Record]:
        if self._route_all:
            return self.filter.process(records)
        cache = self._cache
        selected: list[Record] = []
        others: list[Record] = []
        for r in records:
            ok = cache.get(r.tag)
            if ok is None:
                if len(cache) > 10_000:
                    cache.clear()
                ok = cache[r.tag] = bool(self._regex.match(r.tag))
            (selected if ok else others).append(r)
        if not selected:
            return records
        return others + self.filter.process(selected)


class Pipeline:
    """Filters plus routes; the single ``emit`` entry point for every source."""

    def __init__(self, filters: Sequence[Filter | FilterStage], routes: Sequence[Route],
                 tap: Tap | None = None) -> None:
        self._filters = list(filters)
        self._routes = list(routes)
        self._tap = tap
        # Batches whose fan-out was cut short: never acknowledged, read again after a restart.
        self.abandoned_batches = 0
        self.abandoned_records = 0

    async def emit(self, batch: Batch) -> None:
        group = batch.ack
        try:
            records = batch.records
            for f in self._filters:
                records = f.process(records)
            tap = self._tap
            if tap is not None and tap.active:
                tap.offer(records)  # never raises, never waits
            for route in self._routes:
                selected = route.select(records)
                if selected:
                    payloads = route.output.encode(selected)
                    await route.buffer.put(payloads, group)
        except BaseException:
            # Cut short (cancelled while a full buffer blocked, or an error): some records
            # never reached some buffer, so the batch must never count as safe.
            if group is not None:
                group.abandon()
                self.abandoned_batches += 1
                self.abandoned_records += len(batch.records)
            raise
        if group is not None:
            group.seal()
