"""From raw API objects (pods, namespaces as decoded JSON) to the little the filter keeps.

A pod object can be megabytes (``managedFields``, big annotations such as
``kubectl.kubernetes.io/last-applied-configuration``, env lists). Only the fields Fluentd's
kubernetes_metadata_filter outputs (spec §3.1) plus the two annotations the filter acts on
are copied out; the raw object is dropped right after, so memory is bounded by what records
carry, not by what the API returns. Label and annotation keys are de-dotted here, once per
pod change, never per record. Strings that repeat across pods (label keys and values,
images) are interned.

Runs in the watcher threads; pure functions of their input.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from shipper.filters.kubernetes.config import KubernetesMetadataConfig

_SCHEME = re.compile(r"^[-_a-zA-Z0-9]+://")
_intern = sys.intern


@dataclass(frozen=True, slots=True)
class ContainerMeta:
    """What a record of one container gets from the pod's spec and status."""

    image: str | None = None
    image_id: str | None = None
    container_id: str | None = None


@dataclass(slots=True, eq=False)
class PodMeta:
    """One pod as the filter needs it. Replaced (not mutated) when the pod changes, except
    for the bookkeeping fields at the end, which only the cache's owner thread touches."""

    uid: str
    namespace: str
    name: str
    resource_version: str = ""
    pod_ip: str | None = None
    host: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    containers: dict[str, ContainerMeta] = field(default_factory=dict)
    #: Every container id the pod's status mentions (current and last terminated instance),
    #: mapped to its container name: a restarted container's old log file still finds its pod.
    container_ids: dict[str, str] = field(default_factory=dict)
    excluded: bool = False
    excluded_containers: dict[str, bool] = field(default_factory=dict)
    parser: str | None = None
    container_parsers: dict[str, str] = field(default_factory=dict)
    multiline: str | None = None
    container_multiline: dict[str, str] = field(default_factory=dict)
    deleted_at: float | None = None
    last_seen: float = 0.0
    rendered: dict[tuple[Any, Any], Any] = field(default_factory=dict)

    def is_excluded(self, container: str | None) -> bool:
        if container is not None and self.excluded_containers:
            value = self.excluded_containers.get(container)
            if value is not None:
                return value
        return self.excluded

    def parser_for(self, container: str | None) -> str | None:
        if container is not None and self.container_parsers:
            value = self.container_parsers.get(container)
            if value is not None:
                return value
        return self.parser

    def multiline_for(self, container: str | None) -> str | None:
        if container is not None and self.container_multiline:
            value = self.container_multiline.get(container)
            if value is not None:
                return value
        return self.multiline


@dataclass(frozen=True, slots=True, eq=False)
class NamespaceMeta:
    """One namespace as the filter needs it; replaced when it changes."""

    name: str
    uid: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""
    deleted_at: float | None = None


class Extractor:
    """Builds ``PodMeta``/``NamespaceMeta`` from raw objects according to the config."""

    def __init__(self, config: KubernetesMetadataConfig) -> None:
        self._patterns = [re.compile(p) for p in config.annotation_match]
        self._dot = config.de_dot_separator if config.de_dot else None
        self._slash = config.de_slash_separator if config.de_slash else None
        self._labels = not config.skip_labels
        self._ns_labels = self._labels and not config.skip_namespace_labels
        self._exclude_key = config.exclude_annotation
        self._parser_key = config.parser_annotation
        self._multiline_key = config.multiline_annotation

    def dedot(self, mapping: Any) -> dict[str, str]:
        """Copy of a label/annotation map with safe keys and interned strings."""
        if not isinstance(mapping, dict):
            return {}
        dot, slash = self._dot, self._slash
        out: dict[str, str] = {}
        for key, value in mapping.items():
            key = str(key)
            if dot is not None:
                key = key.replace(".", dot)
            if slash is not None:
                key = key.replace("/", slash)
            out[_intern(key)] = _intern(value) if type(value) is str else str(value)
        return out

    def select_annotations(self, annotations: Any) -> dict[str, str]:
        """Only the annotations whose key matches ``annotation_match`` (de-dotted)."""
        if not self._patterns or not isinstance(annotations, dict):
            return {}
        chosen = {k: v for k, v in annotations.items()
                  if any(p.search(str(k)) for p in self._patterns)}
        return self.dedot(chosen) if chosen else {}

    def pod(self, obj: dict[str, Any]) -> PodMeta | None:
        """The pod's metadata, or None when the object is not a usable pod."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            return None
        uid, namespace, name = meta.get("uid"), meta.get("namespace"), meta.get("name")
        if not (isinstance(uid, str) and isinstance(namespace, str) and isinstance(name, str)):
            return None
        spec = _dict(obj.get("spec"))
        status = _dict(obj.get("status"))
        annotations = _dict(meta.get("annotations"))
        pod = PodMeta(
            uid=_intern(uid), namespace=_intern(namespace), name=name,
            resource_version=str(meta.get("resourceVersion") or ""),
            pod_ip=_str_or_none(status.get("podIP")),
            host=_intern(spec["nodeName"]) if isinstance(spec.get("nodeName"), str) else None,
            labels=self.dedot(meta.get("labels")) if self._labels else {},
            annotations=self.select_annotations(annotations))
        self._containers(pod, spec, status)
        self._directives(pod, annotations)
        return pod

    def namespace(self, obj: dict[str, Any]) -> NamespaceMeta | None:
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            return None
        return NamespaceMeta(
            name=_intern(meta["name"]), uid=_str_or_none(meta.get("uid")),
            labels=self.dedot(meta.get("labels")) if self._ns_labels else {},
            annotations=self.select_annotations(meta.get("annotations")),
            resource_version=str(meta.get("resourceVersion") or ""))

    def _containers(self, pod: PodMeta, spec: dict[str, Any], status: dict[str, Any]) -> None:
        # Spec images first: a pod whose containers have not started yet has no status, and
        # its first lines can still carry the image.
        for key in ("initContainers", "containers", "ephemeralContainers"):
            for c in _dicts(spec.get(key)):
                if isinstance(c.get("name"), str):
                    pod.containers[c["name"]] = ContainerMeta(image=_interned(c.get("image")))
        for key in ("initContainerStatuses", "containerStatuses",
                    "ephemeralContainerStatuses"):
            for s in _dicts(status.get(key)):
                name = s.get("name")
                if not isinstance(name, str):
                    continue
                cid = strip_scheme(s.get("containerID"))
                image = _interned(s.get("image")) or pod.containers.get(
                    name, ContainerMeta()).image
                pod.containers[name] = ContainerMeta(image, _interned(s.get("imageID")), cid)
                if cid:
                    pod.container_ids[cid] = name
                last = s.get("lastState")
                terminated = last.get("terminated") if isinstance(last, dict) else None
                if isinstance(terminated, dict):
                    old = strip_scheme(terminated.get("containerID"))
                    if old:
                        pod.container_ids[old] = name

    def _directives(self, pod: PodMeta, annotations: dict[str, Any]) -> None:
        """``shipper.io/exclude[-<container>]``, ``shipper.io/parser[-<container>]`` and
        ``shipper.io/multiline[.<container>]`` (``-<container>`` accepted too)."""
        if not annotations:
            return
        ex, px, mx = self._exclude_key, self._parser_key, self._multiline_key
        for key, value in annotations.items():
            if not isinstance(value, str):
                continue
            if ex is not None and key.startswith(ex):
                flag = value.strip().lower() == "true"
                if key == ex:
                    pod.excluded = flag
                elif key[len(ex)] == "-":
                    pod.excluded_containers[key[len(ex) + 1:]] = flag
            if px is not None and key.startswith(px):
                name = value.strip()
                if key == px:
                    pod.parser = name or None
                elif key[len(px)] == "-" and name:
                    pod.container_parsers[key[len(px) + 1:]] = name
            if mx is not None and key.startswith(mx):
                name = value.strip()
                if key == mx:
                    pod.multiline = name or None
                elif key[len(mx)] in ".-" and name:
                    pod.container_multiline[key[len(mx) + 1:]] = name


def strip_scheme(value: Any) -> str | None:
    """``containerd://abc`` -> ``abc`` (Fluentd strips ``<scheme>://`` the same way)."""
    if not isinstance(value, str) or not value:
        return None
    return _SCHEME.sub("", value, count=1) or None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _interned(value: Any) -> str | None:
    return _intern(value) if isinstance(value, str) and value else None
