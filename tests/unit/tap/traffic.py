"""Generated sidecar traffic with both ends of every call, for tap and pairing tests.

``shipper.demo.loggen`` writes realistic istio-proxy files, but each proxy draws its own
request ids, so no two lines belong to one request. Here every call is logged twice, as Istio
does: outbound by the client pod's sidecar, inbound by the server pod's, with one
``x-request-id``, the client's upstream host equal to the server's downstream local address,
and Istio's default TEXT format (parsed by the real ``envoy_access_log`` filter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson

from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.metrics import Metrics
from shipper.record import Record

LINE = ('[{start}] "{method} {path} HTTP/1.1" {code} {flags} {details} - "-" 0 {sent} {dur} '
        '{ust} "-" "{ua}" "{rid}" "{authority}" "{upstream}" {cluster} {upstream_local} '
        '{downstream_local} {downstream_remote} {sni} default')


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str
    service: str = ""
    port: int = 8080

    @property
    def fqdn(self) -> str:
        return f"{self.service}.{self.namespace}.svc.cluster.local"


PRODUCTPAGE = Pod("bookinfo", "productpage-v1-6b746f74dc-9stvs", "10.244.1.9", "productpage",
                  9080)
REVIEWS = Pod("bookinfo", "reviews-v2-7d79d5bd5d-mpsx4", "10.244.2.17", "reviews", 9080)
RATINGS = Pod("bookinfo", "ratings-v1-85cc46b6d4-wl5dj", "10.244.2.30", "ratings", 9080)
ORDERS = Pod("shop", "orders-7d4b9c5f8-x2x5z", "10.244.3.21", "orders", 8080)
GATEWAY = Pod("istio-system", "istio-ingressgateway-5c9bd6f5b7-pqj2k", "10.244.1.4")


@dataclass(frozen=True)
class Call:
    client: Pod
    server: Pod
    method: str = "GET"
    path: str = "/"
    code: int = 200
    flags: str = "-"
    request_id: str = "00000000-0000-4000-8000-000000000000"
    client_ms: int = 12
    server_ms: int = 9
    start: str = "2026-11-22T01:02:04.801Z"


def call_lines(call: Call, rng: random.Random) -> tuple[str, str]:
    """(client sidecar's outbound line, server sidecar's inbound line)."""
    server = call.server
    details = "via_upstream" if call.flags == "-" else "upstream_reset_before_response_started"
    common = {"start": call.start, "method": call.method, "path": call.path, "code": call.code,
              "flags": call.flags, "details": details, "sent": rng.randrange(20, 900),
              "ua": "python-requests/2.31.0", "rid": call.request_id,
              "authority": f"{server.service}:{server.port}"}
    outbound = LINE.format(
        **common, dur=call.client_ms, ust=call.server_ms, upstream=f"{server.ip}:{server.port}",
        cluster=f"outbound|{server.port}||{server.fqdn}",
        upstream_local=f"{call.client.ip}:{rng.randrange(32768, 60999)}",
        downstream_local=f"10.96.0.{rng.randrange(2, 250)}:{server.port}",
        downstream_remote=f"{call.client.ip}:{rng.randrange(32768, 60999)}", sni="-")
    inbound = LINE.format(
        **common, dur=call.server_ms, ust=max(0, call.server_ms - 1),
        upstream=f"{server.ip}:{server.port}", cluster=f"inbound|{server.port}||",
        upstream_local=f"127.0.0.6:{rng.randrange(32768, 60999)}",
        downstream_local=f"{server.ip}:{server.port}",
        downstream_remote=f"{call.client.ip}:{rng.randrange(32768, 60999)}",
        sni=f"outbound_.{server.port}_._.{server.fqdn}")
    return outbound, inbound


def record(pod: Pod, line: str, time_ns: int = 1_795_000_000_000_000_000) -> Record:
    """A tailed istio-proxy record, before filters (what the tail source emits)."""
    body = {"log": line, "stream": "stdout",
            "kubernetes": {"namespace_name": pod.namespace, "pod_name": pod.name,
                           "container_name": "istio-proxy", "host": "node-1"}}
    return Record(body, time_ns, f"kube.var.log.containers.{pod.name}")


_FILTER = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), Metrics())


def parsed(records: list[Record]) -> list[Record]:
    """Through the real envoy_access_log filter, as in the agent."""
    return _FILTER.process(records)


def call_records(call: Call, seed: int = 1) -> tuple[Record, Record]:
    """(outbound record of the client, inbound record of the server), parsed."""
    out_line, in_line = call_lines(call, random.Random(seed))
    out_rec, in_rec = parsed([record(call.client, out_line), record(call.server, in_line)])
    return out_rec, in_rec


def write_container_log(root: Path, pod: Pod, lines: list[str], container_id: str) -> Path:
    """A docker json-file log under ``root/var/log/containers`` named like kubelet's."""
    directory = root / "var" / "log" / "containers"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{pod.name}_{pod.namespace}_istio-proxy-{container_id}.log"
    with path.open("ab") as fh:
        for i, line in enumerate(lines):
            fh.write(orjson.dumps({"log": line + "\n", "stream": "stdout",
                                   "time": f"2026-11-22T01:02:04.{i % 1000:03d}000000Z"})
                     + b"\n")
    return path
