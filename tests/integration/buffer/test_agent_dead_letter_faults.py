"""The whole agent with a dead-letter store it cannot write: it keeps running, says why, and
writes the rejects once it can."""

from __future__ import annotations

import asyncio
import time

import orjson

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import config_text, load, settled, unique_prefix


async def test_an_unwritable_dead_letter_store_holds_the_rejects_until_it_can_be_written(
        es_url, tmp_path):
    prefix = unique_prefix()
    logs = tmp_path / "containers"
    logs.mkdir()
    lines = [b"2026-11-21T12:00:00.5Z stdout F rejected line\n"]
    lines += [f"2026-11-22T00:00:0{i}.1Z stdout F good line {i}\n".encode() for i in range(5)]
    (logs / f"web-1_default_app-{'b' * 64}.log").write_bytes(b"".join(lines))
    es = SearchClient(es_url)
    es.request("PUT", f"/{prefix}-2026.11.21",
               {"mappings": {"properties": {"stream": {"type": "long"}}}})
    state = tmp_path / "state"
    state.mkdir()
    (state / "dead-letter").write_text("a file where the directory should be")  # EEXIST
    agent = Agent(load(config_text(state, logs, es_url, prefix)))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        deadline = time.monotonic() + 60
        errors = ("shipper_storage_errors_total",
                  {"component": "dead_letter", "output": "es", "op": "mkdir"})
        while (agent.metrics.registry.get_sample_value(*errors) or 0) < 2:
            assert not task.done(), "a dead-letter fault must not stop the agent"
            assert time.monotonic() < deadline, "no dead-letter write was attempted"
            await asyncio.sleep(0.05)
        problems = agent.telemetry.readiness_problems()
        assert any("dead-letter store cannot be written" in p for p in problems), problems
        assert settled(agent) == 5, "the good records are delivered, the reject waits"

        (state / "dead-letter").unlink()  # the operator fixes it
        while settled(agent) < 6:
            assert not task.done()
            assert time.monotonic() < deadline, "the reject was never written"
            await asyncio.sleep(0.05)
        assert agent.telemetry.readiness_problems() == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    [dead_file] = (state / "dead-letter").glob("*.ndjson")
    [dead] = [orjson.loads(x) for x in dead_file.read_bytes().splitlines()]
    assert dead["record"]["log"] == "rejected line"
