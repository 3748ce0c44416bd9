"""The simulated cluster: namespaces, deployments, pods, containers and their identities.

Content generators need a consistent picture of the cluster (which pod IP calls which service,
which ClusterIP a service has) so that access-log lines look like they came from one mesh. All
identities (pod-template hashes, pod suffixes, UIDs, 64-hex container ids, IPs) are drawn from
one seeded `random.Random`, so the same seed always yields the same node.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Final

# Kubernetes' "safe" alphabet for generated name suffixes (no vowels, no 0/1/3 look-alikes);
# pod-template hashes and pod suffixes use it, which is what makes names look real.
_SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"

#: Container kinds understood by `shipper.demo.content.make_source`.
SIDECAR: Final = "envoy-sidecar"
GATEWAY: Final = "envoy-gateway"
ISTIOD: Final = "istiod"


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A container of a deployment; `weight` is its share of log volume relative to others."""

    name: str
    kind: str
    weight: float


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A Kubernetes Service in front of a deployment (several versions may share one)."""

    name: str
    port: int


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """A deployment template; `calls` names the services its app talks to (mesh edges)."""

    namespace: str
    name: str
    service: ServiceSpec | None
    containers: tuple[ContainerSpec, ...]
    calls: tuple[str, ...] = ()
    version: str = ""


def _app(name: str, kind: str, weight: float = 1.0) -> ContainerSpec:
    return ContainerSpec(name, kind, weight)


_PROXY: Final = ContainerSpec("istio-proxy", SIDECAR, 1.0)
_BOOKINFO_PORT: Final = 9080

#: The demo node. Order matters: when fewer files than containers are requested, the first
#: ones are kept, so the list starts with one pod of every kind of workload.
DEFAULT_DEPLOYMENTS: Final[tuple[DeploymentSpec, ...]] = (
    DeploymentSpec(
        "istio-system", "istiod", ServiceSpec("istiod", 15012), (_app("discovery", ISTIOD, 2.0),)
    ),
    DeploymentSpec(
        "istio-system",
        "istio-ingressgateway",
        ServiceSpec("istio-ingressgateway", 80),
        (ContainerSpec("istio-proxy", GATEWAY, 2.5),),
        calls=("productpage", "orders", "catalog"),
    ),
    DeploymentSpec(
        "shop",
        "orders",
        ServiceSpec("orders", 8080),
        (_app("orders", "spring", 5.0), _PROXY),
        calls=("catalog", "payments-external"),
    ),
    DeploymentSpec(
        "bookinfo",
        "productpage-v1",
        ServiceSpec("productpage", _BOOKINFO_PORT),
        (_app("productpage", "flask", 0.8), _PROXY),
        calls=("details", "reviews"),
        version="v1",
    ),
    DeploymentSpec(
        "shop",
        "catalog",
        ServiceSpec("catalog", 8080),
        (_app("catalog", "jsonapp", 0.8), _PROXY),
        calls=("postgres",),
    ),
    DeploymentSpec(
        "bookinfo",
        "reviews-v2",
        ServiceSpec("reviews", _BOOKINFO_PORT),
        (_app("reviews", "liberty", 1.5), _PROXY),
        calls=("ratings",),
        version="v2",
    ),
    DeploymentSpec(
        "bookinfo",
        "ratings-v1",
        ServiceSpec("ratings", _BOOKINFO_PORT),
        (_app("ratings", "pino", 0.8), _PROXY),
        version="v1",
    ),
    DeploymentSpec(
        "bookinfo",
        "details-v1",
        ServiceSpec("details", _BOOKINFO_PORT),
        (_app("details", "webrick", 0.6), _PROXY),
        version="v1",
    ),
    DeploymentSpec(
        "bookinfo",
        "reviews-v1",
        ServiceSpec("reviews", _BOOKINFO_PORT),
        (_app("reviews", "liberty", 1.5), _PROXY),
        version="v1",
    ),
    DeploymentSpec(
        "bookinfo",
        "reviews-v3",
        ServiceSpec("reviews", _BOOKINFO_PORT),
        (_app("reviews", "liberty", 1.5), _PROXY),
        calls=("ratings",),
        version="v3",
    ),
)

#: Services that exist in the mesh but have no pods on this node.
EXTERNAL_SERVICES: Final[dict[str, tuple[str, int]]] = {
    "postgres": ("shop", 5432),
}


@dataclass(slots=True)
class Service:
    """A service as seen by clients: ClusterIP, port, FQDN and the pods behind it."""

    name: str
    namespace: str
    port: int
    cluster_ip: str
    pods: list[Pod] = field(default_factory=list)
    #: Endpoint IPs: the local pods plus replicas running on other nodes.
    endpoints: list[str] = field(default_factory=list)

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


@dataclass(slots=True)
class Container:
    """One container instance, i.e. one log file on the node."""

    name: str
    kind: str
    weight: float
    container_id: str


@dataclass(slots=True)
class Pod:
    """A running pod with its identity and the containers that write log files."""

    namespace: str
    name: str
    uid: str
    ip: str
    deployment: DeploymentSpec
    containers: list[Container] = field(default_factory=list)


@dataclass(slots=True)
class Cluster:
    """Everything content generators need to make cross-pod lines consistent."""

    pods: list[Pod]
    services: dict[str, Service]
    node_ip: str

    def callers_of(self, service: str) -> list[Pod]:
        """Pods whose deployment calls `service` (the clients seen by its inbound sidecar)."""
        return [p for p in self.pods if service in p.deployment.calls]


def _safe_suffix(rng: random.Random, length: int) -> str:
    return "".join(rng.choice(_SAFE_ALPHABET) for _ in range(length))


def _container_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _pod_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _pod_plan(files: int | None) -> list[tuple[DeploymentSpec, int]]:
    """Decide which pods exist and how many of their containers get a log file.

    Without `files` every default deployment gets one pod. With `files`, deployments are
    cycled (adding replicas) until exactly `files` containers exist; the last pod may keep
    only its first container, like a pod without sidecar injection.
    """
    if files is None:
        return [(d, len(d.containers)) for d in DEFAULT_DEPLOYMENTS]
    if files < 1:
        raise ValueError("files must be >= 1")
    plan: list[tuple[DeploymentSpec, int]] = []
    remaining = files
    i = 0
    while remaining > 0:
        dep = DEFAULT_DEPLOYMENTS[i % len(DEFAULT_DEPLOYMENTS)]
        take = min(remaining, len(dep.containers))
        plan.append((dep, take))
        remaining -= take
        i += 1
    return plan


def build_cluster(rng: random.Random, files: int | None = None) -> Cluster:
    """Create pods, containers and services for the node, deterministically from `rng`."""
    node_octet = rng.randrange(1, 250)
    used_ips: set[str] = set()

    def pod_ip() -> str:
        while True:
            ip = f"10.244.{node_octet}.{rng.randrange(2, 255)}"
            if ip not in used_ips:
                used_ips.add(ip)
                return ip

    rs_hash: dict[str, str] = {}
    names: set[str] = set()
    pods: list[Pod] = []
    for dep, take in _pod_plan(files):
        if dep.name not in rs_hash:
            rs_hash[dep.name] = _safe_suffix(rng, rng.choice((8, 9, 10)))
        while True:
            name = f"{dep.name}-{rs_hash[dep.name]}-{_safe_suffix(rng, 5)}"
            if name not in names:
                names.add(name)
                break
        pod = Pod(dep.namespace, name, _pod_uid(rng), pod_ip(), dep)
        pod.containers = [
            Container(c.name, c.kind, c.weight, _container_id(rng)) for c in dep.containers[:take]
        ]
        pods.append(pod)

    services: dict[str, Service] = {}
    for dep in DEFAULT_DEPLOYMENTS:
        if dep.service and dep.service.name not in services:
            services[dep.service.name] = Service(
                dep.service.name, dep.namespace, dep.service.port, _cluster_ip(rng)
            )
    for name, (namespace, port) in EXTERNAL_SERVICES.items():
        services[name] = Service(name, namespace, port, _cluster_ip(rng))
    for pod in pods:
        svc = pod.deployment.service
        if svc:
            services[svc.name].pods.append(pod)
    for svc_ in services.values():
        remote = [
            f"10.244.{(node_octet + rng.randrange(1, 5)) % 250}.{rng.randrange(2, 255)}"
            for _ in range(rng.randint(1, 2))
        ]
        svc_.endpoints = [p.ip for p in svc_.pods] + remote
    return Cluster(pods, services, node_ip=f"10.128.0.{node_octet}")


def _cluster_ip(rng: random.Random) -> str:
    return f"10.96.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
