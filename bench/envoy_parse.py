"""Micro-benchmark of the Envoy access-log parser and filter: microseconds per line.

Not a test (timings depend on the machine). Run ``python -m bench.envoy_parse``. The filter
runs on every line of every istio-proxy container, so its cost per line is what matters:
each case parses a batch of distinct lines (varied numbers, ids and paths, so no cache can
help) many times and reports the best round, per line.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from shipper.filters.envoy import EnvoyAccessLogConfig, EnvoyAccessLogFilter
from shipper.filters.envoy.parse import parse_line
from shipper.metrics import Metrics
from shipper.record import Record

TEXT = ('[2026-11-22T01:02:{s:02d}.{ms:03d}Z] "GET /api/v1/items/sku-{n:05d}?limit=20 HTTP/1.1" '
        '{code} - via_upstream - "-" 0 {tx} {dur} {ust} "-" "python-requests/2.32.3" '
        '"{rid}" "catalog.shop.svc.cluster.local:8080" "10.244.2.17:8080" '
        "outbound|8080||catalog.shop.svc.cluster.local 10.244.1.9:{p1} 10.96.143.22:8080 "
        "10.244.1.9:{p2} - default")
QUOTED_UA = TEXT.replace("python-requests/2.32.3", 'Mozilla/5.0 (compatible; "bot") {n}')
JSON = ('{{"start_time":"2026-11-22T01:02:{s:02d}.{ms:03d}Z","method":"GET",'
        '"path":"/api/v1/items/sku-{n:05d}","protocol":"HTTP/1.1","response_code":{code},'
        '"response_flags":"-","response_code_details":"via_upstream",'
        '"connection_termination_details":null,"upstream_transport_failure_reason":null,'
        '"bytes_received":0,"bytes_sent":{tx},"duration":{dur},"upstream_service_time":"{ust}",'
        '"x_forwarded_for":null,"user_agent":"python-requests/2.32.3","request_id":"{rid}",'
        '"authority":"catalog.shop.svc.cluster.local:8080","upstream_host":"10.244.2.17:8080",'
        '"upstream_cluster":"inbound|8080||","upstream_local_address":"127.0.0.6:{p1}",'
        '"downstream_local_address":"10.244.2.17:8080",'
        '"downstream_remote_address":"10.244.1.9:{p2}",'
        '"requested_server_name":"outbound_.8080_._.catalog.shop.svc.cluster.local",'
        '"route_name":"default"}}')
AGENT = "2024-10-25T07:40:{s:02d}.916469Z\tinfo\tcache\tgenerated new workload certificate {n}"


def lines(template: str, count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        out.append(template.format(
            s=i % 60, ms=rng.randrange(1000), n=rng.randrange(100_000),
            code=rng.choice((200, 200, 200, 201, 404, 503)), tx=rng.randrange(20_000),
            dur=rng.randrange(3000), ust=rng.randrange(3000), rid=f"{rng.getrandbits(128):032x}",
            p1=rng.randrange(32768, 61000), p2=rng.randrange(32768, 61000)))
    return out


def best_us_per_line(run: Callable[[], Any], count: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000, help="distinct lines per case")
    parser.add_argument("--rounds", type=int, default=20, help="best of this many rounds")
    args = parser.parse_args()
    n, rounds = args.lines, args.rounds
    cases = {
        "text (Istio default)": lines(TEXT, n),
        "text, quote in user agent": lines(QUOTED_UA, n),
        "json encoding": lines(JSON, n),
        "not an access log": lines(AGENT, n),
    }
    print(f"{'case':<34}{'us/line':>10}")
    for name, data in cases.items():
        assert (parse_line(data[0]) is None) == (name == "not an access log"), name
        us = best_us_per_line(lambda data=data: [parse_line(x) for x in data], n, rounds)
        print(f"parse_line: {name:<23}{us:>10.2f}")

    # The whole filter on a realistic sidecar mix: 98.5 % access logs, the rest agent logs.
    k8s = {"namespace_name": "shop", "pod_name": "catalog-1", "container_name": "istio-proxy"}
    mix = lines(TEXT, n)
    for i in range(0, n, 67):
        mix[i] = lines(AGENT, 1, seed=i)[0]
    filt = EnvoyAccessLogFilter("envoy", EnvoyAccessLogConfig(), Metrics())

    def run_filter() -> None:
        batch = [Record({"log": line, "stream": "stdout", "kubernetes": k8s}, 0, "t")
                 for line in mix]
        filt.process(batch)

    build_only = best_us_per_line(
        lambda: [Record({"log": line, "stream": "stdout", "kubernetes": k8s}, 0, "t")
                 for line in mix], n, rounds)
    total = best_us_per_line(run_filter, n, rounds)
    print(f"{'filter, sidecar mix (net)':<34}{total - build_only:>10.2f}")
    other = {"namespace_name": "shop", "pod_name": "catalog-1", "container_name": "catalog"}

    def run_skip() -> None:
        filt.process([Record({"log": line, "kubernetes": other}, 0, "t") for line in mix])

    skip = best_us_per_line(run_skip, n, rounds) - build_only
    print(f"{'filter, other containers (net)':<34}{max(skip, 0.0):>10.2f}")


if __name__ == "__main__":
    main()
