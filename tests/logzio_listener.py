"""A local stand-in for the Logz.io bulk HTTP listener (spec §2), on loopback, over TLS.

It implements the documented behaviour, not our client's expectations: the token and type in
the query string, 401 with ``Logging token is missing`` / ``Logging token is not valid``,
413 for a body over 10 MB (on the wire or once gunzipped), and per-line validation with the
400 counts body (``malformedLines``, ``successfulLines``, ``oversizedLines``,
``emptyLogLines``) where the valid lines of a 400 are stored all the same. Faults a real
listener shows only now and then (latency, connection resets, 5xx/429) are scripted per
request with ``script``.

The certificate comes from a throwaway CA made with ``trustme``; clients pass ``ca_file``.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import ssl
import struct
import tempfile
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trustme

MAX_BODY_BYTES = 10_485_760
MAX_LINE_BYTES = 500_000
TOKEN_MISSING = b"Logging token is missing"
TOKEN_INVALID = b"Logging token is not valid"
_MAX_DELAY_SECS = 30.0


@dataclass
class Fault:
    """What to do with one request before (or instead of) the documented handling."""

    delay_secs: float = 0.0  # answer normally, this much later
    reset: bool = False  # read the request, then reset the connection without an answer
    status: int | None = None  # answer with this status and body, storing nothing
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    """One request as the listener saw it (the token itself is not kept)."""

    token_valid: bool
    log_type: str | None
    gzip: bool
    wire_bytes: int
    lines: int
    status: int


class LogzioListener:
    """Run with ``with LogzioListener() as listener:``; ``listener.url`` and ``ca_file``."""

    def __init__(self, tokens: set[str] | None = None, *, port: int = 0, tls: bool = True,
                 max_body_bytes: int = MAX_BODY_BYTES, max_line_bytes: int = MAX_LINE_BYTES,
                 ca: trustme.CA | None = None) -> None:
        """``ca`` lets a test configure clients (``write_ca``) before the listener exists."""
        self.tokens: set[str] = set(tokens if tokens is not None else {"listener-token"})
        self.max_body_bytes = max_body_bytes
        self.max_line_bytes = max_line_bytes
        self.stored: list[dict[str, Any]] = []
        self.seen: list[Seen] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._dir = tempfile.TemporaryDirectory(prefix="logzio-listener-")
        self._tls = tls
        self.ca_file: str | None = None
        context: ssl.SSLContext | None = None
        if tls:
            ca = ca or trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            self.ca_file = write_ca(ca, Path(self._dir.name))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        if context is not None:
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> LogzioListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
        self._dir.cleanup()

    def __enter__(self) -> LogzioListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(self, *faults: Fault) -> None:
        """Apply these faults to the next requests, one each, in order."""
        with self._lock:
            self._faults.extend(faults)

    def messages(self) -> list[str]:
        with self._lock:
            return [str(r.get("message")) for r in self.stored]

    def statuses(self) -> list[int]:
        with self._lock:
            return [s.status for s in self.seen]

    # -- called by the handler thread ----------------------------------------------------

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def wait(self, secs: float) -> None:
        self._stopping.wait(min(secs, _MAX_DELAY_SECS))

    def handle(self, query: dict[str, list[str]], headers: Any, raw: bytes,
               ) -> tuple[int, bytes]:
        """The documented behaviour for one POST whose whole body is ``raw``."""
        token = (query.get("token") or [""])[0]
        log_type = (query.get("type") or [None])[0]
        zipped = (headers.get("content-encoding") or "").lower() == "gzip"
        status, body, lines = self._answer(token, zipped, raw)
        with self._lock:
            self.seen.append(Seen(token in self.tokens, log_type, zipped, len(raw), lines,
                                  status))
        return status, body

    def _answer(self, token: str, zipped: bool, raw: bytes) -> tuple[int, bytes, int]:
        if not token:
            return 401, TOKEN_MISSING, 0
        if token not in self.tokens:
            return 401, TOKEN_INVALID, 0
        if len(raw) > self.max_body_bytes:
            return 413, b"", 0
        data = raw
        if zipped:
            try:
                data = _gunzip(raw, self.max_body_bytes)
            except ValueError:
                return 413, b"", 0
            except (OSError, EOFError, zlib.error):
                return 400, b"cannot decompress the body", 0
        counts = {"malformedLines": 0, "successfulLines": 0, "oversizedLines": 0,
                  "emptyLogLines": 0}
        good: list[dict[str, Any]] = []
        lines = data.split(b"\n")
        for line in lines:
            if not line.strip():
                counts["emptyLogLines"] += 1
            elif len(line) > self.max_line_bytes:
                counts["oversizedLines"] += 1
            else:
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    record = None
                if isinstance(record, dict):
                    good.append(record)
                    counts["successfulLines"] += 1
                else:
                    counts["malformedLines"] += 1
        with self._lock:
            self.stored.extend(good)
        if counts["successfulLines"] == len(lines):
            return 200, b"", len(lines)
        return 400, orjson.dumps(counts), len(lines)


def write_ca(ca: trustme.CA, directory: Path) -> str:
    """The CA certificate as a PEM file for clients' ``ca_file``."""
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress, refusing (ValueError) past ``limit`` bytes instead of inflating a bomb."""
    out = gzip.GzipFile(fileobj=_Reader(raw)).read(limit + 1)
    if len(out) > limit:
        raise ValueError("too large")
    return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk = self._data[self._pos:end]
        self._pos += len(chunk)
        return chunk


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, listener: LogzioListener,
                 ) -> None:
        self.listener = listener
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets and clients that hang up are part of the tests, not errors."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: request lines carry the token."""

    def do_POST(self) -> None:
        listener = self.server.listener
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = listener.next_fault()
        if fault is not None and fault.delay_secs:
            listener.wait(fault.delay_secs)
        if fault is not None and fault.reset:
            self._reset()
            return
        if fault is not None and fault.status is not None:
            self._answer(fault.status, fault.body, fault.headers)
            return
        parts = urlsplit(self.path)
        status, body = listener.handle(parse_qs(parts.query), self.headers, raw)
        self._answer(status, body, {})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json" if body[:1] == b"{"
                         else "text/plain")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the TCP connection (RST) without a response."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        raw = sock.detach() if isinstance(sock, socket.socket) else None
        if raw is not None:
            socket.socket(fileno=raw).close()
