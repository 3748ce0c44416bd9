"""Delivery when the dead-letter store cannot be written: wait and retry, never exit."""

import asyncio
import errno
import logging

import orjson

from outputs.elasticsearch.request import decode_payload
from shipper.acks import AckGroup
from shipper.deadletter import DeadLetterStore
from shipper.logs import repeat_key
from shipper.protocols import ItemError, Outcome, Status
from tests.unit.test_deadletter import FaultyFiles
from tests.unit.test_delivery import sample, setup

D, R, X = Status.DELIVERED, Status.RETRY, Status.REJECTED


async def until(predicate, what: str, tries: int = 500) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def first(p):
    return Outcome([D, X, R], errors={1: ItemError(400, "mapper_parsing_exception", "bad"),
                                      2: ItemError(503, "unavailable", "later")})


def then_ok(p):
    return Outcome([D] * len(p))


async def test_a_failing_dead_letter_write_holds_the_chunk_and_is_retried_alone(
        tmp_path, caplog):
    caplog.set_level(logging.INFO)
    d, buf, out, m, health, _ = setup(tmp_path, [first, then_ok])
    files = FaultyFiles()
    files.faults["write"] = errno.ENOSPC
    d._dlq = DeadLetterStore(tmp_path / "dlq", m, files=files)
    payloads = [orjson.dumps({"n": i}) for i in range(3)]
    acked = []
    group = AckGroup(on_safe=acked.append)
    await buf.put(payloads, group)
    group.seal()
    buf.close()
    task = asyncio.create_task(d.run())
    errors = ("shipper_storage_errors_total",
              {"component": "dead_letter", "output": "fake", "op": "write"})
    await until(lambda: (m.registry.get_sample_value(*errors) or 0) >= 3, "retried writes")
    assert not task.done(), "a storage fault never ends delivery"
    assert acked == [], "the chunk is not settled while its rejects are not durable"
    assert len(out.attempts) == 1, "delivered records are not sent again"
    problem = health.problem()
    assert problem is not None and "dead-letter store" in problem
    assert "No space left on device" in problem
    failed = [r for r in caplog.records if getattr(r, "event", "") == "dead_letter_write_failed"]
    assert len(failed) >= 3
    # One condition, one repeat key: the agent's log handler writes it once per 10 s.
    assert len({repeat_key(r) for r in failed}) == 1
    assert sample(m, "shipper_records_dead_lettered_total", output="fake",
                  reason="mapper_parsing_exception") == 0

    del files.faults["write"]
    await asyncio.wait_for(task, 5)
    assert acked == [group]
    assert out.attempts[1] == [payloads[2]], "then only the retryable record is sent"
    dead = [orjson.loads(x) for f in (tmp_path / "dlq").glob("*.ndjson")
            for x in f.read_bytes().splitlines()]
    assert [x["record"] for x in dead] == [{"n": 1}], "the reject is written once"
    assert health.problem() is None
    assert any(getattr(r, "event", "") == "dead_letter_write_recovered"
               for r in caplog.records)


async def test_a_dead_letter_directory_that_is_a_file_keeps_the_agent_running(tmp_path):
    (tmp_path / "dlq").write_text("in the way")
    d, buf, _out, m, health, _ = setup(tmp_path, [first, then_ok])
    await buf.put([orjson.dumps({"n": i}) for i in range(3)], None)
    buf.close()
    task = asyncio.create_task(d.run())
    errors = ("shipper_storage_errors_total",
              {"component": "dead_letter", "output": "fake", "op": "mkdir"})
    await until(lambda: (m.registry.get_sample_value(*errors) or 0) >= 2, "retried mkdir")
    assert not task.done()
    assert "File exists" in (health.problem() or "")
    (tmp_path / "dlq").unlink()
    await asyncio.wait_for(task, 5)
    assert len(list((tmp_path / "dlq").glob("*.ndjson"))) == 1


async def test_cancelled_while_waiting_for_the_store_the_chunk_goes_back(tmp_path):
    d, buf, _out, m, _, _ = setup(tmp_path, [first, then_ok])
    files = FaultyFiles()
    files.faults["fsync"] = errno.EIO
    d._dlq = DeadLetterStore(tmp_path / "dlq", m, files=files)
    await buf.put([orjson.dumps({"n": i}) for i in range(3)], None)
    task = asyncio.create_task(d.run())
    errors = ("shipper_storage_errors_total",
              {"component": "dead_letter", "output": "fake", "op": "fsync"})
    await until(lambda: (m.registry.get_sample_value(*errors) or 0) >= 1, "a failed fsync")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not buf.empty, "unsettled: the whole chunk is sent again on the next start"


async def test_a_dead_lettered_record_is_logged_with_output_reason_and_file(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    d, buf, _out, _m, _health, _ = setup(tmp_path, [first, then_ok])
    payloads = [orjson.dumps({"n": i}) for i in range(3)]
    group = AckGroup(on_safe=lambda g: None)
    await buf.put(payloads, group)
    group.seal()
    buf.close()
    await asyncio.wait_for(d.run(), 5)
    lines = [r for r in caplog.records if getattr(r, "event", "") == "records_dead_lettered"]
    assert len(lines) == 1
    line = lines[0]
    assert line.levelno == logging.WARNING  # warnings go through the repeat limiter
    assert line.output == "fake" and line.records == 1 and line.status == 400
    assert line.reason == "mapper_parsing_exception: bad"
    files = list(tmp_path.rglob("*.ndjson"))
    assert [str(f) for f in files] == [line.dead_letter_file]
    assert "mapper_parsing_exception" in line.getMessage()


async def test_dead_letter_lines_of_one_kind_share_a_repeat_key(tmp_path, caplog):
    """Rejects of one kind are one condition whatever their reasons' text: written once per
    window by the agent's log handler, the rest counted."""
    caplog.set_level(logging.INFO)
    for n, why in enumerate(("bad field [a]", "bad field [b]")):
        def reject(p, why=why):
            return Outcome([D, X, D], errors={1: ItemError(400, "mapper_parsing_exception", why)})

        d, buf, _out, _m, _health, _ = setup(tmp_path / str(n), [reject])
        group = AckGroup(on_safe=lambda g: None)
        await buf.put([orjson.dumps({"n": i}) for i in range(3)], group)
        group.seal()
        buf.close()
        await asyncio.wait_for(d.run(), 5)
    lines = [r for r in caplog.records if getattr(r, "event", "") == "records_dead_lettered"]
    assert [r.reason for r in lines] == ["mapper_parsing_exception: bad field [a]",
                                         "mapper_parsing_exception: bad field [b]"]
    assert len({repeat_key(r) for r in lines}) == 1


async def test_records_rejected_again_after_a_restart_are_dead_lettered_once(tmp_path):
    """A crash before the positions were saved: the same lines are read, sent and rejected
    again. The new run settles them (acknowledged) without a second dead-letter line."""
    def bulk(i):  # an Elasticsearch bulk payload: action line, then the document
        return b'{"create":{"_index":"logs","_id":"f1-%x"}}\n{"n":%d}' % (i, i)

    def reject_all(p):
        return Outcome([X] * len(p), errors={
            k: ItemError(400, "mapper_parsing_exception", "bad") for k in range(len(p))})

    counts = []
    for _run in range(2):
        d, buf, out, m, _, _ = setup(tmp_path, [reject_all])
        out.describe = decode_payload
        acked = []
        group = AckGroup(on_safe=acked.append)
        await buf.put([bulk(i) for i in range(5)], group)
        group.seal()
        buf.close()
        await asyncio.wait_for(d.run(), 5)
        assert acked == [group], "settled in both runs"
        counts.append((sample(m, "shipper_records_dead_lettered_total", output="fake",
                              reason="mapper_parsing_exception"),
                       sample(m, "shipper_records_dead_lettered_duplicate_total",
                              output="fake")))
    lines = [orjson.loads(x) for f in (tmp_path / "dlq").glob("fake-*.ndjson")
             for x in f.read_bytes().splitlines()]
    assert sorted(line["_id"] for line in lines) == [f"f1-{i:x}" for i in range(5)]
    assert counts == [(5, 0), (0, 5)]
