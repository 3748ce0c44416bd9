"""SIGTERM while a bulk request hangs: the process exits within its deadline, losing nothing.

A fake server answers ``GET /`` like Elasticsearch 8 but never answers ``_bulk`` (a real
server cannot be made to hang). ``shipper run`` is started against it with the default one
minute request timeout and ``shutdown_deadline_secs: 1``, then stopped with SIGTERM: it must
exit within the deadline plus a small margin, having logged ``agent_stopped``. Restarted
against the real Elasticsearch API, it then delivers every line exactly once: the abandoned
request's chunk was never settled, so the tail source reads those lines again (memory
buffer: no ack was sent) or the chunk is still in the disk buffer.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import unique_prefix

LINES = 300
DEADLINE_SECS = 1.0
MARGIN_SECS = 3.0

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.2
    checkpoint_interval_secs: 0.1
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{type: {buffer}, flush_interval_secs: 0.1, retry_initial_secs: 0.05,
              retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: {deadline}
"""

_ROOT = json.dumps({"name": "fake", "cluster_name": "fake", "tagline": "You Know, for Search",
                    "version": {"number": "8.15.0", "build_flavor": "default"}}).encode()


class _HangingBulk(BaseHTTPRequestHandler):
    """Elasticsearch 8 for the root and the template; ``_bulk`` is read and never answered."""

    server: _FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-elastic-product", "Elasticsearch")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/api/"):  # the Kubernetes API: never answers a list
            self.server.bulk_requests.set()
            self.server.release.wait(120)
            self.close_connection = True
            return
        self._answer(_ROOT if self.path.split("?")[0] == "/" else b"{}")

    def do_HEAD(self) -> None:
        self._answer(b"")

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self._answer(b'{"acknowledged":true}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        if "_bulk" in self.path or "token=" in self.path:  # a logzio listener hangs too
            self.server.bulk_requests.set()
            self.server.release.wait(120)  # bounded: the test sets it at teardown
            self.close_connection = True
            return
        self._answer(b"{}")


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HangingBulk)
        self.bulk_requests = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def hanging_es() -> Iterator[_FakeServer]:
    server = _FakeServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _write_logs(logs: Path) -> None:
    logs.mkdir()
    with open(logs / "app_default_app-0123456789abcdef.log", "w") as f:
        for n in range(LINES):
            f.write(f"2026-11-22T10:00:00.{n:06d}000Z stdout F line={n} of the hung-request "
                    f"test\n")


def _stop_within_deadline(proc: subprocess.Popen[bytes], server: _FakeServer,
                          log: Path) -> float:
    """SIGTERM once a request hangs; the seconds until the process exited (code 0)."""
    try:
        assert server.bulk_requests.wait(30), "the agent never sent the request that hangs"
        time.sleep(0.5)  # the request is now in flight, well inside its timeout
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(DEADLINE_SECS + 30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, log.read_text()[-3000:]
    return took


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                            stderr=open(log, "ab"), stdout=subprocess.DEVNULL)


def _events(log: Path) -> list[str]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            found.append(json.loads(line).get("event", ""))
        except ValueError:
            continue
    return found


def _indexed(es: SearchClient, prefix: str) -> Counter[int]:
    es.refresh(f"{prefix}-*")
    body = {"size": LINES * 2, "_source": ["log"], "query": {"match_all": {}}}
    hits = es.request("POST", f"/{prefix}-*/_search", body)["hits"]["hits"]
    seen: Counter[int] = Counter()
    for hit in hits:
        m = re.search(r"line=(\d+) ", hit["_source"].get("log", ""))
        seen[int(m.group(1)) if m else -1] += 1
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("buffer", ["memory", "disk"])
def test_sigterm_during_hung_bulk_exits_in_time_then_restart_delivers_once(
        tmp_path: Path, hanging_es: _FakeServer, es_url: str, buffer: str) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    _write_logs(logs)
    prefix = unique_prefix()
    cfg, log = tmp_path / "shipper.yaml", tmp_path / "agent.log"
    fake_url = f"http://127.0.0.1:{hanging_es.server_address[1]}"
    cfg.write_text(CONFIG.format(state=state, logs=logs, url=fake_url, prefix=prefix,
                                 deadline=DEADLINE_SECS, buffer=buffer))
    took = _stop_within_deadline(_start(cfg, log), hanging_es, log)
    events = _events(log)
    assert took < DEADLINE_SECS + MARGIN_SECS, f"exited {took:.1f} s after SIGTERM"
    assert "agent_stopped" in events
    assert "agent_exit_forced" not in events  # the output's threads never needed forcing

    cfg.write_text(CONFIG.format(state=state, logs=logs, url=es_url, prefix=prefix,
                                 deadline=10, buffer=buffer))
    es = SearchClient(es_url)
    proc = _start(cfg, log)
    try:
        deadline = time.monotonic() + 60
        seen: Counter[int] = Counter()
        while time.monotonic() < deadline:
            try:
                seen = _indexed(es, prefix)
            except OSError:  # index not created yet
                seen = Counter()
            if sum(seen.values()) >= LINES:
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
        time.sleep(1.0)  # anything sent twice would show up now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    seen = _indexed(es, prefix)
    assert sorted(seen) == list(range(LINES)), f"missing or unparsed: {LINES - len(seen)}"
    assert set(seen.values()) == {1}, {k: v for k, v in seen.items() if v != 1}


@pytest.mark.slow
@pytest.mark.parametrize("hangs", ["logzio listener", "kubernetes API"])
def test_sigterm_exits_in_time_whatever_else_hangs(tmp_path: Path, hanging_es: _FakeServer,
                                                   hangs: str) -> None:
    """The logzio output's request, or a Kubernetes watch the API server never answers."""
    logs = tmp_path / "logs"
    _write_logs(logs)
    url = f"http://127.0.0.1:{hanging_es.server_address[1]}"
    text = CONFIG.format(state=tmp_path / "state", logs=logs, url=url, prefix=unique_prefix(),
                         deadline=DEADLINE_SECS, buffer="memory")
    if hangs == "logzio listener":
        es_block = text[text.index("  es:\n"):text.index("    buffer:")]
        text = text.replace(es_block, "  lz:\n    type: logzio\n"
                            f"    listener: {url}\n    allow_insecure: true\n"
                            "    token: abcdefghijklmnopqrstuvwxyzabcdef\n")
    else:
        text = text.replace("outputs:", f"""filters:
  k8s:
    type: kubernetes_metadata
    kubernetes_url: "{url}"
    node_name: n1
    initial_sync_timeout_secs: 0.2
outputs:""")
    cfg, log = tmp_path / "shipper.yaml", tmp_path / "agent.log"
    cfg.write_text(text)
    took = _stop_within_deadline(_start(cfg, log), hanging_es, log)
    assert took < DEADLINE_SECS + MARGIN_SECS, f"exited {took:.1f} s after SIGTERM"
    assert "agent_stopped" in _events(log)
