"""The demo's summary against a server that does not answer in time: a message naming the
query and the server, exit 1 (a failed demo), never a traceback."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator

import pytest

from shipper.demo.esquery import SearchClient, SearchError
from shipper.demo.manifest import Manifest
from shipper.demo.run import summarize


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections on loopback, reads the request, never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.05)
    done = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        done.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


def test_a_query_that_times_out_is_a_search_error_naming_query_and_server(silent_server):
    client = SearchClient(silent_server, timeout_secs=0.2)
    with pytest.raises(SearchError) as caught:
        client.count("logstash-*")
    text = str(caught.value)
    assert "POST /logstash-*/_count timed out" in text and silent_server in text


def test_the_summary_reports_a_timeout_and_fails_the_demo(silent_server):
    out = io.StringIO()
    manifest = Manifest(seed=1, base_time="2026-01-01T00:00:00Z", mark=False, files=[])
    ok = summarize(silent_server, 10, out, "abcd1234", manifest, [], timeout_secs=0.2)
    assert ok is False
    text = out.getvalue()
    assert "timed out" in text and silent_server in text and "exit 1" in text
    assert "Traceback" not in text
