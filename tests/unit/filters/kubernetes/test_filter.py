"""The record path of the Kubernetes filter: no I/O, nothing held back, shared dicts."""

from __future__ import annotations

from typing import Any

from shipper.filters.kubernetes import KubernetesMetadataConfig, KubernetesMetadataFilter
from shipper.metrics import Metrics
from shipper.record import Record
from tests.unit.filters.kubernetes.helpers import cid, file_fields, raw_namespace, raw_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_filter(pods: list[dict[str, Any]], **config: Any,
                ) -> tuple[KubernetesMetadataFilter, Metrics]:
    metrics = Metrics()
    f = KubernetesMetadataFilter("k8s", KubernetesMetadataConfig(**config), metrics, Clock())
    f.apply_snapshot("namespaces", [f.extractor.namespace(raw_namespace())])
    f.apply_snapshot("pods", [f.extractor.pod(p) for p in pods])
    return f, metrics


def file_records(n: int, log: str = "line", **fields: Any) -> list[Record]:
    """Records of one file: like the tail, they share one kubernetes and one docker dict."""
    k8s, docker = file_fields(**fields)
    static: dict[str, Any] = {"tag": "kube.x", "kubernetes": k8s}
    if docker is not None:
        static["docker"] = docker
    return [Record({"log": f"{log} {i}", "stream": "stdout", **static}, i, "kube.x")
            for i in range(n)]


def metric(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_every_record_of_a_container_shares_one_ready_made_dict() -> None:
    f, metrics = make_filter([raw_pod()])
    records = file_records(5, container_id=cid(1))
    original = records[0].body["kubernetes"]
    snapshot = dict(original)
    out = f.process(records)
    assert out is records
    shared = out[0].body["kubernetes"]
    assert all(r.body["kubernetes"] is shared for r in out)
    assert shared["labels"] == {"app": "web"}
    assert shared["namespace_id"] == "ns-uid-shop"
    assert original == snapshot  # the tail's shared dict was replaced, not mutated
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="enriched") == 5


def test_forwarded_records_with_equal_maps_of_their_own_are_resolved_once_per_run() -> None:
    f, metrics = make_filter([raw_pod()])
    known = file_fields(container_id=cid(1))
    unknown = file_fields(pod="unknown-pod", container_id=cid(2))
    fields = [known, known, unknown, known]
    records = [Record({"log": str(i), "kubernetes": dict(k8s), "docker": dict(docker or {})},
                      i, "fwd") for i, (k8s, docker) in enumerate(fields)]  # a copy each
    other = unknown[0]
    calls = []
    resolve = f.cache.resolve
    f.cache.resolve = lambda *args: calls.append(args) or resolve(*args)  # type: ignore[method-assign]
    out = f.process(records)
    assert len(calls) == 3  # the second record reuses the first one's result
    enriched = [r.body["kubernetes"] for r in out]
    assert enriched[0] is enriched[1] is enriched[3]
    assert enriched[0]["labels"] == {"app": "web"}
    assert enriched[2] == other  # unknown pod: its own fields, untouched
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="enriched") == 3
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="not_found") == 1


def test_a_record_of_an_unknown_pod_ships_at_once_with_its_file_name_fields() -> None:
    f, metrics = make_filter([raw_pod()])
    records = file_records(3, pod="new-pod-1", container_id=cid(8))
    out = f.process(records)
    assert [r.body["kubernetes"] for r in out] == [
        {"namespace_name": "shop", "pod_name": "new-pod-1", "container_name": "app"}] * 3
    assert out[0].body["docker"] == {"container_id": cid(8)}
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="not_found") == 3


def test_records_without_kubernetes_fields_pass_untouched_and_uncounted() -> None:
    f, metrics = make_filter([raw_pod()])
    records = [Record({"log": "from forward"}, 0, "app.x")]
    assert f.process(records)[0].body == {"log": "from forward"}
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="not_found") == 0


def test_the_exclude_annotation_drops_that_pods_records_and_counts_them() -> None:
    noisy = raw_pod(name="noisy-1", uid="uid-noisy", annotations={"shipper.io/exclude": "true"},
                    containers=[("app", "img", cid(2))])
    f, metrics = make_filter([raw_pod(), noisy])
    batch = (file_records(2, log="keep-a", container_id=cid(1))
             + file_records(3, pod="noisy-1", container_id=cid(2))
             + file_records(2, log="keep-b", container_id=cid(1)))
    out = f.process(batch)
    assert [r.body["log"] for r in out] == ["keep-a 0", "keep-a 1", "keep-b 0", "keep-b 1"]
    assert metric(metrics, "shipper_records_dropped_total", output="filter:k8s",
                  reason="excluded") == 3
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="excluded") == 3


def test_exclude_can_target_one_container() -> None:
    pod = raw_pod(annotations={"shipper.io/exclude-istio-proxy": "true"},
                  containers=[("app", "img", cid(1)), ("istio-proxy", "proxy", cid(2))])
    f, _ = make_filter([pod])
    out = f.process(file_records(1, container_id=cid(1))
                    + file_records(1, container="istio-proxy", container_id=cid(2)))
    assert [r.body["kubernetes"]["container_name"] for r in out] == ["app"]


def test_the_parser_annotation_merges_json_lines_of_that_pod_only() -> None:
    json_pod = raw_pod(name="api-1", uid="uid-api", annotations={"shipper.io/parser": "json"},
                       containers=[("app", "img", cid(3))])
    f, metrics = make_filter([raw_pod(), json_pod])
    line = '{"level":"error","msg":"boom","time":"app"}'
    parsed = file_records(1, log="", pod="api-1", container_id=cid(3))
    parsed[0].body["log"] = line
    plain = file_records(1, log="", container_id=cid(1))
    plain[0].body["log"] = line
    f.process(parsed + plain)
    assert parsed[0].body["level"] == "error"
    assert parsed[0].body["parsed_time"] == "app"
    assert parsed[0].body["log"] == line
    assert "level" not in plain[0].body
    assert metric(metrics, "shipper_filter_records_total", filter="k8s", result="merged") == 1


def test_an_unknown_parser_name_ships_lines_unparsed_and_counts_it() -> None:
    pod = raw_pod(annotations={"shipper.io/parser": "klingon"})
    f, metrics = make_filter([pod])
    records = file_records(2, log='{"a": 1}', container_id=cid(1))
    out = f.process(records)
    assert len(out) == 2 and "a" not in out[0].body
    assert metric(metrics, "shipper_filter_records_total", filter="k8s",
                  result="unknown_parser") == 2


def test_a_deleted_pods_late_lines_are_still_enriched() -> None:
    f, _ = make_filter([raw_pod()])
    f.apply_event("pods", "DELETED", f.extractor.pod(raw_pod()))
    out = f.process(file_records(1, container_id=cid(1)))
    assert out[0].body["kubernetes"]["pod_id"] == "uid-web"


def test_the_pod_appearing_later_enriches_the_records_after_it() -> None:
    f, _ = make_filter([])
    before = f.process(file_records(1, pod="late-1", container_id=cid(4)))
    assert "pod_id" not in before[0].body["kubernetes"]
    f.apply_event("pods", "ADDED", f.extractor.pod(
        raw_pod(name="late-1", uid="uid-late", containers=[("app", "img", cid(4))])))
    after = f.process(file_records(1, pod="late-1", container_id=cid(4)))
    assert after[0].body["kubernetes"]["pod_id"] == "uid-late"


def test_skip_options_leave_fields_out() -> None:
    f, _ = make_filter([raw_pod()], skip_container_metadata=True, skip_labels=True,
                       skip_namespace_metadata=True)
    k8s = f.process(file_records(1, container_id=cid(1)))[0].body["kubernetes"]
    assert "container_image" not in k8s and "labels" not in k8s
    assert "namespace_id" not in k8s
    assert k8s["pod_ip"] == "10.244.1.5"


def test_the_filter_answers_multiline_hints_by_namespace_pod_and_container() -> None:
    from shipper.protocols import MultilineHints

    f, _ = make_filter([raw_pod(annotations={"shipper.io/multiline": "java",
                                             "shipper.io/multiline.side": "go"})])
    assert isinstance(f, MultilineHints)
    assert f.multiline_hint("shop", "web-5d9c7b-abcde", "app") == "java"
    assert f.multiline_hint("shop", "web-5d9c7b-abcde", "side") == "go"
    assert f.multiline_hint("shop", "other-pod", "app") is None
    assert f.multiline_hint("other-ns", "web-5d9c7b-abcde", "app") is None
    plain, _ = make_filter([raw_pod()])
    assert plain.multiline_hint("shop", "web-5d9c7b-abcde", "app") is None
