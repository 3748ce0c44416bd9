import orjson

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import MemoryBuffer
from shipper.metrics import Metrics
from shipper.pipeline import Pipeline, Route
from shipper.record import Batch, Record


class JsonOutput:
    def __init__(self, name):
        self.name = name

    def encode(self, records):
        return [orjson.dumps(r.body) for r in records]


class Upper:
    def process(self, records):
        return [Record({**r.body, "log": r.body["log"].upper()}, r.time_ns, r.tag, r.doc_id)
                for r in records]


def buffer(name):
    return MemoryBuffer(name, BufferConfig(flush_interval_secs=3600), Metrics())


async def test_records_are_filtered_then_routed_by_tag_and_acked_after_both_outputs():
    kube, app = buffer("kube"), buffer("app")
    pipeline = Pipeline([Upper()], [Route(JsonOutput("kube"), kube, "kube.**"),
                                    Route(JsonOutput("app"), app, "app.*")])
    acked = []
    group = AckGroup(on_safe=acked.append)
    records = [Record({"log": "a"}, 0, "kube.var.log.x"), Record({"log": "b"}, 0, "app.web"),
               Record({"log": "c"}, 0, "other")]
    await pipeline.emit(Batch(records, group))
    kube.close()
    app.close()
    k, a = await kube.get(), await app.get()
    assert k.payloads == [b'{"log":"A"}']
    assert a.payloads == [b'{"log":"B"}']
    kube.settle(k)
    assert acked == []
    app.settle(a)
    assert acked == [group]


async def test_a_batch_no_output_wants_is_acked_at_once():
    pipeline = Pipeline([], [Route(JsonOutput("x"), buffer("x"), "nothing.*")])
    acked = []
    group = AckGroup(on_safe=acked.append)
    await pipeline.emit(Batch([Record({"log": "a"}, 0, "kube.a")], group))
    assert acked == [group]
