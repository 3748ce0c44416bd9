"""A real HTTP Kubernetes API on loopback (the demo's server) and the filter under test.

The official client talks to it over real sockets; faults are injected through the server's
``fault_for`` hook or by stopping it (open watches are cut) and starting it again on the same
port with the same objects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from shipper.demo.k8s_api import NAMESPACES, PODS, KubeApiServer
from shipper.demo.k8s_objects import namespace_object, pod_object
from shipper.filters.kubernetes import KubernetesMetadataConfig, KubernetesMetadataFilter
from shipper.metrics import Metrics
from shipper.record import Record

NODE = "node-1"


def cid(n: int) -> str:
    return f"{n:064x}"


def make_pod(name: str, uid: str, n: int, node: str = NODE, namespace: str = "shop",
             **kwargs: Any) -> dict[str, Any]:
    """A running pod with one container ``app`` whose id is ``cid(n)``."""
    kwargs.setdefault("labels", {"app": name.rsplit("-", 1)[0]})
    return pod_object(namespace=namespace, name=name, uid=uid, node=node,
                      ip=f"10.244.0.{n % 250 + 2}", containers=[("app", f"img/{name}:1", cid(n))],
                      **kwargs)


def record(pod: str, n: int, namespace: str = "shop", log: str = "line") -> Record:
    """A tailed record of the pod's ``app`` container, as the tail builds it."""
    return Record({"log": log, "stream": "stdout", "tag": "kube.x",
                   "kubernetes": {"namespace_name": namespace, "pod_name": pod,
                                  "container_name": "app"},
                   "docker": {"container_id": cid(n)}}, 0, "kube.x")


async def eventually(check: Callable[[], bool], timeout: float = 15.0,
                     what: str = "condition") -> None:
    """Poll ``check`` (bounded in time) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def api() -> Iterator[KubeApiServer]:
    server = KubeApiServer(max_watch_secs=30)
    server.state.put(NAMESPACES, namespace_object("shop", "ns-shop", {"team": "payments"}))
    server.state.put(PODS, make_pod("web-1", "uid-web-1", 1))
    server.state.put(PODS, make_pod("elsewhere-1", "uid-else", 99, node="node-2"))
    server.start()
    yield server
    server.stop()


def filter_config(url: str, **overrides: Any) -> KubernetesMetadataConfig:
    settings: dict[str, Any] = {
        "kubernetes_url": url, "node_name": NODE, "initial_sync_timeout_secs": 10,
        "request_timeout_secs": 2, "watch_timeout_secs": 20, "retry_initial_secs": 0.2,
        "retry_max_secs": 1, "max_requests_per_sec": 2}
    settings.update(overrides)
    return KubernetesMetadataConfig(**settings)


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    """Start filters (``await running(config)``); every one is closed at the end."""
    started: list[KubernetesMetadataFilter] = []

    async def start(config: KubernetesMetadataConfig,
                    metrics: Metrics | None = None) -> KubernetesMetadataFilter:
        f = KubernetesMetadataFilter("k8s", config, metrics or Metrics())
        started.append(f)
        await f.start()
        return f

    yield start
    for f in started:
        await asyncio.wait_for(f.close(), 10)
