"""Saved objects are read back into the searches their panels run."""

from __future__ import annotations

import json

from shipper.dashboards import objects
from shipper.dashboards.build import (
    Panel,
    count,
    dashboard,
    date_histogram,
    index_pattern,
    metric,
    search,
    table_params,
    terms,
    visualization,
    xy_params,
)
from shipper.dashboards.panels import resolve


def by_title(interval: str = "5m") -> dict[str, object]:
    return {p.title: p for p in resolve(objects.all_objects(), interval)}


def test_a_visualization_on_a_saved_search_runs_the_search_query() -> None:
    panel = by_title()["Istio logs over time by component"]
    assert panel.query == {"match_phrase": {"kubernetes.namespace_name": "istio-system"}}
    assert panel.index_title == "logstash-*" and panel.time_field == "@timestamp"
    # Bucket aggregations nest in the order written: X axis, then the split series.
    assert panel.aggs == {"a2": {
        "date_histogram": {"field": "@timestamp", "fixed_interval": "5m", "min_doc_count": 1},
        "aggs": {"a3": {"terms": {"field": "kubernetes.container_name", "size": 10,
                                  "order": {"_count": "desc"}}}}}}
    assert panel.top_agg == "a2"


def test_filters_buckets_carry_their_kql_as_queries() -> None:
    panel = by_title()["5xx share"]
    assert panel.query == {"exists": {"field": "envoy.response_code"}}
    assert panel.aggs == {"a2": {"filters": {"filters": {
        "5xx": {"range": {"envoy.response_code": {"gte": 500}}},
        "other": {"range": {"envoy.response_code": {"lt": 500}}}}}}}


def test_metric_aggregations_go_inside_the_innermost_bucket() -> None:
    panel = by_title()["Top upstream clusters"]
    assert panel.aggs == {"a3": {
        "terms": {"field": "envoy.upstream_cluster", "size": 20, "order": {"_count": "desc"}},
        "aggs": {"a2": {"avg": {"field": "envoy.duration_ms"}}}}}
    uses = {(u.path, u.need) for u in panel.fields}
    assert uses == {("envoy.upstream_cluster", "any"), ("envoy.upstream_cluster", "aggregatable"),
                    ("envoy.duration_ms", "numeric")}


def test_a_saved_search_panel_sorts_and_lists_its_columns() -> None:
    panel = by_title()["Slowest Envoy requests"]
    assert panel.kind == "search" and panel.aggs is None
    assert panel.sort == [{"envoy.duration_ms": {"order": "desc"}}]
    assert ("envoy.duration_ms", "aggregatable") in {(u.path, u.need) for u in panel.fields}
    assert panel.required


def test_searches_on_no_dashboard_are_listed_but_not_required() -> None:
    panel = by_title()["Mixer telemetry (Istio before 1.5)"]
    assert panel.dashboard == "" and not panel.required


def test_a_missing_reference_or_an_unsupported_panel_is_an_error_not_a_crash() -> None:
    ip = index_pattern("ip", "x-*")
    s = search("s", "S", "", ["log"], "ip")
    vis = visualization("v", "V", "line", [count(), date_histogram("2")], xy_params("line"),
                        index_pattern_id="ip")
    tbl = visualization("t", "T", "table", [count(), metric("2", "avg", "envoy.duration_ms"),
                                            terms("3", "envoy.path", "bucket")],
                        table_params(), index_pattern_id="ip")
    board = dashboard("d", "D", [Panel(s, 24, 5), Panel(vis, 24, 5), Panel(tbl, 24, 5)])
    vis_state = json.loads(vis["attributes"]["visState"])
    vis_state["aggs"].append({"id": "9", "type": "geohash_grid", "schema": "segment",
                              "params": {"field": "geo"}})
    vis["attributes"]["visState"] = json.dumps(vis_state)
    panels = {p.title: p for p in resolve([ip, s, vis, board])}  # tbl left out of the file
    assert panels["S"].error is None
    assert "geohash_grid" in (panels["V"].error or "")
    assert "visualization t is not in the file" in (panels["panel_2"].error or "")
