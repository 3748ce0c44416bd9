"""Non-Java application containers: Bookinfo's Python, Ruby and Node services and a JSON API.

Each mimics what the real program writes, including which stream: Python's logging and
WEBrick's access log go to stderr, `http.client` debug output and pino/structured JSON go to
stdout. JSON lines are emitted as compact JSON object strings, so on docker nodes the `log`
field holds escaped JSON inside JSON, which is exactly what a shipper's JSON parser meets.
"""

from __future__ import annotations

import random
from typing import Final

import orjson

from shipper.demo.content.base import (
    Line,
    LineSource,
    WeightedTable,
    hex_id,
    iso_ms,
    millis,
    second_fields,
    uuid4_text,
)
from shipper.demo.topology import Cluster, Container, Pod


def _clf_time(t_ns: int, zone: str) -> str:
    y, _, d, hh, mm, ss, mon = second_fields(t_ns)
    return f"{d}/{mon}/{y}:{hh}:{mm}:{ss} {zone}"


class FlaskSource(LineSource):
    """Bookinfo `productpage`: werkzeug access lines, urllib3 and http.client debug output."""

    def event(self, t_ns: int) -> Line | list[Line]:
        r = self.rng
        x = r.random()
        y, _, d, hh, mm, ss, mon = second_fields(t_ns)
        if x < 0.3:
            path = r.choice(("/productpage", "/productpage", "/api/v1/products", "/static/x.css"))
            return "stderr", (
                f'INFO:werkzeug:::ffff:127.0.0.6 - - [{d}/{mon}/{y} {hh}:{mm}:{ss}] "GET {path} '
                f'HTTP/1.1" 200 -'
            )
        svc, path, size = r.choice(
            (
                ("details", f"/details/{r.randrange(10)}", 178),
                ("reviews", f"/reviews/{r.randrange(10)}", r.choice((295, 358, 379))),
            )
        )
        if x < 0.6:
            return "stderr", (
                f'DEBUG:urllib3.connectionpool:http://{svc}:9080 "GET {path} HTTP/1.1" 200 {size}'
            )
        if x < 0.7:
            return (
                "stderr",
                f"DEBUG:urllib3.connectionpool:Starting new HTTP connection (1): {svc}:9080",
            )
        if x < 0.995:
            rid = uuid4_text(r)
            return [
                (
                    "stdout",
                    f"send: b'GET {path} HTTP/1.1\\r\\nHost: {svc}:9080\\r\\nuser-agent: "
                    f"python-requests/2.31.0\\r\\nAccept-Encoding: gzip, deflate\\r\\nAccept: */*"
                    f"\\r\\nConnection: keep-alive\\r\\nx-request-id: {rid}\\r\\n\\r\\n'",
                ),
                ("stdout", "reply: 'HTTP/1.1 200 OK\\r\\n'"),
                ("stdout", "header: content-type: application/json"),
                ("stdout", f"header: content-length: {size}"),
                ("stdout", "header: server: envoy"),
                ("stdout", f"header: x-envoy-upstream-service-time: {r.randint(1, 40)}"),
            ]
        return [
            ("stderr", "ERROR:root:Error fetching product reviews"),
            ("stderr", "Traceback (most recent call last):"),
            (
                "stderr",
                '  File "/opt/microservices/productpage.py", line 411, in getProductReviews',
            ),
            ("stderr", "    res = send_request(url, headers=headers, timeout=3.0)"),
            ("stderr", '  File "/opt/microservices/productpage.py", line 378, in send_request'),
            ("stderr", "    return requests.get(url, **kwargs)"),
            (
                "stderr",
                "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='reviews', port=9080): "
                "Read timed out. (read timeout=3.0)",
            ),
        ]

    def long_line(self, t_ns: int, blob: str) -> Line:
        return "stdout", f'send: b\'POST /api/v1/cart HTTP/1.1\\r\\n\\r\\n{{"items":"{blob}"}}\''

    def non_ascii_line(self, t_ns: int) -> Line:
        y, _, d, hh, mm, ss, mon = second_fields(t_ns)
        return "stderr", (
            f"INFO:werkzeug:::ffff:127.0.0.6 - - [{d}/{mon}/{y} {hh}:{mm}:{ss}] "
            '"GET /productpage?u=Zoë HTTP/1.1" 200 - (user=«zoë» ☕)'
        )


class WebrickSource(LineSource):
    """Bookinfo `details` (Ruby WEBrick): common-log lines and referer lines on stderr."""

    def event(self, t_ns: int) -> Line | list[Line]:
        r = self.rng
        if r.random() < 0.01:
            y, m, d, hh, mm, ss, _ = second_fields(t_ns)
            return (
                "stderr",
                f"[{y}-{m}-{d} {hh}:{mm}:{ss}] INFO  WEBrick::HTTPServer#start: pid=1 port=9080",
            )
        path = f"/details/{r.randrange(10)}"
        peer = f"10.244.{r.randrange(1, 250)}.{r.randrange(2, 255)}"
        return [
            ("stderr", f'{peer} - - [{_clf_time(t_ns, "UTC")}] "GET {path} HTTP/1.1" 200 178'),
            ("stderr", f"- -> {path}"),
        ]

    def long_line(self, t_ns: int, blob: str) -> Line:
        return (
            "stderr",
            f'127.0.0.6 - - [{_clf_time(t_ns, "UTC")}] "GET /details/0?isbn={blob} HTTP/1.1" '
            "200 178",
        )

    def non_ascii_line(self, t_ns: int) -> Line:
        return "stdout", "Loaded details for «Les Misérables» (Victor Hugo) — 1862 ✓"


class PinoSource(LineSource):
    """Bookinfo `ratings` (Node.js): pino JSON request logs on stdout."""

    def __init__(self, rng: random.Random, cluster: Cluster, pod: Pod, container: Container):
        super().__init__(rng, cluster, pod, container)
        self.req_id = 0

    def _record(self, t_ns: int, **fields: object) -> str:
        self.req_id += 1
        base: dict[str, object] = {
            "level": 30,
            "time": millis(t_ns),
            "pid": 1,
            "hostname": self.pod.name,
        }
        base.update(fields)
        return orjson.dumps(base).decode()

    def event(self, t_ns: int) -> Line:
        r = self.rng
        pid = r.randrange(10)
        if r.random() < 0.03:
            return "stderr", self._record(
                t_ns,
                level=50,
                msg="mongodb query failed",
                err={
                    "type": "MongoNetworkError",
                    "message": "connection 3 to 10.96.12.7:27017 timed out",
                },
                productId=pid,
            )
        return "stdout", self._record(
            t_ns,
            req={
                "id": self.req_id,
                "method": "GET",
                "url": f"/ratings/{pid}",
                "remoteAddress": "::ffff:127.0.0.6",
                "remotePort": r.randrange(32768, 61000),
            },
            res={"statusCode": 200},
            responseTime=r.randint(1, 25),
            msg="request completed",
        )

    def long_line(self, t_ns: int, blob: str) -> Line:
        return "stdout", self._record(t_ns, level=20, msg="ratings cache dump", cache=blob)

    def non_ascii_line(self, t_ns: int) -> Line:
        return "stdout", self._record(
            t_ns, msg="rating stored", reviewer="Chloé Ñúñez", note="👍 très bon"
        )


_LEVELS: Final = WeightedTable([("info", 90.0), ("debug", 6.0), ("warning", 3.0), ("error", 1.0)])
_EVENTS: Final = {
    "info": ("items listed", "item fetched", "stock updated", "category tree served"),
    "debug": ("cache hit", "cache miss", "db pool checkout"),
    "warning": ("slow query", "stock below threshold"),
    "error": ("unhandled exception",),
}


class JsonAppSource(LineSource):
    """A structured-logging API (`catalog`): one compact JSON object per line on stdout."""

    def event(self, t_ns: int) -> Line:
        r = self.rng
        level = _LEVELS.pick(r)
        rec: dict[str, object] = {
            "ts": iso_ms(t_ns),
            "level": level,
            "logger": "catalog.api",
            "msg": r.choice(_EVENTS[level]),
            "trace_id": hex_id(r, 32),
            "span_id": hex_id(r, 16),
        }
        if level == "error":
            rec["exc_info"] = (
                "Traceback (most recent call last):\n"
                '  File "/app/catalog/api.py", line 88, in get_item\n'
                "    row = await db.fetch_one(query, sku)\n"
                "asyncpg.exceptions.QueryCanceledError: "
                "canceling statement due to statement timeout"
            )
        else:
            rec["http"] = {
                "method": "GET",
                "path": f"/api/v1/items/sku-{r.randrange(10**5):05d}",
                "status": 200,
                "duration_ms": round(r.uniform(0.5, 40), 2),
            }
        return "stdout", orjson.dumps(rec).decode()

    def long_line(self, t_ns: int, blob: str) -> Line:
        rec = {
            "ts": iso_ms(t_ns),
            "level": "debug",
            "logger": "catalog.api",
            "msg": "response body",
            "body": blob,
        }
        return "stdout", orjson.dumps(rec).decode()

    def non_ascii_line(self, t_ns: int) -> Line:
        rec = {
            "ts": iso_ms(t_ns),
            "level": "info",
            "logger": "catalog.api",
            "msg": "item fetched",
            "item": {"sku": "sku-04711", "name": "Café au lait ☕", "origin": "São Tomé"},
        }
        return "stdout", orjson.dumps(rec).decode()
