"""The fault proxy itself, against the real server: what it answers is what was indexed."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import orjson
import pytest

from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import unique_prefix
from tests.integration.matrix.bulkproxy import BulkFaultProxy


@pytest.fixture
def proxy(es_url):
    parts = urlsplit(es_url)
    with BulkFaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as p:
        yield p


def bulk(proxy: BulkFaultProxy, index: str, ids: list[str]) -> tuple[int, dict]:
    body = b"".join(
        orjson.dumps({"create": {"_index": index, "_id": i}}) + b"\n"
        + orjson.dumps({"log": f"line {i}" + (" reject-me" if i.startswith("r") else "")})
        + b"\n" for i in ids)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        conn.request("POST", "/_bulk?filter_path=errors,items.*.status,items.*.error", body,
                     {"content-type": "application/x-ndjson"})
        resp = conn.getresponse()
        return resp.status, orjson.loads(resp.read())
    finally:
        conn.close()


def statuses(answer: dict) -> list[int]:
    return [next(iter(item.values()))["status"] for item in answer["items"]]


def test_partial_answers_per_item_and_indexes_only_what_it_answered_2xx(es_url, proxy):
    index = unique_prefix()
    es = SearchClient(es_url)
    ids = [f"d{n}" for n in range(12)] + ["r1", "r2"]
    proxy.set_mode("partial")
    status, first = bulk(proxy, index, ids)
    assert status == 200 and first["errors"] is True
    got = dict(zip(ids, statuses(first), strict=True))
    assert got["r1"] == got["r2"] == 400
    throttled = {i for i, s in got.items() if s == 429}
    assert throttled and all(got[i] == 201 for i in ids if i[0] == "d" and i not in throttled)
    es.refresh(index)
    assert es.count(index) == len(ids) - 2 - len(throttled)
    # The retry: throttled items go through now, the stored ones answer 409.
    status, second = bulk(proxy, index, [i for i in ids if i[0] == "d"])
    again = statuses(second)
    assert sorted(set(again)) == [201, 409] and again.count(201) == len(throttled)
    es.refresh(index)
    assert es.count(index) == len(ids) - 2
    assert proxy.rejected == {"r1", "r2"}


def test_a_dropped_answer_was_indexed_and_a_reset_was_not(es_url, proxy):
    index = unique_prefix()
    es = SearchClient(es_url)
    proxy.set_mode("flap")  # 1st bulk: indexed, answer dropped; 2nd: reset; 3rd: forwarded
    for ids in (["a"], ["b"]):
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            bulk(proxy, index, ids)
    status, answer = bulk(proxy, index, ["a", "c"])
    assert status == 200 and statuses(answer) == [409, 201]
    es.refresh(index)
    assert es.count(index) == 2
