"""Import answers, readiness, the multipart body and the bounded wait (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from shipper.dashboards.http import Response, auth_header
from shipper.dashboards.importer import (
    Importer,
    import_path,
    multipart,
    parse_import_response,
    ready,
)
from shipper.errors import DashboardsError

SUCCESS = {"success": True, "successCount": 2, "successResults": [
    {"type": "index-pattern", "id": "shipper-index-pattern",
     "meta": {"title": "logstash-*", "icon": "indexPatternApp"}},
    {"type": "dashboard", "id": "d", "destinationId": "d2", "meta": {"title": "Envoy"}}]}
FAILURE = {"success": False, "successCount": 1, "successResults": [
    {"type": "index-pattern", "id": "ip", "meta": {"title": "logstash-*"}}],
    "errors": [
        {"id": "v", "type": "visualization", "title": "Log lines",
         "meta": {"title": "Log lines", "icon": "visualizeApp"},
         "error": {"type": "missing_references",
                   "references": [{"type": "index-pattern", "id": "k8s-logs-ip"}]}},
        {"id": "l", "type": "lens", "meta": {"title": "Lens"},
         "error": {"type": "unsupported_type"}},
        {"id": "s", "type": "search", "meta": {"title": "S"},
         "error": {"type": "conflict", "destinationId": "s-2"}},
        {"id": "x", "type": "dashboard", "meta": {"title": "X"},
         "error": {"type": "unknown", "message": "Document \"x\" belongs to a more recent "
                   "version of Kibana", "statusCode": 400}}]}


def response(status: int, body: object) -> Response:
    return Response(status, json.dumps(body).encode())


def test_a_successful_import_lists_every_object() -> None:
    result = parse_import_response(response(200, SUCCESS))
    assert result.ok
    assert result.imported == ["index-pattern shipper-index-pattern (logstash-*)",
                               "dashboard d (Envoy) as d2"]


def test_every_per_object_error_is_reported_with_its_reason() -> None:
    result = parse_import_response(response(200, FAILURE))
    assert not result.ok
    assert result.imported == ["index-pattern ip (logstash-*)"]
    assert result.errors == [
        "visualization v (Log lines): missing_references: index-pattern k8s-logs-ip",
        "lens l (Lens): unsupported_type",
        "search s (S): conflict with s-2",
        'dashboard x (X): unknown: Document "x" belongs to a more recent version of Kibana '
        "(HTTP 400)"]


@pytest.mark.parametrize(("status", "body", "text"), [
    (400, {"statusCode": 400, "error": "Bad Request", "message": "Invalid file extension .json"},
     "HTTP 400: Invalid file extension .json"),
    (400, {"statusCode": 400, "message": "Request must contain the osd-xsrf header."},
     "osd-xsrf"),
    (413, "<html>too large</html>", "HTTP 413"),
])
def test_a_refused_import_is_one_error(status: int, body: object, text: str) -> None:
    result = parse_import_response(response(status, body))
    assert not result.ok and text in result.errors[0]


def test_success_false_without_errors_still_fails() -> None:
    assert not parse_import_response(response(200, {"success": False})).ok


@pytest.mark.parametrize(("status", "body", "expected"), [
    (200, {"status": {"overall": {"level": "available"}}}, True),
    (200, {"status": {"overall": {"level": "degraded"}}}, True),
    (503, {"status": {"overall": {"level": "unavailable"}}}, False),
    (200, {"status": {"overall": {"level": "critical"}}}, False),
    (200, {"status": {"overall": {"state": "green"}}}, True),
    (200, {"status": {"overall": {"state": "red"}}}, False),
    (200, {"something": "else"}, True),
    (502, "bad gateway", False),
])
def test_readiness_from_kibana_7_8_and_opensearch_dashboards_status(
        status: int, body: object, expected: bool) -> None:
    assert ready(response(status, body))[0] is expected


def test_refused_credentials_end_the_wait() -> None:
    with pytest.raises(DashboardsError, match="credentials"):
        ready(response(401, {"message": "unauthorized"}))


def test_the_multipart_body_has_one_ndjson_file_part() -> None:
    body, content_type = multipart("a.ndjson", b'{"x":1}\n')
    boundary = content_type.split("boundary=")[1]
    assert content_type.startswith("multipart/form-data; ")
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert b'Content-Disposition: form-data; name="file"; filename="a.ndjson"' in body
    assert body.endswith(f'{{"x":1}}\n\r\n--{boundary}--\r\n'.encode())


def test_spaces_prefix_the_import_path() -> None:
    assert import_path(None) == "/api/saved_objects/_import?overwrite=true"
    assert import_path("default") == "/api/saved_objects/_import?overwrite=true"
    assert import_path("team a") == "/s/team%20a/api/saved_objects/_import?overwrite=true"


def test_auth_headers() -> None:
    assert auth_header("elastic", "pw") == {"Authorization": "Basic ZWxhc3RpYzpwdw=="}
    assert auth_header(api_key="id:key") == {"Authorization": "ApiKey aWQ6a2V5"}
    assert auth_header(api_key="aWQ6a2V5") == {"Authorization": "ApiKey aWQ6a2V5"}
    assert auth_header() == {}


class FakeClient:
    """Answers /api/status from a script; counts calls."""

    base = "http://kibana:5601"

    def __init__(self, answers: list[Response | Exception]) -> None:
        self.answers = answers
        self.calls = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_waiting_backs_off_exponentially_up_to_the_cap_and_then_succeeds() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(secs: float) -> None:
        sleeps.append(secs)
        now[0] += secs

    down = DashboardsError("connection refused")
    starting = response(503, {"status": {"overall": {"level": "unavailable"}}})
    client = FakeClient([down, down, starting, starting, starting, starting,
                         response(200, {"status": {"overall": {"level": "available"}}})])
    Importer(client, wait_secs=60, sleep=sleep, clock=lambda: now[0]).wait_until_ready()  # type: ignore[arg-type]
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert client.calls == 7


def test_waiting_is_bounded() -> None:
    now = [0.0]

    def sleep(secs: float) -> None:
        now[0] += secs

    client = FakeClient([DashboardsError("connection refused")])
    importer = Importer(client, wait_secs=10, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    with pytest.raises(DashboardsError, match="not ready within 10s"):
        importer.wait_until_ready()
    assert now[0] <= 10
    assert client.calls < 10
