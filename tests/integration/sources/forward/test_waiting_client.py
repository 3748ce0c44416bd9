"""A client that waits for each ack before sending the next record, through the whole agent.

Such a client (fluent-logger with acks, one record per request) sends nothing while its last
request is unacknowledged. The ack comes only when the records are safe: delivered with the
memory buffer, fsynced with the disk buffer. With the DEFAULT buffer settings it must not
be held to ``flush_interval_secs`` (5 s) or ``fsync_interval_secs`` (1 s) per record: 10
records once took ~50 s (memory) and ~10 s (disk); the bounds below fail that clearly and
leave a slow machine plenty of room. Elapsed times are printed (``pytest -s``).

Two clients: a raw msgpack one (one Message-mode request per record), and the real Node.js
``fluent-logger`` with ``requireAckResponse``, emitting each record from the callback of the
previous one, which runs when its ack arrived.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgpack
import pytest

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.sources.forward import ForwardSource
from tests.integration.agent_harness import load, settled, unique_prefix
from tests.integration.sources.forward.conftest import read_replies, run_node, running, wait_for

CONFIG = """\
state_dir: {state}
sources:
  fwd:
    type: forward
    listen: "127.0.0.1:0"
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
{buffer}telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""
RECORDS = 10
FIRST_SECOND = 1_795_309_200  # 2026-11-21T22:20:00Z
BUFFERS = [
    # Memory: the ack waits for delivery; the old open chunk waited 5 s per record.
    pytest.param("", 10.0, id="memory"),
    # Disk (fsync: interval, 1 s): the ack waits for the fsync; the old one ~1 s per record.
    pytest.param("    buffer: {type: disk}\n", 5.0, id="disk"),
]
NODE_SCRIPT = r"""
const FluentLogger = require('fluent-logger');
const cfg = __CONFIG__;
const sender = FluentLogger.createFluentSender('app', {host: '127.0.0.1', port: cfg.port,
  timeout: 3.0, reconnectInterval: 600000, requireAckResponse: true,
  ackResponseTimeout: 60000, internalLogger: {info() {}, error(...a) { console.error(...a); }}});
const began = Date.now();
function next(i) {
  if (i === cfg.n) {
    const elapsed = (Date.now() - began) / 1000;
    sender.end(null, null, () => { console.log(JSON.stringify({acked: i, elapsed})); });
    return;
  }
  // The callback runs once the server acknowledged this record: only then send the next.
  sender.emit('waiting', {message: 'waited ' + i, i: i},
              new FluentLogger.EventTime(cfg.first + i, 0),
              (err) => { if (err) { console.error(String(err)); process.exit(1); } next(i + 1); });
}
next(0);
"""


async def send_one_at_a_time(port: int, n: int) -> list[float]:
    """Message-mode requests with a ``chunk`` option, each sent only after the previous ack
    (what a client that waits for every ack does); the seconds each ack took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    unpacker = msgpack.Unpacker(raw=False)
    waits: list[float] = []
    try:
        for i in range(n):
            chunk = f"waiting-client-{i}"
            began = time.monotonic()
            writer.write(msgpack.packb(["app.waiting", FIRST_SECOND + i,
                                        {"message": f"waited {i}", "i": i},
                                        {"chunk": chunk}]))
            await writer.drain()
            replies: list[dict[str, str]] = []
            while not replies:
                data = await reader.read(4096)
                assert data, f"connection closed before the ack of request {i}"
                unpacker.feed(data)
                replies += list(unpacker)
            assert replies == [{"ack": chunk}]
            waits.append(time.monotonic() - began)
    finally:
        writer.close()
        await writer.wait_closed()
    return waits


@pytest.mark.parametrize(("buffer", "bound_secs"), BUFFERS)
async def test_a_client_waiting_for_each_ack_is_acked_promptly_with_default_buffers(
        tmp_path, es_url, buffer: str, bound_secs: float) -> None:
    prefix = unique_prefix()
    agent = Agent(load(CONFIG.format(state=tmp_path / "state", url=es_url, prefix=prefix,
                                     buffer=buffer)))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    es = SearchClient(es_url)
    try:
        forward = next(s for s in agent.sources if isinstance(s, ForwardSource))
        async with asyncio.timeout(30):
            await forward.ready.wait()
        began = time.monotonic()
        try:
            async with asyncio.timeout(bound_secs):
                waits = await send_one_at_a_time(forward.port, RECORDS)
        except TimeoutError:
            pytest.fail(f"{RECORDS} records sent one ack at a time were not all acked "
                        f"within {bound_secs} s")
        elapsed = time.monotonic() - began
        print(f"\n{RECORDS} records acked one at a time ({buffer.strip() or 'memory'}): "
              f"{elapsed:.3f} s, slowest ack {max(waits):.3f} s")
        assert len(waits) == RECORDS
        assert elapsed < bound_secs, f"{RECORDS} acks took {elapsed:.1f} s"
        if not buffer:
            # Memory buffer: an ack means delivered, so everything is in the index already.
            await asyncio.to_thread(es.refresh, f"{prefix}-*")
            assert await asyncio.to_thread(es.count, f"{prefix}-*") == RECORDS
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    # Disk buffer: acknowledged = on disk; the graceful stop delivered the rest.
    await assert_indexed_once(agent, es, prefix)


@pytest.mark.parametrize(("buffer", "bound_secs"), BUFFERS)
async def test_node_fluent_logger_waiting_for_each_ack_with_default_buffers(
        tmp_path, es_url, node_fluent_logger: Path, buffer: str, bound_secs: float) -> None:
    prefix = unique_prefix()
    agent = Agent(load(CONFIG.format(state=tmp_path / "state", url=es_url, prefix=prefix,
                                     buffer=buffer)))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        forward = next(s for s in agent.sources if isinstance(s, ForwardSource))
        async with asyncio.timeout(30):
            await forward.ready.wait()
        config = {"port": forward.port, "n": RECORDS, "first": FIRST_SECOND}
        # The node process is killed (and the test fails) once the bound has passed.
        out = await run_node(node_fluent_logger,
                             NODE_SCRIPT.replace("__CONFIG__", json.dumps(config)),
                             timeout=bound_secs + 5)
        result = json.loads(out.strip().splitlines()[-1])
        print(f"\nnode fluent-logger, {RECORDS} records acked one at a time "
              f"({buffer.strip() or 'memory'}): {result['elapsed']:.3f} s")
        assert result["acked"] == RECORDS
        assert result["elapsed"] < bound_secs, f"{RECORDS} acks took {result['elapsed']} s"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    await assert_indexed_once(agent, es=SearchClient(es_url), prefix=prefix)


async def assert_indexed_once(agent: Agent, es: SearchClient, prefix: str) -> None:
    """Every record settled by the agent and in the index once, in order of ``i``."""
    assert settled(agent) == RECORDS
    await asyncio.to_thread(es.refresh, f"{prefix}-*")
    assert await asyncio.to_thread(es.count, f"{prefix}-*") == RECORDS
    hits = await asyncio.to_thread(es.request, "POST", f"/{prefix}-*/_search",
                                   {"size": RECORDS, "sort": [{"i": "asc"}]})
    assert [h["_source"]["message"] for h in hits["hits"]["hits"]] == [
        f"waited {i}" for i in range(RECORDS)]


async def test_only_requests_with_a_chunk_option_make_urgent_batches() -> None:
    """The forward source marks a batch urgent only when its client waits for the ack; a
    request without ``chunk`` (fluent-logger without acks, the Docker driver) is not."""
    async with running(max_batch_records=2) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            entries = [[FIRST_SECOND + i, {"i": i}] for i in range(5)]
            writer.write(msgpack.packb(["no.ack", entries]))
            writer.write(msgpack.packb(["with.ack", entries, {"chunk": "c1"}]))
            await writer.drain()
            assert await read_replies(reader, 1) == [{"ack": "c1"}]
            await wait_for(lambda: len(srv.collector.records) == 10, what="10 records")
        finally:
            writer.close()
            await writer.wait_closed()
        # max_batch_records: 2, so each request became three batches.
        assert [(b.records[0].tag, b.ack is not None and b.ack.urgent)
                for b in srv.collector.batches] == [
            ("no.ack", False)] * 3 + [("with.ack", True)] * 3
