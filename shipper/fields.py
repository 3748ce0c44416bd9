"""The one list of indexed fields: Elasticsearch types and meaning of every field we map.

Both the index template (``outputs/elasticsearch/health.py``) and the Kibana saved objects
(``shipper/dashboards``) are built from this list, so a dashboard cannot use a field the
template does not map, or map with a type its aggregation cannot use. Fields not listed here
are still indexed, with Elasticsearch's dynamic mapping.

Types are the Elasticsearch ones, plus ``labels``: a map with arbitrary keys (Kubernetes labels
and annotations) whose concrete mapping depends on the server (``flattened`` on Elasticsearch,
``flat_object`` on OpenSearch, an unindexed object on servers that have neither); the output
decides, because only it knows the server.

Envoy strings carry ``ignore_above``: a path or user agent can be many kilobytes and Lucene
refuses a keyword term over 32766 bytes, which would reject the whole document. Longer values
stay in ``_source`` (and in ``envoy.path.text``) but are not aggregated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["date", "keyword", "text", "long", "integer", "labels"]

#: Keyword values longer than this many characters are stored but not indexed.
ENVOY_KEYWORD_IGNORE_ABOVE = 2048

NUMERIC_TYPES: frozenset[str] = frozenset({"long", "integer"})
AGGREGATABLE_TYPES: frozenset[str] = frozenset({"date", "keyword", "long", "integer", "labels"})


@dataclass(frozen=True, slots=True)
class Field:
    """One indexed field: dotted path, Elasticsearch type, what it holds."""

    path: str
    type: FieldType
    doc: str
    ignore_above: int | None = None
    text_subfield: bool = False  # also indexed as ``<path>.text`` for full-text search

    @property
    def aggregatable(self) -> bool:
        return self.type in AGGREGATABLE_TYPES

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    def mapping(self, labels_mapping: dict[str, Any]) -> dict[str, Any]:
        """This field's mapping; ``labels_mapping`` is what the server supports for maps."""
        if self.type == "labels":
            return dict(labels_mapping)
        out: dict[str, Any] = {"type": self.type}
        if self.ignore_above is not None:
            out["ignore_above"] = self.ignore_above
        if self.text_subfield:
            out["fields"] = {"text": {"type": "text"}}
        return out


def _envoy(name: str, type_: FieldType, doc: str, text_subfield: bool = False) -> Field:
    limit = ENVOY_KEYWORD_IGNORE_ABOVE if type_ == "keyword" else None
    return Field(f"envoy.{name}", type_, doc, limit, text_subfield)


FIELDS: tuple[Field, ...] = (
    Field("@timestamp", "date", "When the container runtime wrote the line (UTC)."),
    Field("time", "keyword",
          "The runtime's own timestamp as written; a keyword never fails to parse."),
    Field("log", "text", "The log line as the container wrote it (without the newline)."),
    Field("message", "text", "Message field of applications that log JSON with one."),
    Field("stream", "keyword", "stdout or stderr."),
    Field("tag", "keyword", "Routing tag (kubernetes.var.log.containers.<file>)."),
    Field("docker.container_id", "keyword", "64-hex id of the container."),
    Field("kubernetes.namespace_name", "keyword", "Namespace of the pod."),
    Field("kubernetes.pod_name", "keyword", "Name of the pod."),
    Field("kubernetes.container_name", "keyword",
          "Name of the container in the pod (istio-proxy for Envoy sidecars and gateways, "
          "discovery for istiod)."),
    Field("kubernetes.container_image", "keyword", "Image of the container."),
    Field("kubernetes.host", "keyword", "Node the pod runs on."),
    Field("kubernetes.pod_id", "keyword", "UID of the pod."),
    Field("kubernetes.namespace_id", "keyword", "UID of the namespace."),
    Field("kubernetes.labels", "labels", "Labels of the pod, one keyword per label."),
    Field("kubernetes.annotations", "labels", "Annotations of the pod."),
    Field("kubernetes.namespace_labels", "labels", "Labels of the pod's namespace."),
    Field("kubernetes.namespace_annotations", "labels",
          "Annotations of the pod's namespace that match the configured patterns."),
    Field("kubernetes.pod_ip", "keyword", "IP address of the pod."),
    Field("kubernetes.container_image_id", "keyword", "Image digest the container runs."),
    Field("kubernetes.master_url", "keyword", "API server the metadata came from."),
    _envoy("start_time", "date", "When Envoy started the request (or the TCP connection)."),
    _envoy("method", "keyword", "HTTP method (absent for TCP)."),
    _envoy("path", "keyword", "Original request path with the query string.", True),
    _envoy("protocol", "keyword", "HTTP/1.1, HTTP/2, HTTP/3 (absent for TCP)."),
    _envoy("response_code", "integer", "HTTP status; 0 when no response was sent."),
    _envoy("response_flags", "keyword",
           "Envoy response flags such as UH, UF, URX, UC, UT, DC, NR (absent when none)."),
    _envoy("response_code_details", "keyword",
           "Why Envoy answered with this code, e.g. via_upstream, no_healthy_upstream."),
    _envoy("connection_termination_details", "keyword", "Why Envoy closed the connection."),
    _envoy("upstream_transport_failure_reason", "keyword",
           "Upstream connect or TLS failure, e.g. delayed connect error: 111."),
    _envoy("bytes_received", "long", "Request body bytes (downstream bytes for TCP)."),
    _envoy("bytes_sent", "long", "Response body bytes (upstream bytes for TCP)."),
    _envoy("duration_ms", "long", "Total request duration in milliseconds."),
    _envoy("upstream_service_time", "long",
           "Milliseconds the upstream took (x-envoy-upstream-service-time)."),
    _envoy("x_forwarded_for", "keyword", "X-Forwarded-For request header."),
    _envoy("user_agent", "keyword", "User-Agent request header."),
    _envoy("request_id", "keyword",
           "X-Request-Id; the same id appears in the client's and the server's sidecar logs."),
    _envoy("authority", "keyword", "Host / :authority the client asked for."),
    _envoy("upstream_host", "keyword", "ip:port of the upstream endpoint Envoy chose."),
    _envoy("upstream_cluster", "keyword",
           "Envoy cluster: outbound|<port>|<subset>|<fqdn>, inbound|<port>||, "
           "PassthroughCluster, BlackHoleCluster."),
    _envoy("upstream_local_address", "keyword", "Local ip:port of the upstream connection."),
    _envoy("downstream_local_address", "keyword",
           "Original destination: the Service ClusterIP:port outbound, the pod IP:port inbound."),
    _envoy("downstream_remote_address", "keyword", "Client ip:port."),
    _envoy("requested_server_name", "keyword", "TLS SNI (the client's mTLS SNI on inbound)."),
    _envoy("route_name", "keyword", "Name of the route that matched."),
    _envoy("direction", "keyword",
           "inbound (a request into the pod) or outbound (a request leaving it, and every "
           "gateway request), from the upstream cluster."),
)

BY_PATH: dict[str, Field] = {f.path: f for f in FIELDS}


def get(path: str) -> Field:
    """The field at ``path``; KeyError names the path so a typo in a dashboard fails loudly."""
    try:
        return BY_PATH[path]
    except KeyError:
        raise KeyError(f"field {path!r} is not in shipper.fields.FIELDS") from None


def labels_root(path: str) -> Field | None:
    """The ``labels`` field that holds ``path`` (``kubernetes.labels.app`` -> labels), if any."""
    head = path
    while "." in head:
        head = head.rsplit(".", 1)[0]
        found = BY_PATH.get(head)
        if found is not None and found.type == "labels":
            return found
    return None


def mapping_properties(labels_mapping: dict[str, Any]) -> dict[str, Any]:
    """Nested ``properties`` of an index mapping for every field of the list."""
    properties: dict[str, Any] = {}
    for f in FIELDS:
        *parents, leaf = f.path.split(".")
        level = properties
        for part in parents:
            level = level.setdefault(part, {"properties": {}})["properties"]
        level[leaf] = f.mapping(labels_mapping)
    return properties
