"""``shipper dashboards import`` against a local HTTP server that checks the request like
Kibana does and answers with Kibana's documented success and error shapes."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shipper.cli import main
from shipper.dashboards import objects
from shipper.demo.embedded_es import free_loopback_port


@dataclass
class FakeKibana:
    """Scripted answers: ``status`` and ``imports`` are consumed in order, the last repeats."""

    status: list[tuple[int, Any]] = field(default_factory=lambda: [
        (200, {"status": {"overall": {"level": "available"}}})])
    imports: list[tuple[int, Any] | None] = field(default_factory=lambda: [None])
    requests: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[list[dict[str, Any]]] = field(default_factory=list)

    def next_status(self) -> tuple[int, Any]:
        return self.status.pop(0) if len(self.status) > 1 else self.status[0]

    def next_import(self) -> tuple[int, Any] | None:
        return self.imports.pop(0) if len(self.imports) > 1 else self.imports[0]


def parse_upload(headers: Any, body: bytes) -> tuple[str, str, bytes]:
    """(part name, file name, content) of a one-part multipart body, or ValueError."""
    match = re.fullmatch(r'multipart/form-data; boundary="?([^";]+)"?',
                         headers.get("Content-Type", ""))
    if match is None:
        raise ValueError("not multipart/form-data")
    boundary = match.group(1).encode()
    if not body.startswith(b"--" + boundary + b"\r\n") or \
            not body.endswith(b"\r\n--" + boundary + b"--\r\n"):
        raise ValueError("bad boundaries")
    part = body[len(boundary) + 4:-(len(boundary) + 8)]
    head, _, content = part.partition(b"\r\n\r\n")
    disposition = re.search(rb'Content-Disposition: form-data; name="([^"]+)"; '
                            rb'filename="([^"]+)"', head)
    if disposition is None:
        raise ValueError("no form-data disposition")
    return disposition.group(1).decode(), disposition.group(2).decode(), content


def lowered(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def handler_for(kibana: FakeKibana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            kibana.requests.append({"method": "GET", "path": self.path,
                                    "headers": lowered(self.headers)})
            if self.path != "/api/status":
                self.answer(404, {"statusCode": 404, "message": "Not Found"})
                return
            self.answer(*kibana.next_status())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kibana.requests.append({"method": "POST", "path": self.path,
                                    "headers": lowered(self.headers)})
            if self.headers.get("kbn-xsrf") is None or self.headers.get("osd-xsrf") is None:
                self.answer(400, {"statusCode": 400,
                                  "message": "Request must contain a kbn-xsrf header."})
                return
            try:
                name, filename, content = parse_upload(self.headers, body)
            except ValueError as exc:
                self.answer(415, {"statusCode": 415, "message": str(exc)})
                return
            if name != "file" or not filename.endswith(".ndjson"):
                self.answer(400, {"statusCode": 400, "error": "Bad Request",
                                  "message": f"Invalid file extension {filename}"})
                return
            objs = [json.loads(line) for line in content.decode().splitlines() if line]
            kibana.uploads.append(objs)
            scripted = kibana.next_import()
            if scripted is not None:
                self.answer(*scripted)
                return
            self.answer(200, {"success": True, "successCount": len(objs), "successResults": [
                {"type": o["type"], "id": o["id"], "meta": {"title": o["attributes"].get(
                    "title", "")}} for o in objs]})

    return Handler


@pytest.fixture
def kibana() -> Iterator[tuple[FakeKibana, str]]:
    fake = FakeKibana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_import_sends_every_object_once_as_an_ndjson_upload_with_both_xsrf_headers(
        kibana: tuple[FakeKibana, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = kibana
    code = main(["dashboards", "import", "--kibana", url, "--user", "elastic",
                 "--password", "changeme"])
    out = capsys.readouterr().out
    assert code == 0
    post = fake.requests[-1]
    assert post["path"] == "/api/saved_objects/_import?overwrite=true"
    assert post["headers"]["kbn-xsrf"] == "true" and post["headers"]["osd-xsrf"] == "true"
    assert post["headers"]["authorization"] == "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
    (upload,) = fake.uploads
    keys = [(o["type"], o["id"]) for o in upload]
    assert len(keys) == len(set(keys)) == len(objects.all_objects())
    assert f"{len(upload)} objects imported, 0 errors" in out
    assert "imported dashboard shipper-dashboard-envoy-access-logs (Envoy access logs)" in out


def test_import_into_a_space_with_an_api_key_and_a_custom_index_pattern(
        kibana: tuple[FakeKibana, str]) -> None:
    fake, url = kibana
    code = main(["dashboards", "import", "--kibana", url + "/", "--space", "mesh",
                 "--api-key", "id:secret", "--index-pattern", "k8s-*"])
    assert code == 0
    post = fake.requests[-1]
    assert post["path"] == "/s/mesh/api/saved_objects/_import?overwrite=true"
    assert post["headers"]["authorization"] == "ApiKey aWQ6c2VjcmV0"
    pattern = next(o for o in fake.uploads[0] if o["type"] == "index-pattern")
    assert pattern["attributes"]["title"] == "k8s-*"


def test_import_waits_while_kibana_starts_and_retries_a_503_import(
        kibana: tuple[FakeKibana, str]) -> None:
    fake, url = kibana
    fake.status = [(503, {"status": {"overall": {"level": "unavailable"}}}),
                   (200, {"status": {"overall": {"state": "green"}}})]
    fake.imports = [(503, {"statusCode": 503, "message": "migrations running"}), None]
    code = main(["dashboards", "import", "--kibana", url, "--wait-secs", "30"])
    assert code == 0
    assert [r["method"] for r in fake.requests] == ["GET", "GET", "POST", "POST"]
    assert len(fake.uploads) == 2


def test_per_object_errors_are_printed_and_fail_the_command(
        kibana: tuple[FakeKibana, str], capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = kibana
    fake.imports = [(200, {"success": False, "successCount": 0, "errors": [
        {"id": "shipper-vis-envoy-requests", "type": "visualization", "title": "Requests",
         "meta": {"title": "Requests", "icon": "visualizeApp"},
         "error": {"type": "missing_references",
                   "references": [{"type": "index-pattern", "id": "shipper-index-pattern"}]}},
        {"id": "shipper-dashboard-istio-logs", "type": "dashboard",
         "meta": {"title": "Istio logs"},
         "error": {"type": "unknown", "message": "boom", "statusCode": 500}}]})]
    code = main(["dashboards", "import", "--kibana", url])
    captured = capsys.readouterr()
    assert code == 1
    assert ("error: visualization shipper-vis-envoy-requests (Requests): missing_references: "
            "index-pattern shipper-index-pattern") in captured.err
    assert "error: dashboard shipper-dashboard-istio-logs (Istio logs): unknown: boom (HTTP 500)" \
        in captured.err
    assert "0 objects imported, 2 errors" in captured.out


def test_refused_credentials_fail_at_once(kibana: tuple[FakeKibana, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    fake, url = kibana
    fake.status = [(401, {"statusCode": 401, "message": "Unauthorized"})]
    assert main(["dashboards", "import", "--kibana", url, "--wait-secs", "300"]) == 1
    assert "refused the credentials" in capsys.readouterr().err
    assert len(fake.requests) == 1


def test_a_kibana_that_never_answers_fails_within_the_wait_budget(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"
    assert main(["dashboards", "import", "--kibana", url, "--wait-secs", "1"]) == 1
    assert "not ready within 1s" in capsys.readouterr().err


def test_files_given_on_the_command_line_are_imported_instead(
        kibana: tuple[FakeKibana, str], tmp_path: Any) -> None:
    fake, url = kibana
    assert main(["dashboards", "generate", "-o", str(tmp_path)]) == 0
    assert main(["dashboards", "import", "--kibana", url, "--file",
                 str(tmp_path / "istio-logs.ndjson")]) == 0
    ids = {o["id"] for o in fake.uploads[0]}
    assert "shipper-dashboard-istio-logs" in ids
    assert "shipper-dashboard-envoy-access-logs" not in ids
