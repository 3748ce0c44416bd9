"""Builders for Kibana saved objects in the one format every target imports (spec §3).

Legacy (aggregation-based) visualizations stamped with Kibana 7.10's ``migrationVersion``
import into Kibana 7.10+, 8.x and OpenSearch Dashboards alike: 7.10 and OpenSearch Dashboards
run no migration, later Kibanas run the ones a real 7.10 export would get. No Lens (8.x only,
unknown to OpenSearch), no ``coreMigrationVersion`` (refused by older versions), nothing in a
dashboard beyond the attributes Kibana 8's schema allows. JSON-in-string attributes
(``visState``, ``searchSourceJSON``, ``panelsJSON``...) are compact ``json.dumps`` output.

Every field an aggregation or a query names is looked up in ``shipper.fields``, with the type
the aggregation needs, so a dashboard cannot use a field the index template does not map.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipper import fields
from shipper.dashboards import kql
from shipper.errors import DashboardsError

SavedObject = dict[str, Any]
Need = Literal["any", "aggregatable", "numeric", "date"]

MIGRATION = {"index-pattern": "7.6.0", "search": "7.9.3", "visualization": "7.10.0",
             "dashboard": "7.9.3"}
PANEL_VERSION = "7.10.0"
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"
GRID_COLUMNS = 48


def dumps(value: Any) -> str:
    """Compact JSON, as Kibana stores JSON-in-string attributes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def check_field(path: str, need: Need) -> str:
    """``path`` if the field list maps it with a type fit for ``need``; else DashboardsError."""
    field = fields.BY_PATH.get(path) or fields.labels_root(path)
    if field is None:
        raise DashboardsError(f"{path!r} is not in shipper.fields: the template would not map it")
    ok = {"any": True, "aggregatable": field.aggregatable, "numeric": field.numeric,
          "date": field.type == "date"}[need]
    if not ok:
        raise DashboardsError(f"{path!r} is {field.type}; this use needs a {need} field")
    return path


def check_query(query: str) -> str:
    """``query`` if it is supported KQL over mapped fields."""
    for path in kql.fields(query):
        check_field(path, "any")
    return query


def _search_source(query: str, with_index: bool) -> dict[str, Any]:
    source: dict[str, Any] = {"query": {"query": check_query(query), "language": "kuery"},
                              "filter": []}
    if with_index:
        source["indexRefName"] = INDEX_REF
    return {"searchSourceJSON": dumps(source)}


def _index_ref(index_pattern_id: str) -> dict[str, str]:
    return {"name": INDEX_REF, "type": "index-pattern", "id": index_pattern_id}


def index_pattern(object_id: str, title: str, time_field: str = "@timestamp") -> SavedObject:
    """The index pattern (data view); an empty field list makes Kibana read the mapping."""
    check_field(time_field, "date")
    return {"type": "index-pattern", "id": object_id,
            "attributes": {"title": title, "timeFieldName": time_field, "fields": "[]"},
            "references": [], "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]}}


def search(object_id: str, title: str, query: str, columns: Sequence[str], index_pattern_id: str,
           sort: Sequence[tuple[str, str]] = (("@timestamp", "desc"),),
           description: str = "") -> SavedObject:
    """A saved search (Discover): a query, the columns shown and the sort order."""
    for column in columns:
        check_field(column, "any")
    for path, _ in sort:
        check_field(path, "aggregatable")
    return {"type": "search", "id": object_id,
            "attributes": {"title": title, "description": description,
                           "columns": list(columns), "sort": [list(s) for s in sort],
                           "kibanaSavedObjectMeta": _search_source(query, True)},
            "references": [_index_ref(index_pattern_id)],
            "migrationVersion": {"search": MIGRATION["search"]}}


# --- aggregations (the visState "aggs" entries) -------------------------------------------

def count(agg_id: str = "1") -> dict[str, Any]:
    return {"id": agg_id, "enabled": True, "type": "count", "params": {}, "schema": "metric"}


def metric(agg_id: str, kind: Literal["avg", "max", "min", "sum"], field: str,
           label: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {"field": check_field(field, "numeric")}
    if label:
        params["customLabel"] = label
    return {"id": agg_id, "enabled": True, "type": kind, "params": params, "schema": "metric"}


def date_histogram(agg_id: str, schema: str = "segment", field: str = "@timestamp",
                   ) -> dict[str, Any]:
    return {"id": agg_id, "enabled": True, "type": "date_histogram", "schema": schema,
            "params": {"field": check_field(field, "date"), "interval": "auto",
                       "min_doc_count": 1, "extended_bounds": {}}}


def terms(agg_id: str, field: str, schema: str, size: int = 10, label: str = "",
          order_by: str = "1") -> dict[str, Any]:
    params: dict[str, Any] = {
        "field": check_field(field, "aggregatable"), "orderBy": order_by, "order": "desc",
        "size": size, "otherBucket": False, "otherBucketLabel": "Other",
        "missingBucket": False, "missingBucketLabel": "Missing"}
    if label:
        params["customLabel"] = label
    return {"id": agg_id, "enabled": True, "type": "terms", "params": params, "schema": schema}


def filters(agg_id: str, schema: str, named: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One bucket per (label, KQL query)."""
    return {"id": agg_id, "enabled": True, "type": "filters", "schema": schema, "params": {
        "filters": [{"input": {"query": check_query(q), "language": "kuery"}, "label": label}
                    for label, q in named]}}


def ranges(agg_id: str, field: str, schema: str,
           bounds: Sequence[tuple[float | None, float | None]]) -> dict[str, Any]:
    """Numeric buckets ``[from, to)``; None leaves a side open."""
    out = []
    for low, high in bounds:
        item: dict[str, float] = {}
        if low is not None:
            item["from"] = low
        if high is not None:
            item["to"] = high
        out.append(item)
    return {"id": agg_id, "enabled": True, "type": "range", "schema": schema,
            "params": {"field": check_field(field, "numeric"), "ranges": out}}


# --- visualization parameters --------------------------------------------------------------

def metric_params() -> dict[str, Any]:
    return {"addTooltip": True, "addLegend": False, "type": "metric", "metric": {
        "percentageMode": False, "useRanges": False, "colorSchema": "Green to Red",
        "metricColorMode": "None", "colorsRange": [{"from": 0, "to": 10000}],
        "labels": {"show": True}, "invertColors": False,
        "style": {"bgFill": "#000", "bgColor": False, "labelColor": False, "subText": "",
                  "fontSize": 60}}}


def xy_params(kind: Literal["line", "area", "histogram"], y_title: str = "Count",
              stacked: bool = False) -> dict[str, Any]:
    series = {"show": True, "type": kind, "mode": "stacked" if stacked else "normal",
              "data": {"label": y_title, "id": "1"}, "valueAxis": "ValueAxis-1",
              "drawLinesBetweenPoints": True, "lineWidth": 2, "interpolate": "linear",
              "showCircles": True}
    return {
        "type": kind, "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom",
                          "show": True, "style": {}, "scale": {"type": "linear"},
                          "labels": {"show": True, "filter": True, "truncate": 100},
                          "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value",
                       "position": "left", "show": True, "style": {},
                       "scale": {"type": "linear", "mode": "normal"},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": y_title}}],
        "seriesParams": [series], "addTooltip": True, "addLegend": True,
        "legendPosition": "right", "times": [], "addTimeMarker": False}


def pie_params() -> dict[str, Any]:
    return {"type": "pie", "addTooltip": True, "addLegend": True, "legendPosition": "right",
            "isDonut": True,
            "labels": {"show": True, "values": True, "last_level": True, "truncate": 100}}


def table_params(per_page: int = 10) -> dict[str, Any]:
    return {"perPage": per_page, "showPartialRows": False, "showMetricsAtAllLevels": False,
            "sort": {"columnIndex": None, "direction": None}, "showTotal": False,
            "totalFunc": "sum", "percentageCol": ""}


def visualization(object_id: str, title: str, vis_type: str, aggs: Sequence[dict[str, Any]],
                  params: dict[str, Any], *, index_pattern_id: str | None = None,
                  search_id: str | None = None, query: str = "",
                  description: str = "") -> SavedObject:
    """A legacy visualization over an index pattern (with ``query``) or a saved search."""
    if (index_pattern_id is None) == (search_id is None):
        raise DashboardsError(f"{object_id}: give exactly one of index_pattern_id, search_id")
    vis_state = {"title": title, "type": vis_type, "aggs": list(aggs), "params": params}
    attributes: dict[str, Any] = {
        "title": title, "description": description, "visState": dumps(vis_state),
        "uiStateJSON": "{}", "version": 1,
        "kibanaSavedObjectMeta": _search_source(query, index_pattern_id is not None)}
    if search_id is not None:
        if query:
            raise DashboardsError(f"{object_id}: a visualization on a saved search has its query")
        attributes["savedSearchRefName"] = "search_0"
        references = [{"name": "search_0", "type": "search", "id": search_id}]
    else:
        references = [_index_ref(index_pattern_id or "")]
    return {"type": "visualization", "id": object_id, "attributes": attributes,
            "references": references,
            "migrationVersion": {"visualization": MIGRATION["visualization"]}}


@dataclass(frozen=True, slots=True)
class Panel:
    """A saved object placed on a dashboard: ``width`` of 48 columns, ``height`` in rows."""

    object: SavedObject
    width: int
    height: int


def dashboard(object_id: str, title: str, panels: Sequence[Panel], description: str = "",
              time_from: str = "now-24h", time_to: str = "now") -> SavedObject:
    """A dashboard laying ``panels`` out left to right, wrapping at 48 columns."""
    layout, references = [], []
    x = y = row_height = 0
    for i, panel in enumerate(panels):
        if not 0 < panel.width <= GRID_COLUMNS:
            raise DashboardsError(f"{object_id}: panel width {panel.width} not in 1..48")
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        key = str(i + 1)
        layout.append({"version": PANEL_VERSION,
                       "gridData": {"x": x, "y": y, "w": panel.width, "h": panel.height,
                                    "i": key},
                       "panelIndex": key, "embeddableConfig": {}, "panelRefName": f"panel_{i}"})
        references.append({"name": f"panel_{i}", "type": panel.object["type"],
                           "id": panel.object["id"]})
        x += panel.width
        row_height = max(row_height, panel.height)
    return {"type": "dashboard", "id": object_id, "attributes": {
        "title": title, "description": description, "hits": 0, "panelsJSON": dumps(layout),
        "optionsJSON": dumps({"useMargins": True, "hidePanelTitles": False}),
        "timeRestore": True, "timeFrom": time_from, "timeTo": time_to,
        "refreshInterval": {"pause": True, "value": 0}, "version": 1,
        "kibanaSavedObjectMeta": {"searchSourceJSON": dumps({
            "query": {"query": "", "language": "kuery"}, "filter": []})}},
        "references": references, "migrationVersion": {"dashboard": MIGRATION["dashboard"]}}
