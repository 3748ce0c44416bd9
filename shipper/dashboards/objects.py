"""The saved objects shipper ships: two dashboards, their searches and visualizations.

* **Istio logs**: how much the control plane logs, which component logs how much over time,
  which is noisiest, the istiod lines and the Envoy lines. "Component" is the container name:
  ``discovery`` (istiod, and pilot before 1.5), ``istio-proxy`` (gateways), and ``mixer``,
  ``citadel``, ``galley``... on old meshes; the tail source always provides it, labels need the
  metadata filter.
* **Envoy access logs** (fields from the ``envoy_access_log`` filter): requests over time by
  response class, the share of 5xx, top paths and upstream clusters, the duration distribution,
  response flags with their details, and the slowest requests.

The duration panel buckets ``envoy.duration_ms`` with a ``range`` aggregation (under 10 ms,
10-100 ms, ...) rather than ``percentiles``: both read the same way ("how many requests were
slower than 100 ms"), and ``range`` also works on Elasticsearch-compatible servers without
percentile sketches, so ``shipper dashboards check`` can prove it shows data everywhere.

Ids are fixed (``shipper-...``): importing again overwrites instead of duplicating. Each family
carries the index pattern so it imports on its own without missing references.
"""

from __future__ import annotations

from shipper.dashboards.build import (
    Panel,
    SavedObject,
    count,
    dashboard,
    date_histogram,
    filters,
    index_pattern,
    metric,
    metric_params,
    pie_params,
    ranges,
    search,
    table_params,
    terms,
    visualization,
    xy_params,
)

DEFAULT_INDEX_PATTERN = "logstash-*"
INDEX_PATTERN_ID = "shipper-index-pattern"

ISTIO_SYSTEM = 'kubernetes.namespace_name : "istio-system"'
ISTIOD = 'kubernetes.namespace_name : "istio-system" and kubernetes.container_name : "discovery"'
MIXER = ('kubernetes.container_name : "mixer" and '
         'kubernetes.labels.istio-mixer-type : "telemetry"')
ENVOY_LOGS = 'kubernetes.container_name : "istio-proxy" or envoy.response_code : *'
ACCESS_LOGS = "envoy.response_code : *"
RESPONSE_CLASSES = (
    ("2xx", "envoy.response_code >= 200 and envoy.response_code < 300"),
    ("3xx", "envoy.response_code >= 300 and envoy.response_code < 400"),
    ("4xx", "envoy.response_code >= 400 and envoy.response_code < 500"),
    ("5xx", "envoy.response_code >= 500"),
    ("no response", "envoy.response_code < 100"),
)
DURATION_BUCKETS_MS: tuple[tuple[float | None, float | None], ...] = (
    (None, 10), (10, 100), (100, 1000), (1000, 10_000), (10_000, None))
COMPONENT = "kubernetes.container_name"
ACCESS_COLUMNS = ("kubernetes.namespace_name", "kubernetes.pod_name", "envoy.direction",
                  "envoy.method", "envoy.path", "envoy.response_code", "envoy.response_flags",
                  "envoy.duration_ms", "envoy.upstream_cluster")


def _index_pattern(title: str) -> SavedObject:
    return index_pattern(INDEX_PATTERN_ID, title)


def envoy_logs_search() -> SavedObject:
    return search("shipper-search-envoy-logs", "Envoy logs", ENVOY_LOGS,
                  ("kubernetes.namespace_name", "kubernetes.pod_name", "envoy.response_code",
                   "envoy.method", "envoy.path", "envoy.duration_ms", "log"), INDEX_PATTERN_ID,
                  description="Every line of the istio-proxy containers (sidecars and "
                              "gateways) and every parsed access log.")


def istio_family(title: str = DEFAULT_INDEX_PATTERN) -> list[SavedObject]:
    """The "Istio logs" dashboard and everything it needs, dependencies first."""
    control_plane = search(
        "shipper-search-istio-control-plane", "Istio control plane", ISTIO_SYSTEM,
        ("kubernetes.container_name", "kubernetes.pod_name", "log"), INDEX_PATTERN_ID,
        description="Everything logged in istio-system.")
    istiod = search(
        "shipper-search-istiod", "istiod (Istio 1.5+)", ISTIOD,
        ("kubernetes.pod_name", "stream", "log"), INDEX_PATTERN_ID,
        description="The control plane of current meshes: istiod's discovery container.")
    mixer = search(
        "shipper-search-mixer-telemetry", "Mixer telemetry (Istio before 1.5)", MIXER,
        ("kubernetes.pod_name", "log"), INDEX_PATTERN_ID,
        description="The seed's Mixer search, for meshes that still run Mixer.")
    envoy = envoy_logs_search()
    count_vis = visualization(
        "shipper-vis-istio-log-count", "istio-system log lines", "metric", [count()],
        metric_params(), search_id=control_plane["id"])
    over_time = visualization(
        "shipper-vis-istio-logs-over-time", "Istio logs over time by component", "line",
        [count(), date_histogram("2"), terms("3", COMPONENT, "group", size=10)],
        xy_params("line"), search_id=control_plane["id"])
    breakdown = visualization(
        "shipper-vis-istio-logs-by-component", "Istio logs by component", "pie",
        [count(), terms("2", COMPONENT, "segment", size=10)], pie_params(),
        search_id=control_plane["id"])
    board = dashboard(
        "shipper-dashboard-istio-logs", "Istio logs",
        [Panel(count_vis, 12, 10), Panel(breakdown, 12, 10), Panel(over_time, 24, 10),
         Panel(istiod, 48, 15), Panel(envoy, 48, 15)],
        description="istio-system log volume by component, istiod and Envoy lines.")
    return [_index_pattern(title), control_plane, istiod, mixer, envoy, count_vis, over_time,
            breakdown, board]


def envoy_family(title: str = DEFAULT_INDEX_PATTERN) -> list[SavedObject]:
    """The "Envoy access logs" dashboard and everything it needs, dependencies first."""
    ip = INDEX_PATTERN_ID
    slowest = search(
        "shipper-search-slowest-requests", "Slowest Envoy requests", "envoy.duration_ms : *",
        ("envoy.duration_ms", *[c for c in ACCESS_COLUMNS if c != "envoy.duration_ms"]), ip,
        sort=(("envoy.duration_ms", "desc"),),
        description="Access logs, longest first.")
    requests = visualization(
        "shipper-vis-envoy-requests", "Requests", "metric", [count()], metric_params(),
        index_pattern_id=ip, query=ACCESS_LOGS)
    over_time = visualization(
        "shipper-vis-envoy-requests-by-class", "Requests over time by response class", "area",
        [count(), date_histogram("2"), filters("3", "group", RESPONSE_CLASSES)],
        xy_params("area", "Requests", stacked=True), index_pattern_id=ip, query=ACCESS_LOGS)
    share_5xx = visualization(
        "shipper-vis-envoy-5xx-share", "5xx share", "pie",
        [count(), filters("2", "segment", (("5xx", "envoy.response_code >= 500"),
                                           ("other", "envoy.response_code < 500")))],
        pie_params(), index_pattern_id=ip, query=ACCESS_LOGS)
    top_paths = visualization(
        "shipper-vis-envoy-top-paths", "Top paths", "table",
        [count(), metric("2", "avg", "envoy.duration_ms", "Mean duration (ms)"),
         metric("3", "max", "envoy.duration_ms", "Max duration (ms)"),
         terms("4", "envoy.path", "bucket", size=20, label="Path")],
        table_params(), index_pattern_id=ip, query="envoy.path : *")
    top_clusters = visualization(
        "shipper-vis-envoy-top-upstream-clusters", "Top upstream clusters", "table",
        [count(), metric("2", "avg", "envoy.duration_ms", "Mean duration (ms)"),
         terms("3", "envoy.upstream_cluster", "bucket", size=20, label="Upstream cluster")],
        table_params(), index_pattern_id=ip, query="envoy.upstream_cluster : *")
    durations = visualization(
        "shipper-vis-envoy-duration", "Request duration (ms)", "histogram",
        [count(), ranges("2", "envoy.duration_ms", "segment", DURATION_BUCKETS_MS)],
        xy_params("histogram", "Requests"), index_pattern_id=ip, query=ACCESS_LOGS)
    flags = visualization(
        "shipper-vis-envoy-response-flags", "Response flags", "table",
        [count(), terms("2", "envoy.response_flags", "bucket", size=20, label="Flags"),
         terms("3", "envoy.response_code_details", "bucket", size=5, label="Details")],
        table_params(), index_pattern_id=ip, query="envoy.response_flags : *")
    board = dashboard(
        "shipper-dashboard-envoy-access-logs", "Envoy access logs",
        [Panel(requests, 8, 10), Panel(share_5xx, 12, 10), Panel(over_time, 28, 10),
         Panel(top_paths, 24, 14), Panel(top_clusters, 24, 14),
         Panel(durations, 24, 12), Panel(flags, 24, 12), Panel(slowest, 48, 15)],
        description="Envoy sidecar and gateway access logs parsed into envoy.* fields.")
    return [_index_pattern(title), slowest, requests, over_time, share_5xx, top_paths,
            top_clusters, durations, flags, board]


#: File name -> builder of that file's objects.
FAMILIES = {"istio-logs.ndjson": istio_family, "envoy-access-logs.ndjson": envoy_family}


def all_objects(title: str = DEFAULT_INDEX_PATTERN) -> list[SavedObject]:
    """Every object once (the index pattern is shared), dependencies first."""
    out: dict[tuple[str, str], SavedObject] = {}
    for build in FAMILIES.values():
        for obj in build(title):
            out.setdefault((obj["type"], obj["id"]), obj)
    return list(out.values())
