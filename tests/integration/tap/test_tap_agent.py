"""The tap in a running agent: exactly the matching records, and never a brake on shipping.

Generated istio-proxy traffic (``shipper.demo.loggen``) is tailed, parsed and shipped to the
real Elasticsearch while /tap clients watch; what Elasticsearch indexed is the oracle.
"""

from __future__ import annotations

import asyncio
import socket

from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from shipper.record import Record
from shipper.tap.event import tap_event
from shipper.tap.query import TapQuery
from tests.integration.tap.conftest import StreamReader, link_tree, until


def indexed_access_logs(es_url: str, prefix: str) -> list[dict]:
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    body = {"size": 10_000, "query": {"exists": {"field": "envoy.start_time"}}}
    hits = es.request("POST", f"/{prefix}-*/_search", body)["hits"]["hits"]
    return [h["_source"] for h in hits]


def key(event: dict) -> str:
    envoy = event["envoy"]
    return repr([event.get("pod"), envoy.get("request_id"), envoy.get("start_time"),
                 envoy.get("path"), envoy.get("duration_ms"), envoy.get("bytes_sent")])


async def test_each_subscriber_gets_exactly_the_records_its_filter_selects(
        start_agent, tmp_path, es_url):
    manifest = generate_node_logs(tmp_path / "generated", seed=5, lines=4000)
    node = await start_agent(queue_records=100_000)
    port = node.agent.telemetry.port
    queries = {
        "get_5xx": "method=GET&code=500-599",
        "catalog": "namespace=shop&workload=catalog",
        "inbound_4xx_429": "direction=inbound&code=400-499",
        "everything": "",
    }
    readers = {name: await asyncio.to_thread(StreamReader, port, q)
               for name, q in queries.items()}
    await until(lambda: node.agent.tap.subscribers == len(queries), "all subscribed")
    link_tree(tmp_path / "generated", node.logs)
    await node.wait_settled(manifest.total_records)
    await node.stop()  # ends the streams cleanly
    got = {name: await asyncio.to_thread(r.join) for name, r in readers.items()}

    docs = indexed_access_logs(es_url, node.prefix)
    assert len(docs) > 1000
    # Independent of the tap's own code: Elasticsearch counts the GET 5xx requests.
    es = SearchClient(es_url)
    get_5xx = es.count(f"{node.prefix}-*", {"bool": {"filter": [
        {"term": {"envoy.method": "GET"}},
        {"range": {"envoy.response_code": {"gte": 500, "lte": 599}}}]}})
    assert get_5xx > 0 and len(got["get_5xx"]) == get_5xx
    assert all(e["envoy"]["method"] == "GET" and 500 <= e["envoy"]["response_code"] <= 599
               for e in got["get_5xx"])
    # Every indexed access log was tapped once, nothing else; each filter got its share.
    indexed = [tap_event(Record(doc, 0, doc["tag"])) for doc in docs]
    assert sorted(map(key, got["everything"])) == sorted(map(key, indexed))
    for name in ("catalog", "inbound_4xx_429"):
        query = TapQuery.parse(queries[name])
        expected = [e for e in indexed if query.matches(e)]
        assert expected and sorted(map(key, got[name])) == sorted(map(key, expected)), name
    assert {e["direction"] for e in got["catalog"]} == {"inbound", "outbound"}
    assert all(e["workload"] == "catalog" or e["peer"].get("service") == "catalog"
               for e in got["catalog"])
    assert all(r.clean_end for r in readers.values())
    assert node.sample("shipper_tap_records_total", result="dropped") == 0


async def test_a_reader_that_reads_nothing_loses_tap_records_not_shipping(
        start_agent, tmp_path):
    manifest = generate_node_logs(tmp_path / "generated", seed=6, lines=8000)
    node = await start_agent(queue_records=50)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
    await asyncio.to_thread(stuck.connect, ("127.0.0.1", node.agent.telemetry.port))
    stuck.sendall(b"GET /tap HTTP/1.1\r\nHost: t\r\n\r\n")
    await until(lambda: node.agent.tap.subscribers == 1, "subscribed")
    link_tree(tmp_path / "generated", node.logs)
    await node.wait_settled(manifest.total_records)
    # Every record was delivered while the tap reader was stuck, and the tap counted its loss.
    assert node.sample("shipper_records_delivered_total", output="es") + \
        node.sample("shipper_records_duplicate_total", output="es") == manifest.total_records
    dropped = node.sample("shipper_tap_records_total", result="dropped")
    sent = node.sample("shipper_tap_records_total", result="sent")
    parsed = node.sample("shipper_filter_records_total", filter="envoy", result="parsed")
    assert dropped > 0 and sent + dropped <= parsed
    stuck.close()
    await until(lambda: node.agent.tap.subscribers == 0, "the stuck client's slot is freed",
                timeout_secs=70)
