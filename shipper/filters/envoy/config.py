"""Settings of the ``envoy_access_log`` filter: which records are Envoy access logs.

Selection is by container first (``kubernetes.container_name``, which the tail source always
provides from the file name), then by pod label (present once the Kubernetes metadata filter
ran). Istio sidecars and Istio's ingress/egress gateways all run Envoy in a container named
``istio-proxy``; the label selectors cover gateways deployed with another container name.
Other pods opt in with the ``shipper.io/parser: envoy`` annotation, which the Kubernetes
metadata filter applies through the parser registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

DEFAULT_CONTAINERS = ("istio-proxy",)
DEFAULT_POD_LABELS = ("istio=ingressgateway", "istio=egressgateway")
_EXAMPLE_LINE = (
    '[2026-11-22T01:02:04.801Z] "POST /api/v1/orders HTTP/1.1" 503 UC '
    'upstream_reset_before_response_started{connection_termination} - "-" 512 95 3 - "-" '
    '"Go-http-client/2.0" "0e7b5d42-91a3-9f7c-b6d1-3c2e4a5f6b70" '
    '"orders.shop.svc.cluster.local:8080" "10.244.3.21:8080" inbound|8080|| 127.0.0.6:39551 '
    "10.244.3.21:8080 10.244.1.9:53718 outbound_.8080_._.orders.shop.svc.cluster.local default")


def _check_names(values: list[str]) -> str | None:
    for value in values:
        if not value or value.strip() != value:
            return f"container names must be non-empty, without spaces, got {value!r}"
    return None


def _check_label_selectors(values: list[str]) -> str | None:
    for value in values:
        key = value.partition("=")[0]
        if not key or any(c.isspace() for c in value):
            return f"expected key or key=value without spaces, got {value!r}"
    return None


def _check_key(value: str) -> str | None:
    if not value or value.startswith("_"):
        return "must be a non-empty field name that does not start with '_'"
    return None


@dataclass(frozen=True)
class EnvoyAccessLogConfig:
    """Parse Envoy / Istio access logs (TEXT or JSON encoding) into ``envoy.*`` fields."""

    type: Literal["envoy_access_log"] = field(default="envoy_access_log", metadata={
        "doc": "Filter type."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this filter looks at (Fluentd match syntax)."})
    container_names: list[str] = field(default_factory=lambda: list(DEFAULT_CONTAINERS),
                                       metadata={
        "doc": "Parse records whose kubernetes.container_name is one of these (Envoy "
               "sidecars and Istio gateways run in istio-proxy).",
        "check": _check_names})
    pod_labels: list[str] = field(default_factory=lambda: list(DEFAULT_POD_LABELS), metadata={
        "doc": "Also parse every container of pods with one of these labels: key=value, or "
               "key alone for any value. Needs the kubernetes_metadata filter before this one; "
               "de-dotted keys (app_kubernetes_io/name) match too.",
        "check": _check_label_selectors})
    every_record: bool = field(default=False, metadata={
        "doc": "Parse every record that match selects, whatever its container (for tags that "
               "only carry Envoy logs, such as a forward input from an Envoy fleet)."})
    key_name: str = field(default="log", metadata={
        "doc": "Record field holding the access-log line.",
        "check": _check_key})
    keep_log: bool = field(default=True, metadata={
        "doc": "Keep the raw line in key_name next to the parsed fields (free-text search "
               "keeps working); false stores about half the bytes per access log."})

    __config_examples__: ClassVar[str] = f"""\
Example: structured Envoy access logs for an Istio mesh, after the Kubernetes metadata filter:

```yaml
filters:
  k8s:
    type: kubernetes_metadata
  envoy:
    type: envoy_access_log          # istio-proxy containers and Istio gateway pods
```

An Istio TEXT line such as

```
{_EXAMPLE_LINE}
```

gains `envoy.method: POST`, `envoy.path: /api/v1/orders`, `envoy.response_code: 503`,
`envoy.response_flags: UC`, `envoy.duration_ms: 3`, `envoy.upstream_cluster: inbound|8080||`,
`envoy.direction: inbound` and the other fields of the format; `-` values are left out and
numbers are numbers. JSON-encoded access logs (`meshConfig.accessLogEncoding: JSON`) give the
same fields (`duration` becomes `duration_ms`). Other lines of the container (pilot-agent and
Envoy's own logs) pass unchanged. `shipper_filter_records_total{{filter,result}}` counts
`parsed` and `not_parsed` records. Any other pod opts in with the pod annotation
`shipper.io/parser: envoy` (applied by the kubernetes_metadata filter).
"""

    def validate(self) -> list[str]:
        if not self.every_record and not self.container_names and not self.pod_labels:
            return ["container_names: select records by container_names, pod_labels or "
                    "every_record: true; as written the filter parses nothing"]
        return []
