"""The filter against a real HTTP Kubernetes API through the official client: enrichment,
late pods, deletions, outages at start and mid-way, 410 Gone, 500 storms, hangs."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import pytest

from shipper.demo.embedded_es import free_loopback_port
from shipper.demo.k8s_api import PODS, Fault, KubeApiServer
from shipper.metrics import Metrics
from tests.integration.filters.kubernetes.conftest import (
    NODE,
    eventually,
    filter_config,
    make_pod,
    metric,
    record,
)


def enriched(f: Any, pod: str, n: int) -> dict[str, Any]:
    return f.process([record(pod, n)])[0].body["kubernetes"]  # type: ignore[no-any-return]


def errors(metrics: Metrics, resource: str = "pods") -> float:
    return metric(metrics, "shipper_kubernetes_api_requests_total", filter="k8s",
                  resource=resource, outcome="error")


async def test_a_running_pod_is_enriched_with_fluentds_fields(api: KubeApiServer,
                                                              running: Any) -> None:
    f = await running(filter_config(api.url))
    assert f.synced
    k8s = enriched(f, "web-1", 1)
    assert k8s["pod_id"] == "uid-web-1"
    assert k8s["host"] == NODE
    assert k8s["pod_ip"] == "10.244.0.3"
    assert k8s["container_image"] == "img/web-1:1"
    assert k8s["labels"] == {"app": "web"}
    assert k8s["namespace_id"] == "ns-shop"
    assert k8s["namespace_labels"]["team"] == "payments"
    assert k8s["master_url"] == api.url
    pod_lists = [q for p, q in api.requests if p == "/api/v1/pods" and "watch" not in q]
    assert pod_lists and pod_lists[0]["fieldSelector"] == f"spec.nodeName={NODE}"
    assert pod_lists[0]["resourceVersion"] == "0"
    assert f.cache.counts() == (1, 0)  # the other node's pod is not watched


async def test_a_pod_created_after_its_first_line(api: KubeApiServer, running: Any) -> None:
    f = await running(filter_config(api.url))
    first = enriched(f, "late-1", 5)
    assert "pod_id" not in first and first["pod_name"] == "late-1"  # shipped, not held
    api.state.put(PODS, make_pod("late-1", "uid-late", 5))
    await eventually(lambda: "pod_id" in enriched(f, "late-1", 5), what="late pod enriched")
    assert enriched(f, "late-1", 5)["pod_id"] == "uid-late"


async def test_a_deleted_pod_keeps_its_metadata_for_its_unread_lines(
        api: KubeApiServer, running: Any) -> None:
    f = await running(filter_config(api.url, deleted_pod_retention_secs=60))
    api.state.delete(PODS, "shop/web-1")
    await eventually(lambda: f.cache.counts() == (0, 1), what="deletion seen")
    assert enriched(f, "web-1", 1)["pod_id"] == "uid-web-1"


async def test_api_down_at_start_records_flow_and_requests_stay_within_budget(
        running: Any) -> None:
    port = free_loopback_port()
    metrics = Metrics()
    started = time.monotonic()
    f = await running(filter_config(f"http://127.0.0.1:{port}", initial_sync_timeout_secs=0.5),
                      metrics)
    assert not f.synced
    assert enriched(f, "web-1", 1) == {"namespace_name": "shop", "pod_name": "web-1",
                                       "container_name": "app"}
    await asyncio.sleep(2.0)
    attempts = errors(metrics) + errors(metrics, "namespaces")
    elapsed = time.monotonic() - started
    assert attempts >= 1
    assert attempts <= 4 + 2 * elapsed + 1  # burst + rate * time: no storm
    server = KubeApiServer(port=port)
    server.state.put(PODS, make_pod("web-1", "uid-web-1", 1))
    server.start()
    try:
        await eventually(lambda: f.synced, what="sync after the API came up")
        assert enriched(f, "web-1", 1)["pod_id"] == "uid-web-1"
    finally:
        server.stop()


async def test_api_down_mid_way_keeps_metadata_and_resumes_the_watch(
        api: KubeApiServer, running: Any) -> None:
    metrics = Metrics()
    f = await running(filter_config(api.url), metrics)
    await eventually(lambda: api.count("/api/v1/pods", watch=True) >= 1, what="watching")
    api.stop()
    outage_start = time.monotonic()
    api.state.put(PODS, make_pod("while-down-1", "uid-down", 7))  # happens during the outage
    await asyncio.sleep(2.5)
    assert enriched(f, "web-1", 1)["pod_id"] == "uid-web-1"  # cached pods stay enriched
    assert "pod_id" not in enriched(f, "while-down-1", 7)
    assert metric(metrics, "shipper_kubernetes_watch_up", filter="k8s", resource="pods") == 0
    attempts = errors(metrics) + errors(metrics, "namespaces")
    assert attempts <= 4 + 2 * (time.monotonic() - outage_start) + 1
    api.start()
    await eventually(lambda: "pod_id" in enriched(f, "while-down-1", 7), what="resumed watch")
    assert api.count("/api/v1/pods", watch=False) == 1  # resumed from resourceVersion
    await eventually(lambda: metric(metrics, "shipper_kubernetes_watch_up", filter="k8s",
                                    resource="pods") == 1, what="watch reported up")


async def test_410_gone_after_compaction_means_a_relist(api: KubeApiServer,
                                                        running: Any) -> None:
    metrics = Metrics()
    f = await running(filter_config(api.url), metrics)
    await eventually(lambda: api.count("/api/v1/pods", watch=True) >= 1, what="watching")
    api.stop()
    api.state.put(PODS, make_pod("after-compaction-1", "uid-ac", 8))
    api.state.compact()
    api.start()
    await eventually(lambda: "pod_id" in enriched(f, "after-compaction-1", 8), what="relist")
    assert api.count("/api/v1/pods", watch=False) == 2
    relist = [q for p, q in api.requests if p == "/api/v1/pods" and "watch" not in q][-1]
    assert relist.get("resourceVersion", "") == ""  # a consistent read after 410
    assert metric(metrics, "shipper_kubernetes_api_requests_total", filter="k8s",
                  resource="pods", outcome="gone") >= 1


async def test_a_storm_of_500s_is_not_answered_with_a_storm_of_requests(
        api: KubeApiServer, running: Any) -> None:
    f = await running(filter_config(api.url))
    await eventually(lambda: api.count(watch=True) >= 2, what="both watches")
    api.fault_for = lambda path, query: Fault(status=500)
    before = api.count()
    api.stop()  # cut the open watches so the next requests meet the fault
    api.start()
    await asyncio.sleep(3.0)
    storm = api.count() - before
    assert storm >= 1
    assert storm <= 4 + 2 * 3.0 + 1
    api.fault_for = None
    api.state.put(PODS, make_pod("after-storm-1", "uid-as", 9))
    await eventually(lambda: "pod_id" in enriched(f, "after-storm-1", 9), what="recovery")


async def test_a_hanging_api_neither_blocks_the_start_nor_the_shutdown(
        api: KubeApiServer, running: Any) -> None:
    api.fault_for = lambda path, query: Fault(status=None, hang_secs=30)
    started = time.monotonic()
    f = await running(filter_config(api.url, initial_sync_timeout_secs=0.5,
                                    request_timeout_secs=1))
    assert time.monotonic() - started < 5
    assert not f.synced
    assert "pod_id" not in enriched(f, "web-1", 1)
    api.fault_for = None
    await eventually(lambda: f.synced, what="sync after the hang")
    assert enriched(f, "web-1", 1)["pod_id"] == "uid-web-1"
    closing = time.monotonic()
    await f.close()
    assert time.monotonic() - closing < 8


async def test_a_two_megabyte_pod_is_fine_in_lists_and_in_watch_events(
        api: KubeApiServer, running: Any) -> None:
    big = make_pod("big-1", "uid-big", 11, annotations={
        "kubectl.kubernetes.io/last-applied-configuration": "x" * (2 * 1024 * 1024)})
    api.state.put(PODS, big)
    f = await running(filter_config(api.url, annotation_match=["^team"]))
    assert enriched(f, "big-1", 11)["pod_id"] == "uid-big"
    assert "annotations" not in enriched(f, "big-1", 11)
    big["metadata"]["labels"]["version"] = "v2"
    big["metadata"]["annotations"]["team.io/owner"] = "payments"
    api.state.put(PODS, big)
    await eventually(lambda: enriched(f, "big-1", 11)["labels"].get("version") == "v2",
                     what="big MODIFIED event")
    assert enriched(f, "big-1", 11)["annotations"] == {"team_io/owner": "payments"}


async def test_500_pods_churning_stay_enriched_and_bounded(api: KubeApiServer,
                                                           running: Any) -> None:
    f = await running(filter_config(api.url, deleted_pod_retention_secs=0.2,
                                    max_deleted_pods=300))
    for i in range(500):
        api.state.put(PODS, make_pod(f"churn-{i}", f"uid-c{i}", 1000 + i))
    await eventually(lambda: f.cache.counts()[0] == 501, what="500 pods added")
    for i in range(500):
        api.state.delete(PODS, f"shop/churn-{i}")
        api.state.put(PODS, make_pod(f"next-{i}", f"uid-n{i}", 2000 + i))
    await eventually(lambda: "uid-n499" in f.cache.pods and f.cache.counts()[0] == 501,
                     what="churn seen")
    for i in (0, 250, 499):
        assert enriched(f, f"next-{i}", 2000 + i)["pod_id"] == f"uid-n{i}"
    await eventually(lambda: (f.process([record("web-1", 1)]) and
                              f.cache.counts()[1] == 0), what="deleted pods expired")
    assert len(f.cache.pods) == 501


@pytest.mark.slow
async def test_soak_churn_keeps_memory_flat(api: KubeApiServer, running: Any) -> None:
    """Ten rounds of 500 pods replaced (5000 pods through the cache) while records flow:
    the cache holds the live pods plus at most max_deleted_pods, and memory stops growing."""
    f = await running(filter_config(api.url, deleted_pod_retention_secs=0.5,
                                    max_deleted_pods=600))
    tracemalloc.start()
    sizes = []
    for round_ in range(10):
        for i in range(500):
            n = round_ * 500 + i
            if round_:
                api.state.delete(PODS, f"shop/soak-{n - 500}")
            api.state.put(PODS, make_pod(f"soak-{n}", f"uid-s{n}", 10_000 + n))
        last = round_ * 500 + 499
        await eventually(lambda last=last: f"uid-s{last}" in f.cache.pods, what="round seen")
        for i in range(0, 500, 25):
            n = round_ * 500 + i
            assert f.process([record(f"soak-{n}", 10_000 + n)])[0].body["kubernetes"][
                "pod_id"] == f"uid-s{n}"
        await asyncio.sleep(0.6)
        f.process([record("web-1", 1)])
        await asyncio.sleep(0.3)
        assert len(f.cache.pods) <= 501 + 600
        # only what the filter allocated: the test server in this process keeps a history
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, "*/shipper/filters/*")])
        sizes.append(sum(stat.size for stat in snapshot.statistics("filename")))
    tracemalloc.stop()
    assert sizes[-1] < sizes[2] * 1.3, sizes
