"""An HTTP proxy in front of the real Elasticsearch API that injects the faults it cannot make.

Every request is forwarded to the real server, except where the mode says otherwise:

* ``up``: forwarded untouched.
* ``down``: every connection is reset (RST) before anything is forwarded: an outage.
* ``429``: every ``_bulk`` request is answered 429 as a whole (a rejection storm); other
  requests (``GET /``, the template) are forwarded.
* ``partial``: each ``_bulk`` request is split per item. Items whose source contains
  :data:`REJECT` are answered 400 (a mapping error: dead letters); about a third of the
  others are answered 429 the first time their ``_id`` is seen (retried); only the rest is
  forwarded, and the per-item answers are merged back in order. The real server never sees
  the rejected items, so "indexed" and "answered 2xx/409" stay the same set.
* ``flap``: ``_bulk`` requests cycle through forwarded, forwarded-then-dropped (the server
  indexed the chunk, the client never hears: it must resend and meet 409) and reset before
  forwarding.

The proxy records what it did (``rejected`` ids, counters per outcome), so a test can wait
until a fault was really met and compare the dead-letter store with what was rejected.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import socket
import struct
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

MODES = ("up", "down", "429", "partial", "flap")
#: Log lines containing this are refused item by item with 400 in mode ``partial``.
REJECT = b"reject-me"
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host",
                "proxy-connection", "te", "upgrade"}


class BulkFaultProxy:
    """``127.0.0.1:<port>`` → the real server at ``target``; switch with :meth:`set_mode`."""

    def __init__(self, target_host: str, target_port: int, mode: str = "up") -> None:
        self.target = (target_host, target_port)
        self.mode = mode
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        #: ``_id`` of every item answered 400 (each id once).
        self.rejected: set[str] = set()
        self._seen_ids: set[str] = set()
        self._bulk_requests = 0
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="bulkproxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self.lock:
            self.mode = mode

    def count(self, what: str) -> int:
        with self.lock:
            return self.counts[what]

    def start(self) -> BulkFaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> BulkFaultProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- decisions (called from handler threads) -----------------------------------------

    def _note(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def _bulk_action(self) -> str:
        """What to do with the next ``_bulk`` request in the current mode."""
        with self.lock:
            mode = self.mode
            if mode == "flap":
                self._bulk_requests += 1
                return ("up", "drop", "down")[self._bulk_requests % 3]
            return mode

    def _split(self, items: list[tuple[bytes, bytes, str]],
               ) -> tuple[list[int], dict[int, dict[str, Any]]]:
        """Indexes of items to forward, and the fake answer of every other item."""
        forward: list[int] = []
        fake: dict[int, dict[str, Any]] = {}
        with self.lock:
            for i, (_action, source, doc_id) in enumerate(items):
                if REJECT in source:
                    self.rejected.add(doc_id)
                    self.counts["item_400"] += 1
                    fake[i] = {"status": 400, "error": {
                        "type": "mapper_parsing_exception",
                        "reason": "injected: failed to parse field [log]"}}
                elif doc_id not in self._seen_ids and zlib.crc32(doc_id.encode()) % 3 == 0:
                    self._seen_ids.add(doc_id)
                    self.counts["item_429"] += 1
                    fake[i] = {"status": 429, "error": {
                        "type": "es_rejected_execution_exception",
                        "reason": "injected: rejected execution (queue capacity 200)"}}
                else:
                    self._seen_ids.add(doc_id)
                    forward.append(i)
        return forward, fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: BulkFaultProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        owner = self.owner
        body = self._read_body()
        is_bulk = self.path.split("?", 1)[0].endswith("/_bulk")
        mode = owner._bulk_action() if is_bulk else owner.mode
        if mode == "down":
            owner._note("reset")
            return self._reset()
        if not is_bulk or mode == "up":
            status, headers, raw = self._forward(body)
            owner._note("forwarded")
            return self._reply(status, headers, raw)
        if mode == "429":
            owner._note("bulk_429")
            raw = (b'{"error":{"root_cause":[],"type":"es_rejected_execution_exception",'
                   b'"reason":"injected 429"},"status":429}')
            return self._reply(429, [("content-type", "application/json"),
                                     ("retry-after", "0")], raw)
        if mode == "drop":
            self._forward(body)
            owner._note("dropped_answer")
            return self._reset()
        # partial
        return self._partial(body)

    # -- pieces ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        for attempt in range(2):  # a kept-alive upstream connection may have been closed
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.owner.target, timeout=30)
            try:
                self._upstream.request(self.command, self.path, body=body or None,
                                       headers=headers)
                resp = self._upstream.getresponse()
                raw = resp.read()
                return resp.status, resp.getheaders(), raw
            except (OSError, http.client.HTTPException):
                self._upstream.close()
                self._upstream = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _partial(self, body: bytes) -> None:
        owner = self.owner
        gzipped = self.headers.get("content-encoding", "").lower() == "gzip"
        lines = (gzip.decompress(body) if gzipped else body).split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        items: list[tuple[bytes, bytes, str]] = []
        for i in range(0, len(lines) - 1, 2):
            action = lines[i]
            meta = next(iter(orjson.loads(action).values()))
            items.append((action, lines[i + 1], str(meta.get("_id", ""))))
        forward, fake = owner._split(items)
        answers: dict[int, dict[str, Any]] = dict(fake)
        if forward:
            sub = b"".join(items[i][0] + b"\n" + items[i][1] + b"\n" for i in forward)
            if gzipped:
                sub = gzip.compress(sub)
            status, headers, raw = self._forward(sub)
            if status != 200:  # the whole sub-request failed: pass that answer on
                return self._reply(status, headers, raw)
            got = orjson.loads(raw).get("items", [])
            if len(got) != len(forward):
                raise AssertionError(f"{len(got)} answers for {len(forward)} items")
            for i, item in zip(forward, got, strict=True):
                answers[i] = next(iter(item.values()))
        owner._note("bulk_partial")
        op = next(iter(orjson.loads(items[0][0]))) if items else "create"
        merged = {"errors": any((a.get("status", 500) >= 300 and a.get("status") != 409)
                                or "error" in a for a in answers.values()),
                  "items": [{op: answers[i]} for i in range(len(items))]}
        self._reply(200, [("content-type", "application/json"),
                          ("x-elastic-product", "Elasticsearch")], orjson.dumps(merged))

    def _reply(self, status: int, headers: list[tuple[str, str]], raw: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_HEADERS:
                self.send_header(name, value)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _reset(self) -> None:
        """Close with RST: the client sees 'connection reset', no answer."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()
