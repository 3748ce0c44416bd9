"""A full disk under both the disk buffer and the dead-letter store, every record rejected:
nothing is lost or exits, and everything settles by itself once space returns."""

from __future__ import annotations

import asyncio
import errno

import orjson

from shipper.acks import AckGroup
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Status
from shipper.retry import Backoff
from tests.integration.buffer.helpers import FaultyStorage, new_buffer, segments
from tests.unit.test_deadletter import FaultyFiles


class RejectEverything:
    name = "out"

    def __init__(self) -> None:
        self.attempts = 0

    async def start(self) -> None:
        return None

    async def send(self, payloads):
        self.attempts += 1
        return Outcome.all(len(payloads), Status.REJECTED,
                           ItemError(400, "mapper_parsing_exception", "bad"), http_status=200)

    def describe(self, payload):
        return {"record": orjson.loads(payload)}


async def until(predicate, what: str, tries: int = 1000) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_full_disk_with_every_record_rejected_recovers_once_space_returns(tmp_path):
    metrics, storage, files = Metrics(), FaultyStorage(), FaultyFiles()
    buf = new_buffer(tmp_path / "buffer", metrics, storage=storage, fsync="interval",
                     fsync_interval_secs=0.02, flush_interval_secs=0.01)
    store = DeadLetterStore(tmp_path / "dead-letter", metrics, files=files)
    output = RejectEverything()
    health = OutputHealth("out", 300, has_backlog=lambda: not buf.empty,
                          storage_problem=buf.storage_problem)
    delivery = Delivery(output, buf, store, metrics, buf._config, health,
                        backoff=Backoff(0.005, 0.02))
    await buf.open()
    acked: list[AckGroup] = []
    first = AckGroup(on_safe=acked.append)
    await buf.put([orjson.dumps({"n": i}) for i in range(8)], first)
    first.seal()
    await until(lambda: acked == [first], "the first records durable in the buffer")

    files.faults["write"] = errno.ENOSPC  # the disk fills up
    storage.faults["create"] = storage.faults["pwrite"] = errno.ENOSPC
    run = asyncio.create_task(delivery.run())
    later = AckGroup(on_safe=acked.append)
    put = asyncio.create_task(buf.put([orjson.dumps({"n": i}) for i in range(8, 12)], later))
    errors = ("shipper_storage_errors_total",
              {"component": "dead_letter", "output": "out", "op": "write"})
    await until(lambda: (metrics.registry.get_sample_value(*errors) or 0) >= 5,
                "dead-letter writes failing")
    assert not run.done() and not put.done(), "delivery waits, the input pauses"
    assert len(segments(tmp_path / "buffer")) == 2, "rejected records kept in the buffer"
    assert "dead-letter store" in (health.problem() or "")
    assert [f.stat().st_size for f in (tmp_path / "dead-letter").glob("*.ndjson")] in ([], [0])

    files.faults.clear()  # an operator frees space
    storage.faults.clear()
    await asyncio.wait_for(put, 10)
    later.seal()
    buf.close()
    await asyncio.wait_for(run, 10)
    dead = [orjson.loads(line)["record"]["n"]
            for f in (tmp_path / "dead-letter").glob("*.ndjson")
            for line in f.read_bytes().splitlines()]
    assert sorted(dead) == list(range(12)), "every rejected record written, once"
    assert acked == [first, later]
    await until(lambda: buf.bytes_used == 0, "segments deleted")
    assert segments(tmp_path / "buffer") == []
    assert health.problem() is None
    await buf.shutdown()
