"""The output glue against a scripted transport: no sockets, every answer canned."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout

from outputs.elasticsearch import (
    BULK_PATH,
    ElasticsearchConfig,
    ElasticsearchOutput,
    auth_headers,
    node_configs,
)
from shipper.errors import OutputCredentialsError, OutputPermanentError, OutputRetryableError
from shipper.metrics import Metrics
from shipper.protocols import Status
from shipper.record import Record

ES_ROOT = orjson.dumps({"tagline": "You Know, for Search",
                        "version": {"number": "8.15.3", "build_flavor": "default"}})
OS_ROOT = orjson.dumps({"version": {"distribution": "opensearch", "number": "2.16.0"}})
DAY_NS = 1_795_305_600 * 1_000_000_000  # 2026-11-22T00:00:00Z


@dataclass
class Sent:
    method: str
    target: str
    body: bytes | None
    headers: dict[str, str]

    def ndjson(self) -> bytes:
        assert self.body is not None
        if self.headers.get("content-encoding") == "gzip":
            return gzip.decompress(self.body)
        return self.body

    def actions(self) -> int:
        return self.ndjson().count(b"\n") // 2


Answer = tuple[int, bytes] | tuple[int, bytes, dict[str, str]] | Exception
Responder = Callable[[Sent], Answer]


class ScriptedTransport:
    """Stands in for elastic_transport.Transport: records requests, replays answers."""

    def __init__(self, *answers: Answer | Responder) -> None:
        self.answers = list(answers)
        self.sent: list[Sent] = []
        self.closed = False

    def perform_request(self, method: str, target: str, *, body: bytes | memoryview | None = None,
                        headers: dict[str, str] | None = None,
                        request_timeout: float | None = None) -> Any:
        # A copy, as a real transport is done with the body when the call returns: bulk
        # bodies are views of a buffer the output reuses.
        sent = Sent(method, target, None if body is None else bytes(body),
                    {k.lower(): v for k, v in (headers or {}).items()})
        self.sent.append(sent)
        answer = self.answers[0] if len(self.answers) == 1 else self.answers.pop(0)
        if callable(answer):
            answer = answer(sent)
        if isinstance(answer, Exception):
            raise answer
        status, body_out, *rest = answer
        headers_out = rest[0] if rest else {}
        return SimpleNamespace(meta=SimpleNamespace(status=status, headers=headers_out),
                               body=body_out)

    def close(self) -> None:
        self.closed = True


def created(sent: Sent) -> Answer:
    items = [{"create": {"status": 201}}] * sent.actions()
    return 200, orjson.dumps({"errors": False, "items": items})


def records(n: int, size: int = 10) -> list[Record]:
    return [Record({"log": "x" * size}, DAY_NS + i, "kube.t", f"id-{i}") for i in range(n)]


def make(transport: ScriptedTransport, metrics: Metrics | None = None,
         **settings: Any) -> ElasticsearchOutput:
    return ElasticsearchOutput("es", ElasticsearchConfig(**settings), metrics,
                               transport=transport)  # type: ignore[arg-type]


async def test_send_posts_ndjson_with_plain_media_types() -> None:
    transport = ScriptedTransport(created)
    output = make(transport)
    payloads = output.encode(records(3))
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.DELIVERED] * 3
    (sent,) = transport.sent
    assert (sent.method, sent.target) == ("POST", BULK_PATH)
    assert sent.headers["content-type"] == "application/x-ndjson"
    assert sent.headers["accept"] == "application/json"
    assert "compatible-with" not in str(sent.headers)
    assert "content-encoding" not in sent.headers
    assert sent.body == b"".join(payloads)


async def test_gzip_compresses_the_body_and_says_so() -> None:
    transport = ScriptedTransport(created)
    output = make(transport, gzip=True)
    payloads = output.encode(records(3))
    assert (await output.send(payloads)).statuses == [Status.DELIVERED] * 3
    (sent,) = transport.sent
    assert sent.headers["content-encoding"] == "gzip"
    assert gzip.decompress(sent.body or b"") == b"".join(payloads)


async def test_a_chunk_over_max_request_bytes_goes_in_several_requests() -> None:
    transport = ScriptedTransport(created)
    output = make(transport)
    payloads = output.encode(records(6))
    output = make(transport, max_request_bytes=len(payloads[0]) * 2)
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.DELIVERED] * 6
    assert [s.actions() for s in transport.sent] == [2, 2, 2]


async def test_a_413_splits_the_request_in_halves_until_it_fits() -> None:
    def small_only(sent: Sent) -> Answer:
        return (413, b"") if sent.actions() > 2 else created(sent)

    transport = ScriptedTransport(small_only)
    output = make(transport)
    outcome = await output.send(output.encode(records(8)))
    assert outcome.statuses == [Status.DELIVERED] * 8
    assert outcome.errors == {}
    assert outcome.http_status == 200
    assert [s.actions() for s in transport.sent] == [8, 4, 2, 2, 4, 2, 2]


async def test_a_single_record_too_large_for_the_server_is_rejected() -> None:
    def small_only(sent: Sent) -> Answer:
        return (413, b"") if len(sent.ndjson()) > 200 else created(sent)

    transport = ScriptedTransport(small_only)
    output = make(transport)
    payloads = output.encode([*records(1), *records(1, size=500), *records(1)])
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.DELIVERED, Status.REJECTED, Status.DELIVERED]
    assert outcome.errors[1].type == "payload_too_large"


async def test_a_refused_connection_retries_everything_without_raising() -> None:
    refused = TransportConnectionError("connection refused")
    transport = ScriptedTransport(refused)
    output = make(transport)
    payloads = output.encode(records(4))
    output = make(transport, max_request_bytes=len(payloads[0]))
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.RETRY] * 4
    assert outcome.http_status is None
    assert {e.type for e in outcome.errors.values()} == {"connection_error"}
    assert len(transport.sent) == 1  # the other three bodies were not tried


async def test_a_timeout_is_retried_and_named() -> None:
    transport = ScriptedTransport(ConnectionTimeout("timed out"))
    output = make(transport)
    outcome = await output.send(output.encode(records(2)))
    assert outcome.statuses == [Status.RETRY] * 2
    assert outcome.errors[0].type == "timeout"


async def test_rejected_credentials_keep_the_records_and_mark_health() -> None:
    body = orjson.dumps({"error": {"type": "security_exception", "reason": "bad"}})
    transport = ScriptedTransport((401, body), created)
    output = make(transport, Metrics())
    output.health.started = True
    payloads = output.encode(records(2))
    outcome = await output.send(payloads)
    assert outcome.statuses == [Status.RETRY] * 2
    assert output.health.credentials_rejected
    assert not output.health.ready
    assert (await output.send(payloads)).statuses == [Status.DELIVERED] * 2
    assert output.health.ready
    assert output.health.last_success is not None


async def test_nothing_to_send_makes_no_request() -> None:
    transport = ScriptedTransport(created)
    assert (await make(transport).send([])).statuses == []
    assert transport.sent == []


async def test_start_detects_the_server_and_installs_the_template() -> None:
    transport = ScriptedTransport((200, ES_ROOT), (200, b'{"acknowledged":true}'))
    output = make(transport, logstash_prefix="k8s", template_name="k8s-logs")
    await output.start()
    get, put = transport.sent
    assert (get.method, get.target) == ("GET", "/")
    assert (put.method, put.target) == ("PUT", "/_index_template/k8s-logs")
    assert put.headers["content-type"] == "application/json"
    template = orjson.loads(put.body or b"")
    assert template["index_patterns"] == ["k8s-*"]
    labels = template["template"]["mappings"]["properties"]["kubernetes"]["properties"]["labels"]
    assert labels["type"] == "flattened"
    assert output.health.ready
    assert str(output.health.server) == "Elasticsearch 8.15.3"


async def test_start_installs_flat_object_templates_on_opensearch() -> None:
    transport = ScriptedTransport((200, OS_ROOT), (200, b"{}"))
    await make(transport, ilm_policy="p").start()
    template = orjson.loads(transport.sent[1].body or b"")
    assert "flat_object" in str(template)
    assert "lifecycle" not in str(template)


async def test_start_without_template_only_detects() -> None:
    transport = ScriptedTransport((200, ES_ROOT))
    output = make(transport, install_template=False)
    await output.start()
    assert [s.method for s in transport.sent] == ["GET"]
    assert output.health.started


async def test_start_raises_retryable_while_the_server_is_unreachable() -> None:
    output = make(ScriptedTransport(TransportConnectionError("refused")))
    with pytest.raises(OutputRetryableError, match="cannot reach"):
        await output.start()
    assert not output.health.ready


async def test_start_raises_retryable_on_a_busy_server_with_its_delay() -> None:
    output = make(ScriptedTransport((503, b"", {"retry-after": "12"})))
    with pytest.raises(OutputRetryableError) as caught:
        await output.start()
    assert caught.value.retry_after == 12.0


async def test_start_reports_rejected_credentials() -> None:
    output = make(ScriptedTransport((401, b"")))
    with pytest.raises(OutputRetryableError, match="credentials"):
        await output.start()
    assert output.health.credentials_rejected


async def test_a_forbidden_root_assumes_elasticsearch_and_carries_on() -> None:
    transport = ScriptedTransport((403, b""), (403, b"no privilege"))
    output = make(transport)
    await output.start()
    assert output.health.ready
    assert output.health.server is not None and output.health.server.assumed


async def test_start_refuses_something_that_is_not_elasticsearch() -> None:
    with pytest.raises(OutputPermanentError, match="not Elasticsearch"):
        await make(ScriptedTransport((200, b"<html>hello</html>"))).start()


async def test_start_refuses_elasticsearch_6() -> None:
    root = orjson.dumps({"version": {"number": "6.8.23"}})
    with pytest.raises(OutputPermanentError, match="not supported"):
        await make(ScriptedTransport((200, root))).start()


async def test_a_template_the_server_refuses_is_a_permanent_error() -> None:
    transport = ScriptedTransport((200, ES_ROOT), (400, b'{"error":"bad mapping"}'))
    with pytest.raises(OutputPermanentError, match="bad mapping"):
        await make(transport).start()


def test_describe_decodes_a_payload() -> None:
    output = make(ScriptedTransport(created))
    (payload,) = output.encode(records(1))
    described = output.describe(payload)
    assert described["index"] == "logstash-2026.11.22"
    assert described["_id"] == "id-0"
    assert described["record"]["log"] == "x" * 10


async def test_close_releases_the_transport() -> None:
    transport = ScriptedTransport(created)
    output = make(transport)
    await output.close()
    assert transport.closed


def test_api_keys_in_id_colon_key_form_are_encoded() -> None:
    encoded = base64.b64encode(b"abc:secret").decode()
    assert auth_headers(ElasticsearchConfig(api_key="abc:secret")) == {
        "authorization": f"ApiKey {encoded}"}
    assert auth_headers(ElasticsearchConfig(api_key=encoded)) == {
        "authorization": f"ApiKey {encoded}"}


def test_basic_auth_is_encoded() -> None:
    token = base64.b64encode(b"elastic:pw").decode()
    assert auth_headers(ElasticsearchConfig(user="elastic", password="pw")) == {
        "authorization": f"Basic {token}"}
    assert auth_headers(ElasticsearchConfig()) == {}


def test_every_host_becomes_a_node_with_tls_only_on_https() -> None:
    config = ElasticsearchConfig(
        hosts=["http://es-0:9200", "https://es.example/proxy/", "https://es-2:9243"],
        ca_file="/etc/ca.pem", verify_certs=False, user="u", password="p",
        request_timeout_secs=5)
    plain, proxied, tls = node_configs(config)
    assert (plain.scheme, plain.host, plain.port, plain.ca_certs) == ("http", "es-0", 9200, None)
    assert (proxied.port, proxied.path_prefix, proxied.ca_certs) == (443, "/proxy", "/etc/ca.pem")
    assert proxied.verify_certs is False
    assert tls.port == 9243
    assert plain.request_timeout == 5
    # Credentials travel per request (they may come from a rotating secret file).
    assert "authorization" not in plain.headers


async def test_every_request_carries_the_credentials() -> None:
    transport = ScriptedTransport(created)
    output = make(transport, user="elastic", password="pw")
    await output.send(output.encode(records(1)))
    token = base64.b64encode(b"elastic:pw").decode()
    assert transport.sent[0].headers["authorization"] == f"Basic {token}"


async def test_a_rotated_password_file_is_used_without_restart(tmp_path) -> None:
    secret = tmp_path / "password"
    secret.write_text("first\n")
    transport = ScriptedTransport(created)
    output = make(transport, user="elastic", password_file=str(secret))
    await output.send(output.encode(records(1)))
    secret.write_text("second-longer\n")
    await output.send(output.encode(records(1)))
    sent = [base64.b64decode(s.headers["authorization"].split()[1]) for s in transport.sent]
    assert sent == [b"elastic:first", b"elastic:second-longer"]


async def test_an_unreadable_secret_file_keeps_the_records_for_retry(tmp_path) -> None:
    transport = ScriptedTransport(created)
    output = make(transport, user="elastic", password_file=str(tmp_path / "missing"))
    outcome = await output.send(output.encode(records(2)))
    assert outcome.statuses == [Status.RETRY, Status.RETRY]
    assert transport.sent == []


async def test_credentials_rejected_while_installing_the_template_is_a_credentials_error(
        ) -> None:
    # Delivery marks the output not ready at once for OutputCredentialsError, and only after
    # the stall timer for other retryable errors.
    transport = ScriptedTransport((200, ES_ROOT), (401, b'{"error": "unauthorized"}'))
    output = make(transport)
    with pytest.raises(OutputCredentialsError, match="credentials rejected installing "
                                                     "template"):
        await output.start()
    assert output.health.credentials_rejected
    assert not output.health.ready


async def test_a_hung_request_is_abandoned_by_cancel_and_close_without_waiting() -> None:
    """Shutdown cancels delivery mid-request: neither that nor close may wait for the socket,
    and the thread left behind is a daemon (the interpreter does not join it at exit)."""
    import asyncio
    import threading
    import time

    release, started = threading.Event(), threading.Event()
    hung_in: list[threading.Thread] = []

    def hang(sent: Sent) -> Answer:
        hung_in.append(threading.current_thread())
        started.set()
        release.wait(10)
        return created(sent)

    transport = ScriptedTransport(hang)
    output = make(transport)
    task = asyncio.create_task(output.send(output.encode(records(2))))
    try:
        assert await asyncio.to_thread(started.wait, 5)
        before = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await output.close()
        assert time.monotonic() - before < 1.0
        assert transport.closed
        (thread,) = hung_in
        assert thread.daemon and thread is not threading.main_thread()
    finally:
        release.set()
