"""Delivery against a scripted fake output: faults a real server cannot be made to produce."""

import asyncio
from collections.abc import Sequence

import orjson

from shipper.acks import AckGroup
from shipper.buffer.config import BufferConfig
from shipper.buffer.memory import MemoryBuffer
from shipper.deadletter import DeadLetterStore
from shipper.delivery import Delivery
from shipper.health import OutputHealth
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Status
from shipper.retry import Backoff

D, R, X = Status.DELIVERED, Status.RETRY, Status.REJECTED


class ScriptedOutput:
    """Answers each attempt from a script of per-payload decisions, keyed by payload."""

    name = "fake"

    def __init__(self, script):
        self.script = script  # list of callables(payloads) -> Outcome
        self.attempts: list[list[bytes]] = []
        self.stored: list[bytes] = []

    def encode(self, records):
        return [orjson.dumps(r) for r in records]

    async def start(self):
        return None

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        self.attempts.append(list(payloads))
        step = self.script[min(len(self.attempts) - 1, len(self.script) - 1)]
        outcome = step(list(payloads))
        if len(outcome.statuses) == len(payloads):
            self.stored += [p for p, s in zip(payloads, outcome.statuses, strict=True) if s is D]
        return outcome

    def describe(self, payload):
        return {"record": orjson.loads(payload)}

    async def close(self):
        return None


def setup(tmp_path, script, **cfg):
    m = Metrics()
    config = BufferConfig(**{"flush_interval_secs": 0.01, **cfg})
    buf = MemoryBuffer("fake", config, m)
    out = ScriptedOutput(script)
    health = OutputHealth("fake", 60, has_backlog=lambda: not buf.empty)
    dlq = DeadLetterStore(tmp_path / "dlq", m)
    d = Delivery(out, buf, dlq, m, config, health, backoff=Backoff(0.001, 0.002))
    return d, buf, out, m, health, dlq


def sample(m, name, **labels):
    return m.registry.get_sample_value(name, labels) or 0


async def run_all(d, buf, payloads, group=None):
    await buf.put(payloads, group)
    buf.close()
    await asyncio.wait_for(d.run(), 5)


async def test_mixed_outcome_retries_only_the_retryable_records(tmp_path):
    def first(p):
        return Outcome([D, R, X, D, R], errors={
            1: ItemError(429, "es_rejected_execution_exception", "busy"),
            2: ItemError(400, "mapper_parsing_exception", "bad field"),
            4: ItemError(503, "unavailable_shards_exception", "no shard")})

    def then_ok(p):
        return Outcome([D] * len(p))

    d, buf, out, m, _, _dlq = setup(tmp_path, [first, then_ok])
    payloads = [orjson.dumps({"n": i}) for i in range(5)]
    await run_all(d, buf, payloads)
    assert out.attempts[1] == [payloads[1], payloads[4]]
    assert sorted(out.stored) == sorted([payloads[0], payloads[3], payloads[1], payloads[4]])
    lines = (tmp_path / "dlq").glob("fake-*.ndjson")
    dead = [orjson.loads(x) for f in lines for x in f.read_bytes().splitlines()]
    assert dead == [{**dead[0], "record": {"n": 2}}]
    assert dead[0]["error"] == {"status": 400, "type": "mapper_parsing_exception",
                                "reason": "bad field"}
    assert sample(m, "shipper_records_delivered_total", output="fake") == 4
    assert sample(m, "shipper_records_dead_lettered_total", output="fake",
                  reason="mapper_parsing_exception") == 1
    assert sample(m, "shipper_records_retried_total", output="fake", reason="429") == 2


async def test_a_429_storm_is_retried_until_it_passes_and_nothing_is_lost(tmp_path):
    storm = [lambda p: Outcome.all(len(p), R, ItemError(429, "too_many", "slow down"),
                                   http_status=429)] * 25
    d, buf, out, _m, _, _ = setup(tmp_path, [*storm, lambda p: Outcome([D] * len(p))])
    payloads = [b'{"a":1}', b'{"a":2}']
    await run_all(d, buf, payloads)
    assert len(out.attempts) == 26
    assert out.stored == payloads


async def test_dropped_connections_keep_the_ack_back_until_delivery(tmp_path):
    gate = asyncio.Event()
    calls = []

    def conn_error(p):
        calls.append(1)
        if len(calls) >= 3:
            gate.set()
        return Outcome.all(len(p), R, ItemError(0, "connection", "reset by peer"))

    d, buf, out, _, _, _ = setup(tmp_path, [conn_error, conn_error, conn_error,
                                            lambda p: Outcome([D] * len(p))])
    acked = []
    g = AckGroup(on_safe=acked.append)
    await buf.put([b'{"x":1}'], g)
    g.seal()
    assert acked == []
    buf.close()
    await asyncio.wait_for(d.run(), 5)
    assert acked == [g]
    assert len(out.attempts) == 4


async def test_credentials_rejected_marks_the_output_not_ready_but_keeps_data(tmp_path):
    seen = asyncio.Event()

    def unauthorized(p):
        seen.set()
        return Outcome.all(len(p), R, ItemError(401, "security_exception", "bad creds"),
                           http_status=401)

    d, buf, out, _, health, _ = setup(tmp_path, [unauthorized])
    await buf.put([b'{"x":1}'], None)
    task = asyncio.create_task(d.run())
    await asyncio.wait_for(seen.wait(), 2)
    await asyncio.sleep(0.01)
    assert health.credentials_rejected
    assert "credentials rejected" in health.problem()
    assert out.stored == []
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not buf.empty  # the chunk went back, unsettled: nothing was dropped


async def test_duplicates_count_as_delivered(tmp_path):
    d, buf, _, m, _, _ = setup(tmp_path, [lambda p: Outcome([D, D], duplicates=1)])
    await run_all(d, buf, [b'{"a":1}', b'{"a":2}'])
    assert sample(m, "shipper_records_delivered_total", output="fake") == 1
    assert sample(m, "shipper_records_duplicate_total", output="fake") == 1


async def test_a_short_outcome_is_treated_as_retry_not_as_success(tmp_path):
    d, buf, out, _, _, _ = setup(tmp_path, [lambda p: Outcome([D]),
                                            lambda p: Outcome([D] * len(p))])
    await run_all(d, buf, [b'{"a":1}', b'{"a":2}'])
    assert len(out.attempts) == 2
    assert out.attempts[1] == [b'{"a":1}', b'{"a":2}']
