"""``shipper tap`` (the real command, in its own process) against two running agents.

Node 1 runs the client pods (the ingress gateway and productpage), node 2 the servers
(orders and reviews): every request's outbound line is on one agent and its inbound line on
the other, as in a cluster, so only merging the two streams can pair them.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys

import orjson

from tests.integration.tap.conftest import until
from tests.unit.tap.traffic import (
    GATEWAY,
    ORDERS,
    PRODUCTPAGE,
    REVIEWS,
    Call,
    call_lines,
    write_container_log,
)

ID1 = "a" * 64
ID2 = "b" * 64


def traffic(n: int) -> tuple[dict, dict]:
    """Lines per pod: {pod: [lines]} for node 1 (clients) and node 2 (servers)."""
    rng = random.Random(9)
    clients: dict = {GATEWAY: [], PRODUCTPAGE: []}
    servers: dict = {ORDERS: [], REVIEWS: []}
    for i in range(n):
        client, server = (GATEWAY, ORDERS) if i % 2 else (PRODUCTPAGE, REVIEWS)
        code = 503 if i % 5 == 0 else 200
        out_line, in_line = call_lines(
            Call(client, server, path=f"/r/{i}", code=code, flags="UC" if code == 503 else "-",
                 request_id=f"req-{i:04d}", client_ms=20 + i, server_ms=5 + i), rng)
        clients[client].append(out_line)
        servers[server].append(in_line)
    return clients, servers


def write(root, lines_by_pod, container_id):
    for pod, lines in lines_by_pod.items():
        write_container_log(root, pod, lines, container_id)


def tap(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "tap", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def finish(proc: subprocess.Popen[bytes]) -> list[str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_the_cli_merges_two_agents_and_pairs_each_request_across_them(start_agent):
    node1 = await start_agent("node-1")
    node2 = await start_agent("node-2")
    agents = ["--agent", node1.url, "--agent", node2.url]
    paired = tap(*agents, "--pair", "-n", "40")
    errors = tap(*agents, "--response-code", "500-599", "-o", "json", "-n", "16")
    orders = tap(*agents, "workload/orders", "--ns", "shop", "-n", "40")
    await until(lambda: node1.agent.tap.subscribers == 3 and
                node2.agent.tap.subscribers == 3, "three CLIs on both agents")
    clients, servers = traffic(40)
    write(node1.root, clients, ID1)
    write(node2.root, servers, ID2)

    lines = await finish(paired)
    assert len(lines) == 40
    by_path = {line.split()[5]: line for line in lines}
    assert by_path["/r/7"] == ("2026-11-22T01:02:04.801Z istio-system/istio-ingressgateway -> "
                               "shop/orders GET /r/7 200 - client 27ms server 12ms")
    assert by_path["/r/10"] == ("2026-11-22T01:02:04.801Z bookinfo/productpage-v1 -> "
                                "bookinfo/reviews-v2 GET /r/10 503 UC client 30ms server 15ms")

    events = [orjson.loads(line) for line in await finish(errors)]
    assert len(events) == 16  # 8 failed requests, each seen by both sidecars
    assert {e["envoy"]["response_code"] for e in events} == {503}
    assert {e["direction"] for e in events} == {"inbound", "outbound"}

    lines = await finish(orders)  # the gateway's calls to orders, from both sides
    assert len(lines) == 40
    assert all("-> shop/orders GET" in line for line in lines)
    assert sum(line.endswith(" out") for line in lines) == 20


async def test_the_cli_reports_an_agent_without_tap(start_agent):
    node = await start_agent()
    proc = tap("--agent", node.url, "--agent", "http://127.0.0.1:9", "-n", "1")
    await until(lambda: node.agent.tap.subscribers == 1, "subscribed")
    write(node.root, traffic(2)[1], ID2)
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0 and len(out.decode().splitlines()) == 1
    assert "http://127.0.0.1:9" in err.decode()
