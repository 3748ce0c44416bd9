"""A batch cut short on a full disk buffer is never acknowledged, though part of it is on disk."""

import asyncio

import orjson
import pytest

from shipper.acks import AckGroup
from shipper.pipeline import Pipeline, Route
from shipper.record import Batch, Record
from tests.integration.buffer.helpers import new_buffer, stored_payloads


class JsonOutput:
    name = "out"

    def encode(self, records):
        return [orjson.dumps(r.body) for r in records]


async def test_a_put_cancelled_on_a_full_disk_buffer_leaves_the_batch_unacknowledged(tmp_path):
    buf = new_buffer(tmp_path, total_limit_bytes=400, chunk_limit_records=2)
    await buf.open()
    try:
        pipeline = Pipeline([], [Route(JsonOutput(), buf)])
        acked: list[AckGroup] = []
        group = AckGroup(on_safe=acked.append)
        records = [Record({"log": f"line-{i:04d}"}, 0, "kube.a") for i in range(40)]
        task = asyncio.create_task(pipeline.emit(Batch(records, group)))
        for _ in range(200):  # bounded: until part of the batch is on disk and put blocks
            await asyncio.sleep(0.01)
            if buf.bytes_used:
                break
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        buf.close()
        await buf.shutdown()  # the final fsync releases every hold the buffer took
        on_disk = stored_payloads(tmp_path)
        assert 0 < len(on_disk) < len(records)
        assert acked == [] and group.abandoned
    finally:
        buf.close()
