"""Payloads wait in buffers, so each must cost about its length in memory.

orjson returns bytes with an allocation of 4-16 KiB for a document of a few hundred bytes;
kept as is, a buffer limited to 256 MiB held gigabytes. Measured with tracemalloc, which
sees the real allocation (``sys.getsizeof`` only sees the length).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Sequence

import pytest

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import BulkEncoder
from outputs.forward.request import EntryEncoder
from outputs.logzio.config import LogzioConfig
from outputs.logzio.request import LineEncoder
from outputs.null import NullConfig, NullOutput
from outputs.stdout import StdoutConfig, StdoutOutput
from shipper.payloads import right_sized
from shipper.record import Record

COUNT = 2_000
# Per payload, on top of its length: the bytes object header and allocator rounding.
OVERHEAD = 96

Encode = Callable[[Sequence[Record]], list[bytes]]
ENCODERS: dict[str, Callable[[], Encode]] = {
    "elasticsearch": lambda: BulkEncoder(ElasticsearchConfig(hosts=["http://127.0.0.1:9200"])).encode,
    "logzio": lambda: LineEncoder(LogzioConfig(token="t")).encode,
    "forward": lambda: EntryEncoder().encode,
    "stdout": lambda: StdoutOutput("out", StdoutConfig()).encode,
    "null": lambda: NullOutput("out", NullConfig()).encode,
}


def records(n: int) -> list[Record]:
    kubernetes = {"namespace_name": "shop", "pod_name": "catalog-1", "container_name": "app",
                  "labels": {"app": "catalog", "version": "v1"}}
    return [Record({"log": f"GET /api/v1/items/{i} 200 {'x' * 200}", "stream": "stdout",
                    "time": "2026-11-22T00:00:00.123456789Z", "kubernetes": kubernetes},
                   1_795_305_600_123_456_789 + i, "kubernetes.var.log.containers.app.log",
                   f"0123456789abcdef-{i:x}") for i in range(n)]


def held_bytes(make: Callable[[], list[bytes]]) -> tuple[int, int]:
    """(bytes allocated while ``make``'s result is held, total length of its payloads)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        payloads = make()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held, sum(map(len, payloads))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_payloads_cost_about_their_length(name: str) -> None:
    encode = ENCODERS[name]()
    batch = records(COUNT)
    encode(batch[:10])  # caches (index names, timestamps) filled outside the measurement
    held, length = held_bytes(lambda: encode(batch))
    list_cost = 8 * COUNT + 1024
    assert held <= length + COUNT * OVERHEAD + list_cost, (
        f"{name}: {held / COUNT:.0f} bytes held per payload of {length / COUNT:.0f}")


def test_the_measurement_sees_what_orjson_over_allocates() -> None:
    import orjson

    body = records(1)[0].body
    held, length = held_bytes(lambda: [orjson.dumps(body) for _ in range(COUNT)])
    assert held > length + COUNT * OVERHEAD + 8 * COUNT + 1024  # the problem is real


def test_right_sized_keeps_the_content_and_drops_the_slack() -> None:
    import orjson

    body = records(1)[0].body
    raw = orjson.dumps(body)
    assert right_sized(raw) == raw
    held, length = held_bytes(lambda: [right_sized(orjson.dumps(body)) for _ in range(COUNT)])
    assert held <= length + COUNT * OVERHEAD + 8 * COUNT + 1024
