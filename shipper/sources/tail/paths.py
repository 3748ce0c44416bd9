"""What a container log file's path says: the tag and the Kubernetes names (spec §2.1, §2.6).

The tag is built like Fluentd ``in_tail`` with ``tag kube.*``: prefix + path with ``/`` turned
into ``.``, runs of dots squeezed, leading dot removed. The names come from Fluentd's
kubernetes_metadata_filter regexes applied to that tag (unanchored at the start, anchored at
the end), so existing Kibana searches and the metadata filter see exactly what Fluentd gave:

* ``/var/log/containers/<pod>_<namespace>_<container>-<64 hex id>.log`` (kubelet symlink)
  -> ``kubernetes.{namespace_name,pod_name,container_name}`` and ``docker.container_id``;
* ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log`` -> the same names plus
  ``kubernetes.pod_id`` (no container id in that path).

A path matching neither still ships, without those fields. Python's ``re`` forbids a group
name twice in one pattern, so the two alternatives are compiled separately.

The ``kubernetes`` and ``docker`` dicts are computed once per file and SHARED by every record
of the file: filters must replace them (``body["kubernetes"] = {**old, ...}``), never mutate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_POD = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
REGEX_VAR_LOG_CONTAINERS = re.compile(
    rf"(var\.log\.containers)\.(?P<pod_name>{_POD})_(?P<namespace>[^_]+)_"
    r"(?P<container_name>.+)-(?P<docker_id>[a-z0-9]{64})\.log$")
REGEX_VAR_LOG_PODS = re.compile(
    rf"(var\.log\.pods)\.(?P<namespace>[^_]+)_(?P<pod_name>{_POD})_"
    r"(?P<pod_uuid>[a-z0-9-]*)\.(?P<container_name>.+)\..*\.log$")
_DOTS = re.compile(r"\.\.+")


def build_tag(prefix: str, path: str) -> str:
    """Fluentd's tag for ``path`` with ``tag <prefix>.*``."""
    raw = f"{prefix}.{path.replace('/', '.')}" if prefix else path.replace("/", ".")
    return _DOTS.sub(".", raw).lstrip(".")


@dataclass(frozen=True, slots=True)
class FileMeta:
    """Per-file constants: computed once when a file is opened."""

    tag: str
    kubernetes: dict[str, str] | None
    docker: dict[str, str] | None

    @property
    def container_id(self) -> str | None:
        return self.docker["container_id"] if self.docker else None

    def static_fields(self) -> dict[str, Any]:
        """The body fields every record of this file shares (tag, kubernetes, docker)."""
        fields: dict[str, Any] = {"tag": self.tag}
        if self.kubernetes is not None:
            fields["kubernetes"] = self.kubernetes
        if self.docker is not None:
            fields["docker"] = self.docker
        return fields


def parse_path(path: str, tag_prefix: str) -> FileMeta:
    """Tag and Kubernetes names of one discovered path (the symlink path, not its target)."""
    tag = build_tag(tag_prefix, path)
    match = REGEX_VAR_LOG_CONTAINERS.search(tag)
    if match is not None:
        return FileMeta(
            tag,
            {"namespace_name": match["namespace"], "pod_name": match["pod_name"],
             "container_name": match["container_name"]},
            {"container_id": match["docker_id"]})
    match = REGEX_VAR_LOG_PODS.search(tag)
    if match is not None:
        return FileMeta(
            tag,
            {"namespace_name": match["namespace"], "pod_name": match["pod_name"],
             "container_name": match["container_name"], "pod_id": match["pod_uuid"]},
            None)
    return FileMeta(tag, None, None)
