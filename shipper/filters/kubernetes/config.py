"""Settings of the ``kubernetes_metadata`` filter (spec "Kubernetes metadata" §3).

Names and defaults follow fluent-plugin-kubernetes_metadata_filter where it has the option
(``annotation_match``, ``skip_labels``, ``de_dot``...), so a Fluentd config translates key by
key. ``de_dot`` is on by default like that plugin's v2 (v3 removed it), because existing
Elasticsearch indices were built with de-dotted label keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from shipper.config import checks
from shipper.config.types import Bytes, Seconds
from shipper.filters.merge import MergeRules

MIB = 1024 * 1024


def _check_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"{value!r} is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{value!r} must be a URL like https://kubernetes.default.svc:443"
    return None


def _check_patterns(values: list[str]) -> str | None:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            return f"{value!r} is not a valid regular expression: {exc}"
    return None


def _check_annotation_key(value: str | None) -> str | None:
    if value is not None and (not value or any(c.isspace() for c in value)):
        return "must be an annotation key such as shipper.io/exclude, or null"
    return None


@dataclass(frozen=True)
class KubernetesMetadataConfig:
    """Add the pod's Kubernetes metadata to every record, with Fluentd's field names."""

    type: Literal["kubernetes_metadata"] = field(default="kubernetes_metadata", metadata={
        "doc": "Filter type."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this filter applies to (Fluentd match syntax). "
               "Records without kubernetes.namespace_name/pod_name pass unchanged."})
    kubernetes_url: str | None = field(default=None, metadata={
        "doc": "API server URL. null: the in-cluster service account when running in a pod "
               "(KUBERNETES_SERVICE_HOST is set), else the current context of the kubeconfig.",
        "check": _check_url})
    bearer_token_file: str | None = field(default=None, metadata={
        "doc": "With kubernetes_url: file holding the bearer token, re-read when it changes "
               "(bound service-account tokens rotate)."})
    ca_file: str | None = field(default=None, metadata={
        "doc": "With kubernetes_url: PEM file of the CA that signed the API server's "
               "certificate."})
    verify_ssl: bool = field(default=True, metadata={
        "doc": "Verify the API server's certificate. Turning this off is insecure."})
    kubeconfig: str | None = field(default=None, metadata={
        "doc": "Kubeconfig file used outside a cluster (default: $KUBECONFIG, then "
               "~/.kube/config)."})
    node_name: str | None = field(default=None, metadata={
        "doc": "Watch only the pods of this node (fieldSelector spec.nodeName). null: "
               "$NODE_NAME, then $K8S_NODE_NAME (set them from spec.nodeName with the "
               "downward API). Without any, every pod of the cluster is watched (logged as "
               "a warning)."})
    annotation_match: list[str] = field(default_factory=list, metadata={
        "doc": "Regular expressions (searched in the key); only pod and namespace annotations "
               "whose key matches one are added. Empty: no annotations (Fluentd's default).",
        "check": _check_patterns})
    de_dot: bool = field(default=True, metadata={
        "doc": "Replace '.' in label and annotation keys with de_dot_separator, so "
               "app.kubernetes.io/name cannot collide with app in an Elasticsearch mapping. "
               "Turn off when the index template maps labels as flattened."})
    de_dot_separator: str = field(default="_", metadata={
        "doc": "Replacement for '.' in keys when de_dot is on."})
    de_slash: bool = field(default=False, metadata={
        "doc": "Also replace '/' in label and annotation keys with de_slash_separator."})
    de_slash_separator: str = field(default="__", metadata={
        "doc": "Replacement for '/' in keys when de_slash is on."})
    skip_labels: bool = field(default=False, metadata={
        "doc": "Add no pod or namespace labels."})
    skip_namespace_labels: bool = field(default=False, metadata={
        "doc": "Add no namespace labels."})
    skip_container_metadata: bool = field(default=False, metadata={
        "doc": "Add no container_image / container_image_id."})
    skip_master_url: bool = field(default=False, metadata={
        "doc": "Add no master_url."})
    skip_namespace_metadata: bool = field(default=False, metadata={
        "doc": "Do not list/watch namespaces: no namespace_id, namespace_labels or "
               "namespace_annotations (and no RBAC on namespaces needed)."})
    exclude_annotation: str | None = field(default="shipper.io/exclude", metadata={
        "doc": "Pod annotation that, set to \"true\", drops the pod's records (counted in "
               "shipper_records_dropped_total{output=\"filter:<name>\",reason=\"excluded\"}"
               "). <key>-<container> applies to one container and wins over the pod-wide key. "
               "null: ignore it.",
        "check": _check_annotation_key})
    parser_annotation: str | None = field(default="shipper.io/parser", metadata={
        "doc": "Pod annotation naming a parser (json, ...) applied to the pod's log field; "
               "<key>-<container> applies to one container. null: ignore it.",
        "check": _check_annotation_key})
    multiline_annotation: str | None = field(default="shipper.io/multiline", metadata={
        "doc": "Pod annotation naming a multiline preset (java, python, go, ruby, dotnet, "
               "node, or none) with which the tail source joins the pod's stack traces; "
               "<key>.<container> applies to one container and wins. An unknown name is "
               "counted in shipper_multiline_hints_unknown_total and the source's own rules "
               "apply. null: ignore it.",
        "check": _check_annotation_key})
    parsed_log: MergeRules = field(default_factory=MergeRules, metadata={
        "doc": "How the fields a pod's annotated parser extracts are merged into the record."})
    deleted_pod_retention_secs: Seconds = field(default=60.0, metadata={
        "doc": "Keep a deleted pod's metadata at least this long, and until none of its "
               "records has been seen for this long while records flow, so its last lines "
               "are still enriched.",
        "check": checks.positive})
    max_deleted_pods: int = field(default=5000, metadata={
        "doc": "Most deleted pods kept for late lines; the oldest deletions go first beyond it "
               "(bounds memory under heavy churn).",
        "check": checks.positive})
    initial_sync_timeout_secs: Seconds = field(default=10.0, metadata={
        "doc": "At start, wait this long for the first pod list before reading logs, so a "
               "backlog is enriched. If the API server is down, the agent starts anyway and "
               "records ship with the fields of their file name until it answers.",
        "check": checks.non_negative})
    request_timeout_secs: Seconds = field(default=10.0, metadata={
        "doc": "Connect and read timeout of one list request.",
        "check": checks.positive})
    watch_timeout_secs: Seconds = field(default=300.0, metadata={
        "doc": "Ask the API server to end each watch after this long (a new one resumes from "
               "the last resourceVersion); a silent watch is abandoned after this plus "
               "request_timeout_secs.",
        "check": checks.positive})
    retry_initial_secs: Seconds = field(default=1.0, metadata={
        "doc": "First delay after a failed list or watch; doubles per failure, with jitter.",
        "check": checks.positive})
    retry_max_secs: Seconds = field(default=30.0, metadata={
        "doc": "Longest delay between retries.",
        "check": checks.positive})
    max_requests_per_sec: float = field(default=1.0, metadata={
        "doc": "Sustained limit of API requests (all lists and watches of this filter), after "
               "a burst of 4: an outage never turns into a request storm.",
        "check": checks.positive})
    max_response_bytes: Bytes = field(default=64 * MIB, metadata={
        "doc": "Largest list response or single watch event accepted; a larger one is an "
               "error (retried), never an unbounded allocation.",
        "check": checks.positive})

    __config_examples__: ClassVar[str] = """\
Example: the DaemonSet setup (in-cluster service account, this node's pods only):

```yaml
filters:
  k8s:
    type: kubernetes_metadata
    match: "kube.**"
    annotation_match: ["^sidecar\\\\.istio\\\\.io/"]
```

with `NODE_NAME` set from the downward API (`fieldRef: spec.nodeName`) and a ClusterRole
granting `get`, `list`, `watch` on `pods` and `namespaces` (nothing else). Every record of a
known pod gets `kubernetes.{namespace_name, pod_name, pod_id, pod_ip, host, container_name,
container_image, container_image_id, labels, annotations, master_url, namespace_id,
namespace_labels}` and `docker.container_id`. A record whose pod is not known yet ships at
once with the fields of its file name.

Pod annotations the filter honours:

```yaml
metadata:
  annotations:
    shipper.io/exclude: "true"            # drop this pod's logs (counted)
    shipper.io/exclude-istio-proxy: "true" # only the istio-proxy container's logs
    shipper.io/parser: json               # merge JSON log lines (see parsed_log)
```
"""

    def validate(self) -> list[str]:
        problems = []
        if "." in self.de_dot_separator:
            problems.append("de_dot_separator: must not contain '.'")
        if "/" in self.de_slash_separator:
            problems.append("de_slash_separator: must not contain '/'")
        if self.retry_max_secs < self.retry_initial_secs:
            problems.append("retry_max_secs: must be >= retry_initial_secs")
        if self.kubernetes_url is None and (self.bearer_token_file or self.ca_file):
            problems.append("kubernetes_url: required with bearer_token_file or ca_file")
        return problems
