"""A client that waits for each ack before sending the next record, through the whole agent.

Such a client (fluent-logger with acks, one record per request) sends nothing while its last
request is unacknowledged. The ack comes only when the records are safe: delivered with the
memory buffer, fsynced with the disk buffer. With the DEFAULT buffer settings it must not
be held to ``flush_interval_secs`` (5 s) or ``fsync_interval_secs`` (1 s) per record: 10
records once took ~50 s (memory) and ~10 s (disk); the bounds below fail that clearly and
leave a slow machine plenty of room. Elapsed times are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import time

import msgpack
import pytest

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.sources.forward import ForwardSource
from tests.integration.agent_harness import load, settled, unique_prefix

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


@pytest.mark.parametrize(("buffer", "bound_secs"), [
    # Memory: the ack waits for delivery; the old open chunk waited 5 s per record.
    ("", 10.0),
    # Disk (fsync: interval, 1 s): the ack waits for the fsync; the old one ~1 s per record.
    ("    buffer: {type: disk}\n", 5.0),
], ids=["memory", "disk"])
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
    assert settled(agent) == RECORDS
    await asyncio.to_thread(es.refresh, f"{prefix}-*")
    assert await asyncio.to_thread(es.count, f"{prefix}-*") == RECORDS
    hits = await asyncio.to_thread(es.request, "POST", f"/{prefix}-*/_search",
                                   {"size": RECORDS, "sort": [{"i": "asc"}]})
    assert [h["_source"]["message"] for h in hits["hits"]["hits"]] == [
        f"waited {i}" for i in range(RECORDS)]
