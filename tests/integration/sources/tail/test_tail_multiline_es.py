"""Stack traces chosen by pod annotations, end to end: tail → kubernetes_metadata → a real
Elasticsearch API, with the pods served by the local Kubernetes API server.

Every trace must be one document and every other line its own document, with stdout and
stderr interleaved, a trace line split into 16 KiB CRI pieces, a trace cut by a rotation,
and a trace cut by SIGKILL and finished after the restart: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipper.app import Agent
from shipper.demo.esquery import SearchClient
from shipper.demo.k8s_api import NAMESPACES, PODS, KubeApiServer
from shipper.demo.k8s_objects import namespace_object
from tests.integration.agent_harness import load, run_until_settled, unique_prefix
from tests.integration.filters.kubernetes.conftest import NODE, cid, make_pod

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    refresh_interval_secs: 0.2
    rotate_wait_secs: 1
    checkpoint_interval_secs: 0.1
    multiline: {rules}
filters:
  k8s:
    type: kubernetes_metadata
    kubernetes_url: "{api}"
    node_name: {node}
    retry_initial_secs: 0.2
    retry_max_secs: 1
outputs:
  es:
    type: elasticsearch
    hosts: ["{es}"]
    logstash_prefix: {prefix}
    template_name: {prefix}
    buffer: {{flush_interval_secs: 0.1, retry_initial_secs: 0.05, retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:0"}}
shutdown_deadline_secs: 10
"""

JAVA = [
    "java.lang.IllegalStateException: order 42 failed",
    "\tat com.example.shop.OrderService.process(OrderService.java:57)",
    "\tat com.example.shop.OrderController.submit(OrderController.java:31)",
    "Caused by: java.sql.SQLException: Connection refused",
    "\tat com.example.shop.Db.query(Db.java:88)",
    "\t... 2 more",
]
PYTHON = [
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 12, in fetch',
    "    return client.get(url)",
    "ConnectionError: refused",
    "",
    "The above exception was the direct cause of the following exception:",
    "",
    "Traceback (most recent call last):",
    '  File "/app/worker.py", line 20, in <module>',
    "    main()",
    "RuntimeError: fetch failed",
]


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    server = KubeApiServer(max_watch_secs=30)
    server.state.put(NAMESPACES, namespace_object("shop", "ns-shop", {"team": "payments"}))
    server.state.put(PODS, make_pod("orders-1", "uid-orders", 1,
                                    annotations={"shipper.io/multiline": "java"}))
    server.state.put(PODS, make_pod("worker-1", "uid-worker", 2,
                                    annotations={"shipper.io/multiline.app": "python"}))
    server.state.put(PODS, make_pod("plain-1", "uid-plain", 3))
    server.start()
    yield server
    server.stop()


class PodLog:
    """One container's CRI log file; every written line gets its own time."""

    def __init__(self, logs: Path, pod: str, n: int) -> None:
        self.path = logs / f"{pod}_shop_app-{cid(n)}.log"
        self.n = 0

    def write(self, lines: list[tuple[str, str]] | list[str], tag: str = "F") -> None:
        with open(self.path, "a") as fh:
            for item in lines:
                stream, text = item if isinstance(item, tuple) else ("stdout", item)
                self.n += 1
                fh.write(f"2026-11-22T00:00:00.{self.n:09d}Z {stream} {tag} {text}\n")

    def pieces(self, stream: str, text: str, size: int = 16384) -> None:
        """One message as the runtime writes a long one: P pieces, then the F piece."""
        parts = [text[i:i + size] for i in range(0, len(text), size)]
        for part in parts[:-1]:
            self.write([(stream, part)], tag="P")
        self.write([(stream, parts[-1])])

    def rotate(self, stamp: str) -> None:
        os.rename(self.path, self.path.with_name(f"{self.path.name}.{stamp}"))
        self.path.touch()


def setup(tmp_path: Path, api: KubeApiServer, es_url: str,
          rules: str = "[]") -> tuple[Path, str, str]:
    logs = tmp_path / "var" / "log" / "containers"
    logs.mkdir(parents=True)
    prefix = unique_prefix()
    text = CONFIG.format(state=tmp_path / "state", logs=logs, api=api.url, node=NODE,
                         es=es_url, prefix=prefix, rules=rules)
    return logs, prefix, text


def documents(es_url: str, prefix: str) -> list[dict[str, Any]]:
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")
    found = es.request("POST", f"/{prefix}-*/_search",
                       {"query": {"match_all": {}}, "size": 1000})
    return [hit["_source"] | {"_id": hit["_id"]} for hit in found["hits"]["hits"]]


def logs_of(docs: list[dict[str, Any]], pod: str) -> Counter[str]:
    return Counter(d["log"] for d in docs if d["kubernetes"]["pod_name"] == pod)


async def test_annotated_pods_ship_each_trace_as_one_document(
        api: KubeApiServer, es_url: str, tmp_path: Path) -> None:
    logs, prefix, text = setup(tmp_path, api, es_url)
    orders, worker, plain = PodLog(logs, "orders-1", 1), PodLog(logs, "worker-1", 2), \
        PodLog(logs, "plain-1", 3)
    # stdout lines between the lines of a stderr trace
    orders.write([("stdout", "INFO order 41 saved"), ("stderr", JAVA[0]),
                  ("stdout", "INFO health ok"), ("stderr", JAVA[1]), ("stderr", JAVA[2]),
                  ("stdout", "\tat looks.like.a.Frame(but.is.stdout)"),
                  *[("stderr", line) for line in JAVA[3:]], ("stdout", "INFO order 43 saved")])
    # a 40 KB exception message in three 16 KiB pieces, then its frames
    long_header = "java.lang.IllegalArgumentException: " + "x" * 40_000
    orders.pieces("stderr", long_header)
    orders.write([("stderr", "\tat com.example.Big.parse(Big.java:1)"), "INFO after big"])
    worker.write(["job 6 done", *PYTHON, "job 8 done"])
    plain.write(["INFO before", *JAVA, "INFO after"])  # no annotation: one line each
    agent = Agent(load(text))
    expected_orders = Counter(["INFO order 41 saved", "INFO health ok", "\n".join(JAVA),
                               "\tat looks.like.a.Frame(but.is.stdout)", "INFO order 43 saved",
                               long_header + "\n\tat com.example.Big.parse(Big.java:1)",
                               "INFO after big"])
    expected_worker = Counter(["job 6 done", "\n".join(PYTHON), "job 8 done"])
    expected_plain = Counter(["INFO before", *JAVA, "INFO after"])
    total = sum(c.total() for c in (expected_orders, expected_worker, expected_plain))
    await run_until_settled(agent, total, timeout_secs=90)

    docs = documents(es_url, prefix)
    assert logs_of(docs, "orders-1") == expected_orders
    assert logs_of(docs, "worker-1") == expected_worker
    assert logs_of(docs, "plain-1") == expected_plain
    assert len(docs) == total and len({d["_id"] for d in docs}) == total
    streams = {d["log"]: d["stream"] for d in docs if d["kubernetes"]["pod_name"] == "orders-1"}
    assert streams["\n".join(JAVA)] == "stderr" and streams["INFO health ok"] == "stdout"


async def test_a_trace_cut_by_a_rotation_is_still_one_document(
        api: KubeApiServer, es_url: str, tmp_path: Path) -> None:
    logs, prefix, text = setup(tmp_path, api, es_url)
    orders = PodLog(logs, "orders-1", 1)
    orders.write(["INFO before", JAVA[0], JAVA[1]])
    agent = Agent(load(text))
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        deadline = time.monotonic() + 30
        while agent.settled_records("es") < 1:  # "INFO before" shipped: the trace is read
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
        orders.rotate("20261122-000001")
        orders.write([*JAVA[2:], "INFO after"])
        deadline = time.monotonic() + 30
        while agent.settled_records("es") < 3:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    docs = documents(es_url, prefix)
    assert logs_of(docs, "orders-1") == Counter(["INFO before", "\n".join(JAVA), "INFO after"])
    assert len(docs) == 3


def start_agent(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                            stderr=open(log, "ab"), stdout=subprocess.DEVNULL)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.1)


@pytest.mark.slow  # waits out an 8 s flush timeout
def test_a_trace_cut_by_sigkill_is_read_again_whole_after_the_restart(
        api: KubeApiServer, es_url: str, tmp_path: Path) -> None:
    # The source's rule for the pod keeps an idle event open 8 s: the kill comes first.
    rules = '[{files: ["orders-*"], preset: go, flush_timeout_secs: 8}]'
    logs, prefix, text = setup(tmp_path, api, es_url, rules)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(text)
    orders = PodLog(logs, "orders-1", 1)
    orders.write(["INFO before", *JAVA[:3]])
    first = start_agent(cfg, tmp_path / "agent.log")
    try:
        wait_for(lambda: len(documents(es_url, prefix)) == 1, 60, "INFO before indexed")
        time.sleep(0.5)  # the trace's first lines are read and held open by now
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert [d["log"] for d in documents(es_url, prefix)] == ["INFO before"]

    orders.write([*JAVA[3:], "INFO after"])  # the rest of the trace, written while down
    second = start_agent(cfg, tmp_path / "agent.log")
    try:  # the trace ships when "INFO after" arrives; "INFO after" when idle for 8 s
        wait_for(lambda: len(documents(es_url, prefix)) >= 3, 60, "every document indexed")
        time.sleep(0.5)  # a duplicate would show up now
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    docs = documents(es_url, prefix)
    assert logs_of(docs, "orders-1") == Counter(["INFO before", "\n".join(JAVA), "INFO after"])
    assert len(docs) == 3
