"""A bulk endpoint that accepts everything and stores nothing, for throughput benchmarks.

It speaks just enough of the Elasticsearch API for the agent: ``GET /`` (product detection),
``PUT /_index_template/...`` and ``POST /_bulk`` answered with one ``201`` item per action, so
the agent does its full per-item accounting. Run it in its own process so its CPU time is not
counted as the agent's.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = json.dumps({"name": "blackhole", "cluster_name": "bench", "tagline": "You Know, for Search",
                   "version": {"number": "8.15.0", "build_flavor": "default"}}).encode()
ITEM = b'{"create":{"status":201}}'  # the shape filter_path leaves


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BlackholeServer

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def do_GET(self) -> None:
        self._reply(200, ROOT if self.path in ("/", "") else b"{}")

    def do_HEAD(self) -> None:
        self._reply(200, b"")

    def do_PUT(self) -> None:
        self._body()
        self._reply(200, b'{"acknowledged":true}')

    def do_POST(self) -> None:
        data = self._body()
        if not self.path.split("?")[0].endswith("/_bulk"):
            self._reply(200, b"{}")
            return
        actions = data.count(b"\n") // 2
        self.server.documents += actions
        self.server.bytes += len(data)
        body = b'{"took":0,"errors":false,"items":[' + b",".join([ITEM] * actions) + b"]}"
        self._reply(200, body)


class BlackholeServer(ThreadingHTTPServer):
    daemon_threads = True
    documents = 0
    bytes = 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = BlackholeServer(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
