"""What the traffic tap costs the pipeline: microseconds per access-log record.

Not a test (timings depend on the machine). Run ``python -m bench.tap_cost``. Each case runs
``Pipeline.emit`` over the same parsed sidecar batches (the envoy filter already applied, a
null output), so the differences between the rows are the tap's own cost on the event loop:

* tap off (``telemetry.tap.enabled: false``) and tap on with nobody listening: one attribute
  read per batch, so equal within noise;
* one subscriber: each record is projected and matched; a matching one is copied into the
  subscriber's queue; ``+ ndjson`` adds the serialization the ``/tap`` stream does for what
  it sends (also on the loop).

For scale, the same script prints the envoy filter's cost per line (``bench.envoy_parse``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson

from bench.envoy_parse import TEXT, lines
from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.metrics import Metrics
from shipper.pipeline import Pipeline, Route
from shipper.record import Batch, Record
from shipper.tap.config import TapConfig
from shipper.tap.hub import Subscriber, Tap
from shipper.tap.query import TapQuery

BATCH = 1000
K8S = {"namespace_name": "shop", "pod_name": "catalog-7d4b9c5f8-x2x5z",
       "container_name": "istio-proxy", "host": "node-1"}


class _NullOutput:
    name = "null"

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        return []

    async def start(self) -> None: ...
    async def send(self, payloads: Sequence[bytes]) -> Any: ...
    def describe(self, payload: bytes) -> dict[str, Any]:
        return {}

    async def close(self) -> None: ...


class _NullBuffer:
    async def put(self, payloads: Sequence[bytes], group: Any) -> None:
        return None


def parsed_batches(n: int) -> list[list[Record]]:
    records = [Record({"log": line, "stream": "stdout", "kubernetes": K8S}, 0, "t")
               for line in lines(TEXT, n)]
    EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), Metrics()).process(records)
    return [records[i:i + BATCH] for i in range(0, n, BATCH)]


async def _run(pipeline: Pipeline, batches: list[list[Record]], rounds: int,
               subscriber: Subscriber | None, ndjson: bool) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for records in batches:
            await pipeline.emit(Batch(records))
            if subscriber is not None:
                events = subscriber.drain()
                if ndjson:
                    b"".join(orjson.dumps(e) + b"\n" for e in events)
        best = min(best, time.perf_counter() - start)
    return best


def case(batches: list[list[Record]], rounds: int, tap_on: bool, query: TapQuery | None,
         ndjson: bool = False) -> float:
    """Best seconds for one pass over ``batches``."""
    tap = Tap(Metrics(), TapConfig(enabled=True, queue_records=10 * BATCH)) if tap_on else None
    sub = tap.subscribe(query) if tap is not None and query is not None else None
    pipeline = Pipeline([], [Route(_NullOutput(), _NullBuffer())],  # type: ignore[arg-type]
                        tap=tap)
    return asyncio.run(_run(pipeline, batches, rounds, sub, ndjson))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15, help="best of this many rounds")
    args = parser.parse_args()
    batches = parsed_batches(args.records)
    n = args.records
    every, errors = TapQuery(), TapQuery.build(code="500-599")
    rows = [
        ("tap off", case(batches, args.rounds, False, None)),
        ("tap on, no subscriber", case(batches, args.rounds, True, None)),
        ("1 subscriber, 5xx only (~1/6 match)", case(batches, args.rounds, True, errors)),
        ("1 subscriber, every record", case(batches, args.rounds, True, every)),
        ("1 subscriber, every record + ndjson", case(batches, args.rounds, True, every, True)),
    ]
    base = rows[0][1]
    print(f"{'case':<40}{'us/record':>10}{'tap us/record':>15}")
    for name, secs in rows:
        print(f"{name:<40}{secs / n * 1e6:>10.2f}{(secs - base) / n * 1e6:>15.2f}")
    filt = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), Metrics())
    fresh = [Record({"log": line, "kubernetes": K8S}, 0, "t") for line in lines(TEXT, n)]
    start = time.perf_counter()
    filt.process(fresh)
    print(f"{'(for scale: envoy filter, per line)':<40}"
          f"{(time.perf_counter() - start) / n * 1e6:>10.2f}")


if __name__ == "__main__":
    main()
