"""Pod and namespace objects shaped like the real API's, for the demo node and for tests.

``demo_objects`` turns a generated node (its manifest: names, uids, container ids, log format)
into what ``kubectl get pods -o json`` would show for it: Istio-style labels (``app``,
``version``, ``security.istio.io/tlsMode``, ``service.istio.io/canonical-name``, and
``app.kubernetes.io/name`` on the shop workloads, so ``app`` and ``app.kubernetes.io/name``
coexist as on real clusters), images and image ids, container ids with the runtime's scheme,
the node name and pod IPs, plus the ``managedFields`` noise a real pod carries. The ``catalog``
pods log JSON and are annotated ``shipper.io/parser: json``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from shipper.demo.manifest import Manifest
from shipper.demo.topology import DEFAULT_DEPLOYMENTS, build_cluster

CREATED = "2026-11-22T00:00:00Z"
ISTIO = "1.22.3"
BOOKINFO = "1.20.2"
_IMAGES = {
    "istio-proxy": f"docker.io/istio/proxyv2:{ISTIO}",
    "discovery": f"docker.io/istio/pilot:{ISTIO}",
    "productpage": f"docker.io/istio/examples-bookinfo-productpage-v1:{BOOKINFO}",
    "details": f"docker.io/istio/examples-bookinfo-details-v1:{BOOKINFO}",
    "ratings": f"docker.io/istio/examples-bookinfo-ratings-v1:{BOOKINFO}",
    "reviews": "docker.io/istio/examples-bookinfo-reviews-{version}:" + BOOKINFO,
    "orders": "ghcr.io/acme-shop/orders:2.4.1",
    "catalog": "ghcr.io/acme-shop/catalog:1.9.0",
}


def image_id(image: str) -> str:
    """``repo@sha256:<digest>``, deterministic per image."""
    repo = image.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def namespace_object(name: str, uid: str, labels: dict[str, str] | None = None,
                     annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid, "creationTimestamp": CREATED,
                            "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}}


def pod_object(*, namespace: str, name: str, uid: str, node: str, ip: str | None,
               containers: list[tuple[str, str, str | None]],
               labels: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None,
               runtime: str = "containerd") -> dict[str, Any]:
    """A running pod; ``containers`` are ``(name, image, container id or None)``.

    A container id of None leaves that container without a status (not started yet).
    """
    statuses = [{
        "name": c_name, "image": image, "imageID": image_id(image),
        "containerID": f"{runtime}://{cid}", "ready": True, "restartCount": 0,
        "started": True, "state": {"running": {"startedAt": CREATED}},
    } for c_name, image, cid in containers if cid is not None]
    owner = name.rsplit("-", 1)[0]
    return {
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid, "creationTimestamp": CREATED,
            "generateName": owner + "-", "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": owner, "uid": _uid(owner), "controller": True}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                               "apiVersion": "v1", "time": CREATED, "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}],
        },
        "spec": {"nodeName": node, "restartPolicy": "Always",
                 "containers": [{"name": c, "image": i, "resources": {}}
                                for c, i, _ in containers]},
        "status": {"phase": "Running", "hostIP": "10.128.0.10", "podIP": ip,
                   "podIPs": [{"ip": ip}] if ip else [], "startTime": CREATED,
                   "containerStatuses": statuses},
    }


def _uid(text: str) -> str:
    h = hashlib.sha256(text.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def demo_objects(manifest: Manifest, node: str) -> tuple[list[dict[str, Any]],
                                                          list[dict[str, Any]]]:
    """(namespaces, pods) of the generated node, consistent with its log files."""
    # The generator's first use of its seeded rng is the cluster, so rebuilding it gives the
    # same pods; matched by uid, and anything unmatched falls back to derived values.
    cluster = build_cluster(random.Random(manifest.seed), len(manifest.files))
    ips = {p.uid: p.ip for p in cluster.pods}
    deployments = {(d.namespace, d.name): d for d in DEFAULT_DEPLOYMENTS}
    by_pod: dict[tuple[str, str, str], list[Any]] = {}
    for entry in manifest.files:
        by_pod.setdefault((entry.namespace, entry.pod, entry.pod_uid), []).append(entry)
    namespaces = sorted({ns for ns, _, _ in by_pod})
    ns_objects = [namespace_object(ns, _uid(f"ns/{ns}"), {"istio-injection": "enabled"}
                                   if ns != "istio-system" else {"istio.io/rev": "default"})
                  for ns in namespaces]
    pods = []
    for (ns, pod_name, uid), entries in by_pod.items():
        deployment_name, template_hash, _ = pod_name.rsplit("-", 2)
        dep = deployments.get((ns, deployment_name))
        app = dep.service.name if dep is not None and dep.service else deployment_name
        version = (dep.version if dep is not None else "") or "v1"
        labels, annotations = _labels(ns, app, version, template_hash, entries)
        containers = []
        for e in entries:
            image = _IMAGES.get(e.container, f"registry.local/{ns}/{e.container}:latest")
            containers.append((e.container, image.format(version=version), e.container_id))
        runtime = "docker" if entries[0].format == "docker" else "containerd"
        ip = ips.get(uid) or f"10.244.{int(uid[:2], 16) % 250}.{int(uid[2:4], 16) % 250 + 2}"
        pods.append(pod_object(namespace=ns, name=pod_name, uid=uid, node=node, ip=ip,
                               containers=containers, labels=labels, annotations=annotations,
                               runtime=runtime))
    return ns_objects, pods


def _labels(ns: str, app: str, version: str, template_hash: str, entries: list[Any],
            ) -> tuple[dict[str, str], dict[str, str]]:
    names = [e.container for e in entries]
    labels = {"app": app, "pod-template-hash": template_hash}
    annotations = {"kubectl.kubernetes.io/default-container": names[0]}
    if ns == "istio-system":
        labels.update({"istio": "pilot" if app == "istiod" else "ingressgateway",
                       "istio.io/rev": "default"})
        if app != "istiod":
            labels["security.istio.io/tlsMode"] = "istio"
        return labels, annotations
    labels["version"] = version
    if "istio-proxy" in names:
        labels.update({"security.istio.io/tlsMode": "istio",
                       "service.istio.io/canonical-name": app,
                       "service.istio.io/canonical-revision": version})
        annotations.update({"sidecar.istio.io/status": '{"containers":["istio-proxy"]}',
                            "prometheus.io/scrape": "true", "prometheus.io/port": "15020"})
    if ns == "shop":
        labels.update({"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop"})
    if app == "catalog":
        annotations["shipper.io/parser"] = "json"
    return labels, annotations
