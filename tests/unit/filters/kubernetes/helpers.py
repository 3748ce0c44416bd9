"""Raw API objects and file-name fields for the Kubernetes filter's unit tests."""

from __future__ import annotations

from typing import Any

from shipper.demo.k8s_objects import namespace_object, pod_object

NODE = "node-a"


def cid(n: int) -> str:
    """A 64-hex container id."""
    return f"{n:064x}"


def raw_pod(name: str = "web-5d9c7b-abcde", namespace: str = "shop", uid: str = "uid-web",
            containers: list[tuple[str, str, str | None]] | None = None,
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
            ip: str | None = "10.244.1.5") -> dict[str, Any]:
    return pod_object(namespace=namespace, name=name, uid=uid, node=NODE, ip=ip,
                      containers=containers or [("app", "ghcr.io/acme/web:1.0", cid(1))],
                      labels=labels if labels is not None else {"app": "web"},
                      annotations=annotations)


def raw_namespace(name: str = "shop", uid: str = "ns-uid-shop",
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    return namespace_object(name, uid, labels or {"team": "payments"})


def file_fields(pod: str = "web-5d9c7b-abcde", namespace: str = "shop", container: str = "app",
                container_id: str | None = None, pod_id: str | None = None,
                ) -> tuple[dict[str, str], dict[str, str] | None]:
    """What the tail parses from a /var/log/containers (or /var/log/pods) file name."""
    k8s = {"namespace_name": namespace, "pod_name": pod, "container_name": container}
    if pod_id is not None:
        k8s["pod_id"] = pod_id
    docker = {"container_id": container_id} if container_id is not None else None
    return k8s, docker
