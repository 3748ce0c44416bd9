"""What the filter keeps of a pod: Fluentd's fields, de-dotted keys, directives, nothing more."""

from __future__ import annotations

import sys

from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.objects import Extractor, strip_scheme
from tests.unit.filters.kubernetes.helpers import cid, raw_namespace, raw_pod


def extract(**config: object):  # type: ignore[no-untyped-def]
    return Extractor(KubernetesMetadataConfig(**config))  # type: ignore[arg-type]


def test_a_pod_keeps_only_the_fields_records_carry() -> None:
    raw = raw_pod(containers=[("app", "ghcr.io/acme/web:1.0", cid(1)),
                              ("istio-proxy", "docker.io/istio/proxyv2:1.22.3", cid(2))])
    pod = extract().pod(raw)
    assert pod is not None
    assert (pod.uid, pod.namespace, pod.name) == ("uid-web", "shop", "web-5d9c7b-abcde")
    assert pod.pod_ip == "10.244.1.5"
    assert pod.host == "node-a"
    assert pod.containers["app"].image == "ghcr.io/acme/web:1.0"
    assert pod.containers["app"].image_id.startswith("ghcr.io/acme/web@sha256:")
    assert pod.containers["app"].container_id == cid(1)  # "containerd://" stripped
    assert pod.container_ids == {cid(1): "app", cid(2): "istio-proxy"}
    assert pod.annotations == {}  # annotation_match is empty by default, like Fluentd


def test_label_and_annotation_keys_are_de_dotted_by_default_and_values_are_not() -> None:
    raw = raw_pod(labels={"app": "web", "app.kubernetes.io/name": "web.v2"},
                  annotations={"sidecar.istio.io/status": "{}", "other": "x"})
    pod = extract(annotation_match=["^sidecar\\.istio\\.io/"]).pod(raw)
    assert pod is not None
    assert pod.labels == {"app": "web", "app_kubernetes_io/name": "web.v2"}
    assert pod.annotations == {"sidecar_istio_io/status": "{}"}
    plain = extract(de_dot=False).pod(raw)
    assert plain is not None
    assert plain.labels == {"app": "web", "app.kubernetes.io/name": "web.v2"}
    slashed = extract(de_dot_separator="-", de_slash=True).pod(raw)
    assert slashed is not None
    assert slashed.labels["app-kubernetes-io__name"] == "web.v2"


def test_skip_labels_drops_pod_and_namespace_labels() -> None:
    ex = extract(skip_labels=True)
    assert ex.pod(raw_pod()).labels == {}  # type: ignore[union-attr]
    assert ex.namespace(raw_namespace()).labels == {}  # type: ignore[union-attr]


def test_a_pod_not_started_yet_still_has_its_images_from_the_spec() -> None:
    pod = extract().pod(raw_pod(containers=[("app", "ghcr.io/acme/web:1.0", None)]))
    assert pod is not None
    assert pod.containers["app"].image == "ghcr.io/acme/web:1.0"
    assert pod.containers["app"].container_id is None
    assert pod.container_ids == {}


def test_a_restarted_containers_previous_id_still_maps_to_the_pod() -> None:
    raw = raw_pod()
    raw["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"containerID": f"cri-o://{cid(9)}", "exitCode": 1}}
    pod = extract().pod(raw)
    assert pod is not None
    assert pod.container_ids == {cid(1): "app", cid(9): "app"}


def test_exclude_and_parser_annotations_per_pod_and_per_container() -> None:
    raw = raw_pod(annotations={"shipper.io/exclude": "true",
                               "shipper.io/exclude-sidecar": "false",
                               "shipper.io/parser": "json",
                               "shipper.io/parser-sidecar": "envoy"})
    pod = extract().pod(raw)
    assert pod is not None
    assert pod.is_excluded("app") and not pod.is_excluded("sidecar")
    assert pod.parser_for("app") == "json"
    assert pod.parser_for("sidecar") == "envoy"
    ignored = extract(exclude_annotation=None, parser_annotation=None).pod(raw)
    assert ignored is not None
    assert not ignored.is_excluded("app") and ignored.parser_for("app") is None


def test_a_two_megabyte_pod_keeps_a_few_hundred_bytes() -> None:
    raw = raw_pod()
    raw["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = \
        "x" * (2 * 1024 * 1024)
    raw["metadata"]["managedFields"] *= 2000
    raw["spec"]["containers"][0]["env"] = [{"name": f"E{i}", "value": "v" * 50}
                                           for i in range(5000)]
    pod = extract().pod(raw)
    assert pod is not None
    kept = sum(sys.getsizeof(v) for v in (pod.labels, pod.annotations, pod.containers))
    assert kept < 10_000
    assert "kubectl_kubernetes_io/last-applied-configuration" not in pod.annotations


def test_unusable_objects_are_refused_not_raised() -> None:
    ex = extract()
    assert ex.pod({}) is None
    assert ex.pod({"metadata": {"name": "x"}}) is None
    assert ex.namespace({"metadata": []}) is None
    weird = raw_pod()
    weird["status"]["containerStatuses"] = "not a list"
    weird["spec"] = None
    assert ex.pod(weird) is not None


def test_scheme_prefixes_are_stripped_like_fluentd() -> None:
    assert strip_scheme(f"docker://{cid(1)}") == cid(1)
    assert strip_scheme(f"containerd://{cid(2)}") == cid(2)
    assert strip_scheme("") is None
    assert strip_scheme(None) is None


def test_multiline_annotations_per_pod_and_per_container() -> None:
    raw = raw_pod(annotations={"shipper.io/multiline": " java ",
                               "shipper.io/multiline.worker": "python",
                               "shipper.io/multiline-sidecar": "none",
                               "shipper.io/multilineish": "go"})
    pod = extract().pod(raw)
    assert pod is not None
    assert pod.multiline_for("app") == "java"
    assert pod.multiline_for("worker") == "python"
    assert pod.multiline_for("sidecar") == "none"
    assert pod.container_multiline == {"worker": "python", "sidecar": "none"}
    ignored = extract(multiline_annotation=None).pod(raw)
    assert ignored is not None and ignored.multiline_for("app") is None
