"""The cache: lookups by uid, container id and name; shared dicts; deleted pods kept for
their last lines; bounded under churn."""

from __future__ import annotations

from shipper.filters.kubernetes.cache import MetadataCache, RenderOptions
from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.objects import Extractor, NamespaceMeta, PodMeta
from tests.unit.filters.kubernetes.helpers import cid, file_fields, raw_namespace, raw_pod

EX = Extractor(KubernetesMetadataConfig())


def pod(**kwargs: object) -> PodMeta:
    meta = EX.pod(raw_pod(**kwargs))  # type: ignore[arg-type]
    assert meta is not None
    return meta


def namespace(**kwargs: object) -> NamespaceMeta:
    meta = EX.namespace(raw_namespace(**kwargs))  # type: ignore[arg-type]
    assert meta is not None
    return meta


def cache(retention: float = 60.0, max_deleted: int = 100) -> MetadataCache:
    return MetadataCache(RenderOptions(master_url="https://10.96.0.1:443"), retention,
                         max_deleted)


def test_a_running_pod_gets_fluentds_fields_in_fluentds_order() -> None:
    c = cache()
    c.replace_namespaces([namespace()], 0)
    c.replace_pods([pod()], 0)
    k8s, docker = file_fields(container_id=cid(1))
    r = c.resolve(k8s, docker, 1)
    assert r is not None
    assert list(r.kubernetes) == [
        "container_name", "namespace_name", "pod_name", "container_image",
        "container_image_id", "pod_id", "pod_ip", "host", "labels", "master_url",
        "namespace_id", "namespace_labels"]
    assert r.kubernetes["pod_id"] == "uid-web"
    assert r.kubernetes["labels"] == {"app": "web"}
    assert r.kubernetes["namespace_labels"] == {
        "kubernetes_io/metadata_name": "shop", "team": "payments"}
    assert r.docker is None  # the file's own docker dict stays
    assert k8s == file_fields(container_id=cid(1))[0]  # the file's dict is not mutated


def test_the_same_dict_object_serves_every_record_of_a_container() -> None:
    c = cache()
    c.replace_pods([pod()], 0)
    first = c.resolve(*file_fields(container_id=cid(1)), 1)
    again = c.resolve(*file_fields(container_id=cid(1)), 2)
    assert first is not None and again is not None
    assert first.kubernetes is again.kubernetes


def test_a_pods_dir_file_finds_its_pod_by_uid_and_gets_the_container_id() -> None:
    c = cache()
    c.replace_pods([pod()], 0)
    r = c.resolve(*file_fields(pod_id="uid-web"), 1)
    assert r is not None
    assert r.docker == {"container_id": cid(1)}
    assert r.kubernetes["container_image"] == "ghcr.io/acme/web:1.0"


def test_a_container_the_status_does_not_list_yet_is_found_by_pod_name() -> None:
    c = cache()
    c.replace_pods([pod(containers=[("app", "img:1", None)])], 0)
    r = c.resolve(*file_fields(container_id=cid(7)), 1)
    assert r is not None
    assert r.kubernetes["pod_id"] == "uid-web"
    assert r.kubernetes["container_image"] == "img:1"


def test_an_unknown_pod_is_not_found() -> None:
    c = cache()
    c.replace_pods([pod()], 0)
    assert c.resolve(*file_fields(pod="other-1", container_id=cid(5)), 1) is None
    # a pods-dir file of another incarnation with the same name is not given this pod's uid
    assert c.resolve(*file_fields(pod_id="old-uid"), 1) is None


def test_a_change_to_the_pod_or_its_namespace_renders_a_new_dict() -> None:
    c = cache()
    c.replace_namespaces([namespace()], 0)
    c.replace_pods([pod()], 0)
    before = c.resolve(*file_fields(container_id=cid(1)), 1)
    c.upsert_pod(pod(labels={"app": "web", "version": "v2"}))
    after_pod = c.resolve(*file_fields(container_id=cid(1)), 2)
    assert before is not None and after_pod is not None
    assert after_pod.kubernetes["labels"] == {"app": "web", "version": "v2"}
    assert before.kubernetes["labels"] == {"app": "web"}  # what was shipped stays as it was
    c.upsert_namespace(namespace(labels={"team": "checkout"}))
    after_ns = c.resolve(*file_fields(container_id=cid(1)), 3)
    assert after_ns is not None
    assert after_ns.kubernetes["namespace_labels"]["team"] == "checkout"


def test_a_relist_with_the_same_versions_keeps_the_rendered_dicts() -> None:
    c = cache()
    raw = raw_pod()
    raw["metadata"]["resourceVersion"] = "42"
    c.replace_pods([EX.pod(raw)], 0)  # type: ignore[list-item]
    first = c.resolve(*file_fields(container_id=cid(1)), 1)
    c.replace_pods([EX.pod(raw)], 5)  # type: ignore[list-item]
    second = c.resolve(*file_fields(container_id=cid(1)), 6)
    assert first is not None and second is not None
    assert first.kubernetes is second.kubernetes


def test_a_deleted_pod_keeps_its_metadata_while_its_lines_are_still_read() -> None:
    c = cache(retention=60)
    c.replace_pods([pod()], 0)
    c.delete_pod(pod(), now=100)
    for t in (110, 150, 190):  # lines keep coming long after the deletion
        c.note_activity(t)
        assert c.resolve(*file_fields(container_id=cid(1)), t) is not None
        assert c.sweep(t) == 0
    c.note_activity(249)
    assert c.sweep(249) == 0  # last line at 190: not yet 60 s of silence
    c.note_activity(251)
    assert c.sweep(251) == 1
    assert c.resolve(*file_fields(container_id=cid(1)), 252) is None
    assert c.counts() == (0, 0)


def test_nothing_expires_while_the_pipeline_is_stalled() -> None:
    c = cache(retention=60)
    c.replace_pods([pod()], 0)
    c.note_activity(100)
    c.delete_pod(pod(), now=100)
    assert c.sweep(1000) == 0  # no record processed since the deletion: maybe not drained
    c.note_activity(1000)
    assert c.resolve(*file_fields(container_id=cid(1)), 1000) is not None
    c.note_activity(1061)
    assert c.sweep(1061) == 1


def test_a_pod_missing_from_a_relist_counts_as_deleted() -> None:
    c = cache()
    c.replace_pods([pod(), pod(name="db-0", uid="uid-db")], 0)
    c.replace_pods([pod()], 10)
    assert c.counts() == (1, 1)
    assert c.resolve(*file_fields(pod="db-0"), 11) is not None


def test_a_recreated_pod_with_the_same_name_does_not_lose_its_name_index() -> None:
    c = cache(retention=1)
    c.replace_pods([pod(name="db-0", uid="old", containers=[("app", "img", cid(1))])], 0)
    c.delete_pod(pod(name="db-0", uid="old", containers=[("app", "img", cid(1))]), 1)
    c.upsert_pod(pod(name="db-0", uid="new", containers=[("app", "img", cid(2))]))
    old = c.resolve(*file_fields(pod="db-0", container_id=cid(1)), 1.5)
    assert old is not None and old.kubernetes["pod_id"] == "old"
    c.note_activity(10)
    assert c.sweep(10) == 1
    by_name = c.resolve(*file_fields(pod="db-0", container_id=cid(3)), 11)
    assert by_name is not None and by_name.kubernetes["pod_id"] == "new"


def test_memory_stays_bounded_under_churn() -> None:
    c = cache(retention=60, max_deleted=200)
    for i in range(5000):
        p = pod(name=f"job-{i}", uid=f"u{i}", containers=[("app", "img", cid(i))])
        c.upsert_pod(p)
        assert c.resolve(*file_fields(pod=f"job-{i}", container_id=cid(i)), i) is not None
        c.delete_pod(p, now=i)
        c.note_activity(i)
        if i % 50 == 0:
            c.sweep(i)
    c.sweep(5000)
    live, deleted = c.counts()
    assert live == 0
    assert deleted <= 200
    assert len(c.pods) <= 200


def test_records_from_elsewhere_keep_their_extra_kubernetes_keys() -> None:
    c = cache()
    c.replace_pods([pod()], 0)
    k8s, docker = file_fields(container_id=cid(1))
    k8s["cluster"] = "eu-1"
    r = c.resolve(k8s, docker, 1)
    assert r is not None
    assert r.kubernetes["cluster"] == "eu-1"
    assert r.kubernetes["pod_id"] == "uid-web"
