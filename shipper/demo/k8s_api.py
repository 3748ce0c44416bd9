"""A small Kubernetes API server on loopback: pods and namespaces, list, get and watch.

The demo has no cluster, yet its records should carry what a real one gives them, so this
serves the generated node's pods (``k8s_objects.demo_objects``) with the real API's shapes:
``PodList``/``NamespaceList`` with a ``resourceVersion``, ``fieldSelector=spec.nodeName=...``,
chunked watch streams of ADDED/MODIFIED/DELETED (and BOOKMARK) events that resume from a
resourceVersion, and the ``ERROR`` event with code 410 when that version has been compacted
away. The official Python client talks to it unchanged. Tests reuse it and add faults through
``fault_for`` (a status reply, a hang, a dropped connection) and ``stop``/``start`` (the API
going away, with open watches cut, and coming back on the same port).
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

PODS = "pods"
NAMESPACES = "namespaces"


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering: ``status`` reply, hang first, or drop the socket."""

    status: int | None = 500
    hang_secs: float = 0.0
    close: bool = False


class ApiState:
    """Objects, the resourceVersion counter and the bounded event history (thread-safe)."""

    def __init__(self, history: int = 10_000) -> None:
        self._cond = threading.Condition()
        self._rv = 100
        self._floor = self._rv  # oldest version a watch may resume from
        self._objects: dict[str, dict[str, dict[str, Any]]] = {PODS: {}, NAMESPACES: {}}
        self._events: deque[tuple[int, str, str, dict[str, Any]]] = deque(maxlen=history)

    @staticmethod
    def _key(resource: str, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if resource == PODS else meta["name"]

    def load(self, namespaces: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        for obj in namespaces:
            self.put(NAMESPACES, obj)
        for obj in pods:
            self.put(PODS, obj)

    def put(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object (ADDED or MODIFIED); returns the stored copy."""
        with self._cond:
            self._rv += 1
            stored = orjson.loads(orjson.dumps(obj))
            stored["metadata"]["resourceVersion"] = str(self._rv)
            key = self._key(resource, stored)
            kind = "MODIFIED" if key in self._objects[resource] else "ADDED"
            self._objects[resource][key] = stored
            self._record(resource, kind, stored)
            return stored

    def delete(self, resource: str, key: str) -> None:
        """Remove ``namespace/name`` (pods) or ``name`` (namespaces): a DELETED event."""
        with self._cond:
            obj = self._objects[resource].pop(key)
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._record(resource, "DELETED", obj)

    def _record(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        if len(self._events) == self._events.maxlen:
            self._floor = self._events[0][0]
        self._events.append((self._rv, resource, kind, obj))
        self._cond.notify_all()

    def compact(self) -> None:
        """Forget the history, like etcd compaction: older watches get 410 Gone."""
        with self._cond:
            self._events.clear()
            self._floor = self._rv
            self._cond.notify_all()

    def get(self, resource: str, key: str) -> dict[str, Any] | None:
        with self._cond:
            return self._objects[resource].get(key)

    def snapshot(self, resource: str, match: Callable[[dict[str, Any]], bool],
                 ) -> tuple[list[dict[str, Any]], int]:
        with self._cond:
            return [o for o in self._objects[resource].values() if match(o)], self._rv

    def after(self, resource: str, version: int, match: Callable[[dict[str, Any]], bool],
              wait: float) -> tuple[list[tuple[int, str, dict[str, Any]]], int] | None:
        """Events newer than ``version`` (waiting up to ``wait`` for one), and the version
        reached; None when ``version`` is older than the retained history."""
        with self._cond:
            if version < self._floor:
                return None
            if self._rv <= version and wait > 0:
                self._cond.wait(wait)
            if version < self._floor:
                return None
            out = [(rv, kind, obj) for rv, res, kind, obj in self._events
                   if rv > version and res == resource and match(obj)]
            return out, max(version, self._rv)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _selector(text: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """``spec.nodeName=x,metadata.namespace=y`` as a predicate; None if unsupported."""
    wanted: list[tuple[tuple[str, str], str]] = []
    for part in filter(None, (text or "").split(",")):
        field, _, value = part.replace("==", "=").partition("=")
        if field not in ("spec.nodeName", "metadata.name", "metadata.namespace"):
            return None
        first, second = field.split(".")
        wanted.append(((first, second), value))

    def match(obj: dict[str, Any]) -> bool:
        return all((obj.get(a) or {}).get(b, "") == v for (a, b), v in wanted)

    return match


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests count requests
        return

    def setup(self) -> None:
        super().setup()
        self.server.owner.track(self.connection, True)

    def finish(self) -> None:
        self.server.owner.track(self.connection, False)
        super().finish()

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, obj: dict[str, Any]) -> None:
        data = orjson.dumps(obj) + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self) -> None:
        owner = self.server.owner
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        owner.log_request(url.path, query)
        fault = owner.fault_for(url.path, query) if owner.fault_for else None
        if fault is not None:
            if fault.hang_secs:
                owner.stopping.wait(fault.hang_secs)
            if fault.close or owner.stopping.is_set():
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.status is not None:
                self._send(fault.status, _status(fault.status, "InternalError"
                                                 if fault.status >= 500 else "Expired",
                                                 "injected fault"))
                return
        if owner.token and self.headers.get("Authorization") != f"Bearer {owner.token}":
            self._send(401, _status(401, "Unauthorized", "Unauthorized"))
            return
        parts = url.path.strip("/").split("/")
        if parts == ["api"]:
            self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        elif parts == ["version"]:
            self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0"})
        elif parts[:2] == ["api", "v1"] and parts[2:] in ([PODS], [NAMESPACES]):
            self._collection(parts[2], query)
        elif parts[:3] == ["api", "v1", NAMESPACES] and len(parts) in (4, 6):
            resource, key = (PODS, f"{parts[3]}/{parts[5]}") if len(parts) == 6 \
                else (NAMESPACES, parts[3])
            obj = owner.state.get(resource, key) if len(parts) == 4 or parts[4] == PODS \
                else None
            if obj is None:
                self._send(404, _status(404, "NotFound", f"{resource} {key!r} not found"))
            else:
                self._send(200, {"kind": "Pod" if resource == PODS else "Namespace",
                                 "apiVersion": "v1", **obj})
        else:
            self._send(404, _status(404, "NotFound", "the server could not find the resource"))

    def _collection(self, resource: str, query: dict[str, str]) -> None:
        match = _selector(query.get("fieldSelector"))
        if match is None:
            self._send(400, _status(400, "BadRequest", "field label not supported"))
            return
        kind = "Pod" if resource == PODS else "Namespace"
        if query.get("watch") not in ("true", "1"):
            items, version = self.server.owner.state.snapshot(resource, match)
            self._send(200, {"kind": f"{kind}List", "apiVersion": "v1",
                             "metadata": {"resourceVersion": str(version)}, "items": items})
            return
        self._watch(resource, kind, query, match)

    def _watch(self, resource: str, kind: str, query: dict[str, str],
               match: Callable[[dict[str, Any]], bool]) -> None:
        owner = self.server.owner
        timeout = min(float(query.get("timeoutSeconds") or 1800), owner.max_watch_secs)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        start = query.get("resourceVersion", "")
        if start in ("", "0"):
            items, version = owner.state.snapshot(resource, match)
            for obj in items:
                self._chunk({"type": "ADDED", "object": {"kind": kind, "apiVersion": "v1",
                                                        **obj}})
        else:
            version = int(start) if start.isdigit() else 0
        deadline = time.monotonic() + timeout
        while not owner.stopping.is_set() and time.monotonic() < deadline:
            batch = owner.state.after(resource, version, match,
                                      min(0.2, max(0.0, deadline - time.monotonic())))
            if batch is None:
                self._chunk({"type": "ERROR", "object": _status(
                    410, "Expired", f"too old resource version: {version}")})
                break
            events, version = batch
            for _rv, event_kind, obj in events:
                self._chunk({"type": event_kind, "object": {"kind": kind, "apiVersion": "v1",
                                                            **obj}})
        else:
            if owner.stopping.is_set():  # the API goes away: cut the stream mid-way
                self.close_connection = True
                return
            if query.get("allowWatchBookmarks") == "true":
                self._chunk({"type": "BOOKMARK", "object": {
                    "kind": kind, "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(version)}}})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    owner: KubeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-watch (an agent stopping) is normal, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class KubeApiServer:
    """The server; ``state`` survives ``stop``/``start``, so an outage loses nothing."""

    def __init__(self, state: ApiState | None = None, port: int = 0,
                 token: str | None = None, max_watch_secs: float = 60.0) -> None:
        self.state = state or ApiState()
        self.port = port
        self.token = token
        self.max_watch_secs = max_watch_secs
        self.fault_for: Callable[[str, dict[str, str]], Fault | None] | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.stopping.clear()
        httpd = _HttpServer(("127.0.0.1", self.port), _Handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={
            "poll_interval": 0.05}, name="k8s-api", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Close the listener and every open connection (watches end without a last chunk)."""
        self.stopping.set()
        self.state.wake()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()  # no new connections
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # idle keep-alive connections and open watches alike
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if httpd is not None:
            httpd.server_close()

    def track(self, sock: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._sockets.add if open_ else self._sockets.discard)(sock)

    def log_request(self, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, query))

    def count(self, path: str | None = None, watch: bool | None = None) -> int:
        """Requests received so far (for a path, and only watches / only the rest)."""
        with self._lock:
            return sum(1 for p, q in self.requests if (path is None or p == path) and (
                watch is None or (q.get("watch") in ("true", "1")) == watch))

    def __enter__(self) -> KubeApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
