"""Reading rendered Kubernetes manifests: pod templates, containers, the agent's config."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

WORKLOAD_KINDS = {"DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job"}


@dataclass
class Rendered:
    """One kustomization rendered by ``kubectl kustomize``."""

    name: str
    file: Path
    docs: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    @property
    def agent(self) -> dict[str, Any]:
        """The shipper DaemonSet."""
        return self.one("DaemonSet", "shipper")

    @property
    def agent_config_text(self) -> str:
        """shipper.yaml of the ConfigMap the DaemonSet mounts."""
        name = config_map_of(self.agent)
        cms = [d for d in self.of_kind("ConfigMap") if d["metadata"]["name"] == name]
        assert len(cms) == 1, f"{self.name}: the DaemonSet mounts ConfigMap {name}, not rendered"
        return cms[0]["data"]["shipper.yaml"]

    @property
    def agent_config(self) -> dict[str, Any]:
        return yaml.safe_load(self.agent_config_text)

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workload, pod spec) of every workload."""
        for doc in self.docs:
            if doc["kind"] in WORKLOAD_KINDS:
                yield doc, doc["spec"]["template"]["spec"]
            elif doc["kind"] == "CronJob":
                yield doc, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            elif doc["kind"] == "Pod":
                yield doc, doc["spec"]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Init, regular and ephemeral containers."""
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", []),
            *pod_spec.get("ephemeralContainers", [])]


def ident(doc: dict[str, Any]) -> str:
    meta = doc["metadata"]
    return f"{doc['kind']}/{meta.get('namespace', '-')}/{meta['name']}"


def config_volume(daemonset: dict[str, Any]) -> dict[str, Any]:
    pod = daemonset["spec"]["template"]["spec"]
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/etc/shipper"]
    assert len(mounts) == 1, "the agent mounts its configuration at /etc/shipper"
    volumes = [v for v in pod["volumes"] if v["name"] == mounts[0]["name"]]
    assert len(volumes) == 1
    return volumes[0]


def config_map_of(daemonset: dict[str, Any]) -> str:
    """Name of the ConfigMap whose shipper.yaml the agent reads."""
    volume = config_volume(daemonset)
    sources = volume["projected"]["sources"]
    names = [s["configMap"]["name"] for s in sources if "configMap" in s]
    assert len(names) == 1, "exactly one ConfigMap in the agent's config volume"
    return names[0]


def files_in_config_volume(daemonset: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Path under /etc/shipper -> (kind, object name, key) for every projected item."""
    result = {}
    for source in config_volume(daemonset)["projected"]["sources"]:
        for kind in ("configMap", "secret"):
            if kind in source:
                for item in source[kind]["items"]:
                    result[f"/etc/shipper/{item['path']}"] = (
                        kind, source[kind]["name"], item["key"])
    return result
