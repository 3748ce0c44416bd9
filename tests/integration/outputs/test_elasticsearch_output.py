"""The elasticsearch output against a real server (tests/es_server.py), plus a recording HTTP
server for what only the wire shows (headers, compression, 413 splitting)."""

from __future__ import annotations

import gzip
import http.server
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from outputs.elasticsearch import BULK_PATH, ElasticsearchConfig, ElasticsearchOutput
from shipper.demo.embedded_es import free_loopback_port as free_port
from shipper.errors import OutputRetryableError
from shipper.protocols import Status
from shipper.record import Record

DAY_NS = 1_795_305_600 * 1_000_000_000  # 2026-11-22T00:00:00Z


def es(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = orjson.dumps(body) if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def count(url: str, index: str, query: dict[str, Any] | None = None) -> int:
    es(url, "POST", f"/{index}/_refresh")
    body = {"query": query} if query is not None else None
    return int(es(url, "POST", f"/{index}/_count", body)["count"])


@pytest.fixture
def prefix() -> str:
    """A fresh index prefix per test so tests never see each other's documents."""
    return f"it-{uuid.uuid4().hex[:10]}"


def output_for(url: str, prefix: str, **settings: Any) -> ElasticsearchOutput:
    config = ElasticsearchConfig(hosts=[url], logstash_prefix=prefix,
                                 template_name=f"{prefix}-template", **settings)
    return ElasticsearchOutput("es", config)


def pod_record(i: int, body: dict[str, Any] | None = None) -> Record:
    base = {
        "log": f"GET /health {i}", "stream": "stdout", "tag": "kube.web",
        "time": "2026-11-22T01:02:03.123456789Z",
        "kubernetes": {"namespace_name": "default", "pod_name": f"web-{i}",
                       "container_name": "web", "labels": {"app": "web"}},
    }
    return Record(body if body is not None else base, DAY_NS + i, "kube.web", f"doc-{i}")


async def test_start_installs_the_template_for_the_daily_indices(es_url: str,
                                                                 prefix: str) -> None:
    output = output_for(es_url, prefix)
    await output.start()
    try:
        stored = es(es_url, "GET", f"/_index_template/{prefix}-template")
        (template,) = stored["index_templates"]
        body = template["index_template"]
        assert body["index_patterns"] == [f"{prefix}-*"]
        assert body["priority"] > 100
        kubernetes = body["template"]["mappings"]["properties"]["kubernetes"]["properties"]
        assert kubernetes["labels"]["type"] == "flattened"
        assert output.health.ready
        # Installing again is harmless: the PUT overwrites.
        await output.start()
    finally:
        await output.close()


async def test_a_bad_document_is_rejected_alone(es_url: str, prefix: str) -> None:
    output = output_for(es_url, prefix)
    await output.start()
    try:
        bad = pod_record(1, {"log": {"not": "text"}, "stream": "stdout"})
        payloads = output.encode([pod_record(0), bad, pod_record(2)])
        outcome = await output.send(payloads)
        assert outcome.statuses == [Status.DELIVERED, Status.REJECTED, Status.DELIVERED]
        error = outcome.errors[1]
        assert error.status == 400
        assert error.type in ("document_parsing_exception", "mapper_parsing_exception")
        assert "log" in error.reason
        assert count(es_url, f"{prefix}-2026.11.22") == 2
        assert output.describe(payloads[1])["record"]["log"] == {"not": "text"}
    finally:
        await output.close()


async def test_resending_the_same_ids_counts_duplicates_not_new_documents(
        es_url: str, prefix: str) -> None:
    output = output_for(es_url, prefix)
    await output.start()
    try:
        payloads = output.encode([pod_record(i) for i in range(5)])
        first = await output.send(payloads)
        assert first.statuses == [Status.DELIVERED] * 5
        assert first.duplicates == 0
        again = await output.send(payloads)
        assert again.statuses == [Status.DELIVERED] * 5
        assert again.duplicates == 5
        assert count(es_url, f"{prefix}-2026.11.22") == 5
    finally:
        await output.close()


async def test_gzip_bodies_are_indexed(es_url: str, prefix: str) -> None:
    output = output_for(es_url, prefix, gzip=True)
    await output.start()
    try:
        outcome = await output.send(output.encode([pod_record(i) for i in range(20)]))
        assert outcome.statuses == [Status.DELIVERED] * 20
        assert count(es_url, f"{prefix}-2026.11.22") == 20
    finally:
        await output.close()


async def test_a_large_chunk_is_sent_in_several_requests(es_url: str, prefix: str) -> None:
    output = output_for(es_url, prefix, max_request_bytes=2048)
    await output.start()
    try:
        outcome = await output.send(output.encode([pod_record(i) for i in range(50)]))
        assert outcome.statuses == [Status.DELIVERED] * 50
        assert count(es_url, f"{prefix}-2026.11.22") == 50
    finally:
        await output.close()


@pytest.mark.parametrize("request_log", [False, True])
async def test_reused_body_buffers_send_every_request_whole(
        es_url: str, prefix: str, request_log: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies are views of reused buffers; the transport's request log (which decodes bodies)
    gets a copy. Chunks of shrinking size check that no stale bytes of a longer body leak."""
    node_log = logging.getLogger("elastic_transport.node")
    monkeypatch.setattr(node_log, "handlers", [logging.NullHandler()] if request_log else [])
    output = output_for(es_url, prefix, max_request_bytes=4096)
    await output.start()
    try:
        sent = 0
        for size in (60, 25, 7, 1):
            records = [pod_record(sent + i) for i in range(size)]
            outcome = await output.send(output.encode(records))
            assert outcome.statuses == [Status.DELIVERED] * size
            sent += size
        assert count(es_url, f"{prefix}-2026.11.22") == sent
    finally:
        await output.close()


async def test_conflicting_label_spellings_index_and_stay_searchable(es_url: str,
                                                                      prefix: str) -> None:
    output = output_for(es_url, prefix)
    await output.start()
    try:
        plain = {"log": "a", "kubernetes": {"labels": {"app": "web"}}}
        dotted = {"log": "b", "kubernetes": {"labels": {
            "app.kubernetes.io/name": "web", "istio-mixer-type": "telemetry"}}}
        outcome = await output.send(output.encode([pod_record(0, plain),
                                                   pod_record(1, dotted)]))
        assert outcome.statuses == [Status.DELIVERED, Status.DELIVERED]
        index = f"{prefix}-2026.11.22"
        # What Kibana sends for  kubernetes.labels.istio-mixer-type : "telemetry"
        kql = {"bool": {"should": [{"match_phrase": {
            "kubernetes.labels.istio-mixer-type": "telemetry"}}], "minimum_should_match": 1}}
        assert count(es_url, index, kql) == 1
        assert count(es_url, index, {"term": {"kubernetes.labels.app": "web"}}) == 1
        assert count(es_url, index,
                     {"term": {"kubernetes.labels.app.kubernetes.io/name": "web"}}) == 1
    finally:
        await output.close()


async def test_an_unreachable_server_means_retry_not_an_exception() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    output = ElasticsearchOutput("es", ElasticsearchConfig(hosts=[url], request_timeout_secs=5))
    try:
        with pytest.raises(OutputRetryableError):
            await output.start()
        outcome = await output.send(output.encode([pod_record(0), pod_record(1)]))
        assert outcome.statuses == [Status.RETRY, Status.RETRY]
        assert outcome.errors[0].type == "connection_error"
    finally:
        await output.close()


# -- wire-level behaviour, against a recording server ------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers like Elasticsearch; refuses bulk bodies over ``limit`` actions with a 413."""

    requests: list[tuple[str, str, dict[str, str], bytes]]
    limit: int

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> bytes:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.requests.append((self.command, self.path, headers, raw))
        return gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw

    def do_GET(self) -> None:
        self._record()
        self._reply(200, {"tagline": "You Know, for Search", "version": {"number": "8.15.3"}})

    def do_PUT(self) -> None:
        self._record()
        self._reply(200, {"acknowledged": True})

    def do_POST(self) -> None:
        actions = self._record().count(b"\n") // 2
        if actions > self.limit:
            self._reply(413, {"error": "Request Entity Too Large"})
            return
        self._reply(200, {"errors": False, "items": [{"create": {"status": 201}}] * actions})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on the recorded requests instead."""


@pytest.fixture
def recorder() -> Iterator[type[_Recorder]]:
    handler = type("Recorder", (_Recorder,), {"requests": [], "limit": 3})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/prefix"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_the_wire_carries_plain_media_types_auth_and_gzip(
        recorder: type[_Recorder]) -> None:
    config = ElasticsearchConfig(hosts=[recorder.url],  # type: ignore[attr-defined]
                                 api_key="id:key", gzip=True)
    output = ElasticsearchOutput("es", config)
    try:
        await output.start()
        outcome = await output.send(output.encode([pod_record(0), pod_record(1)]))
        assert outcome.statuses == [Status.DELIVERED] * 2
    finally:
        await output.close()
    (get, put, post) = recorder.requests
    assert (get[0], get[1]) == ("GET", "/prefix/")
    assert (put[0], put[1]) == ("PUT", "/prefix/_index_template/shipper-logstash")
    method, path, headers, body = post
    assert (method, path) == ("POST", "/prefix" + BULK_PATH)
    assert headers["content-type"] == "application/x-ndjson"
    assert headers["accept"] == "application/json"
    assert headers["content-encoding"] == "gzip"
    assert headers["authorization"] == "ApiKey aWQ6a2V5"
    assert not any("compatible-with" in v for v in headers.values())
    assert "x-elastic-client-meta" not in headers
    assert gzip.decompress(body).endswith(b"\n")


async def test_a_413_is_split_until_the_server_accepts(recorder: type[_Recorder]) -> None:
    output = ElasticsearchOutput("es", ElasticsearchConfig(hosts=[recorder.url]))  # type: ignore[attr-defined]
    try:
        outcome = await output.send(output.encode([pod_record(i) for i in range(10)]))
    finally:
        await output.close()
    assert outcome.statuses == [Status.DELIVERED] * 10
    sizes = [r[3].count(b"\n") // 2 for r in recorder.requests]
    assert sizes == [10, 5, 2, 3, 5, 2, 3]
