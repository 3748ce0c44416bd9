"""What each dashboard panel asks Elasticsearch, read back from the saved objects themselves.

``shipper dashboards check`` and the tests work from the NDJSON objects (not from the Python
that built them), so they prove what Kibana will load: references are resolved the way Kibana
resolves them (``panel_<i>``, ``search_0``, ``kibanaSavedObjectMeta.searchSourceJSON.index``),
KQL is translated by ``kql``, and ``visState`` aggregations become the request Kibana's
aggregation-based visualizations send: bucket aggregations nested in the order written,
metric aggregations innermost, ``interval: auto`` replaced by the interval the caller chose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shipper.dashboards import kql
from shipper.dashboards.build import INDEX_REF, Need, SavedObject
from shipper.errors import DashboardsError

_METRICS = {"avg", "max", "min", "sum", "cardinality", "percentiles"}
_BUCKETS = {"terms", "date_histogram", "filters", "range", "histogram"}


@dataclass(frozen=True, slots=True)
class FieldUse:
    """A field one panel needs, and what for."""

    path: str
    need: Need
    use: str  # query, terms, avg, column, sort...


@dataclass
class PanelQuery:
    """One panel (or standalone saved search) as an Elasticsearch search."""

    dashboard: str  # "" for a saved search that is on no dashboard
    title: str
    kind: str  # metric, line, pie, table, histogram, area, search...
    object_id: str
    query: dict[str, Any] = field(default_factory=lambda: {"match_all": {}})
    aggs: dict[str, Any] | None = None
    top_agg: str | None = None  # name of the outermost bucket aggregation
    sort: list[dict[str, Any]] | None = None
    fields: list[FieldUse] = field(default_factory=list)
    index_title: str = ""
    time_field: str | None = None
    error: str | None = None

    @property
    def required(self) -> bool:
        """Panels on a dashboard must show data; a standalone search may legitimately not."""
        return bool(self.dashboard)


def _json(attrs: dict[str, Any], *path: str) -> Any:
    value: Any = attrs
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, str):
        raise DashboardsError(f"missing {'.'.join(path)}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise DashboardsError(f"{'.'.join(path)} is not JSON: {exc}") from exc


class _Index:
    """Saved objects by (type, id), and reference resolution."""

    def __init__(self, objects: list[SavedObject]) -> None:
        self.by_key = {(o["type"], o["id"]): o for o in objects}

    def ref(self, obj: SavedObject, name: str) -> SavedObject:
        for ref in obj.get("references", []):
            if ref.get("name") == name:
                target = self.by_key.get((ref.get("type"), ref.get("id")))
                if target is None:
                    raise DashboardsError(f"reference {name} -> {ref.get('type')} "
                                          f"{ref.get('id')} is not in the file")
                return target
        raise DashboardsError(f"{obj['type']} {obj['id']} has no reference named {name}")


def _source(index: _Index, obj: SavedObject, target: PanelQuery) -> list[dict[str, Any]]:
    """Apply ``obj``'s search source (query, index pattern or saved search) to ``target``."""
    attrs = obj.get("attributes", {})
    source = _json(attrs, "kibanaSavedObjectMeta", "searchSourceJSON")
    if source.get("filter"):
        raise DashboardsError("pinned filters are not supported by the check; use the query")
    query = source.get("query") or {}
    if query.get("language", "kuery") != "kuery":
        raise DashboardsError(f"query language {query.get('language')!r} is not KQL")
    text = str(query.get("query") or "")
    clauses = [kql.to_dsl(text)] if text.strip() else []
    target.fields += [FieldUse(f, "any", "query") for f in kql.fields(text)]
    if attrs.get("savedSearchRefName"):
        clauses += _source(index, index.ref(obj, attrs["savedSearchRefName"]), target)
    elif source.get("indexRefName"):
        pattern = index.ref(obj, source["indexRefName"])
        target.index_title = pattern["attributes"].get("title", "")
        target.time_field = pattern["attributes"].get("timeFieldName") or None
    return clauses


def _agg_body(agg: dict[str, Any], interval: str, target: PanelQuery) -> dict[str, Any]:
    kind, params = agg.get("type"), agg.get("params") or {}
    name = str(params.get("field") or "")
    if not name and kind != "filters":
        raise DashboardsError(f"aggregation {agg.get('id')} ({kind}) has no field")
    if kind == "terms":
        target.fields.append(FieldUse(name, "aggregatable", "terms"))
        order = {"_key": "asc"} if params.get("orderBy") == "_key" else {"_count": "desc"}
        return {"terms": {"field": name, "size": int(params.get("size", 10)), "order": order}}
    if kind == "date_histogram":
        target.fields.append(FieldUse(name, "date", "date_histogram"))
        return {"date_histogram": {"field": name, "fixed_interval": interval,
                                   "min_doc_count": 1}}
    if kind == "filters":
        named = {}
        for i, item in enumerate(params.get("filters", [])):
            text = str((item.get("input") or {}).get("query") or "")
            target.fields += [FieldUse(f, "any", "filters") for f in kql.fields(text)]
            named[item.get("label") or text or f"filter {i}"] = kql.to_dsl(text)
        return {"filters": {"filters": named}}
    if kind in ("range", "histogram"):
        target.fields.append(FieldUse(name, "numeric", kind))
        if kind == "histogram":
            return {"histogram": {"field": name, "interval": params.get("interval", 100)}}
        return {"range": {"field": name, "ranges": params.get("ranges", [])}}
    if kind in _METRICS:
        target.fields.append(FieldUse(name, "numeric", kind))
        return {kind: {"field": name}}
    raise DashboardsError(f"aggregation {kind!r} is not supported by the check")


def _visualization(index: _Index, obj: SavedObject, target: PanelQuery, interval: str) -> None:
    vis = _json(obj.get("attributes", {}), "visState")
    target.kind = str(vis.get("type", "visualization"))
    clauses = _source(index, obj, target)
    if clauses:
        target.query = clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}
    buckets, metrics = [], {}
    for agg in vis.get("aggs", []):
        if not agg.get("enabled", True) or agg.get("type") == "count":
            continue
        body = _agg_body(agg, interval, target)
        if agg["type"] in _BUCKETS:
            buckets.append((f"a{agg['id']}", body))
        else:
            metrics[f"a{agg['id']}"] = body
    inner: dict[str, Any] | None = metrics or None
    for name, body in reversed(buckets):
        if inner:
            body = {**body, "aggs": inner}
        inner = {name: body}
    target.aggs = inner
    target.top_agg = buckets[0][0] if buckets else None


def _search(index: _Index, obj: SavedObject, target: PanelQuery) -> None:
    attrs = obj.get("attributes", {})
    target.kind = "search"
    clauses = _source(index, obj, target)
    if clauses:
        target.query = clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}
    target.fields += [FieldUse(c, "any", "column") for c in attrs.get("columns", [])
                      if not c.startswith("_")]
    sort = []
    for item in attrs.get("sort", []):
        if isinstance(item, list) and len(item) == 2:
            target.fields.append(FieldUse(item[0], "aggregatable", "sort"))
            sort.append({item[0]: {"order": item[1]}})
    target.sort = sort or None


def _panel(index: _Index, obj: SavedObject, dashboard: str, interval: str) -> PanelQuery:
    title = str(obj.get("attributes", {}).get("title", obj["id"]))
    target = PanelQuery(dashboard, title, obj["type"], obj["id"])
    try:
        if obj["type"] == "visualization":
            _visualization(index, obj, target, interval)
        elif obj["type"] == "search":
            _search(index, obj, target)
        else:
            raise DashboardsError(f"panels of type {obj['type']} are not supported by the check")
    except (DashboardsError, KeyError, TypeError, ValueError) as exc:
        target.error = str(exc)
    return target


def resolve(objects: list[SavedObject], interval: str = "1h") -> list[PanelQuery]:
    """Every dashboard panel, then every saved search on no dashboard, as searches."""
    index = _Index(objects)
    out: list[PanelQuery] = []
    placed: set[str] = set()
    for obj in objects:
        if obj["type"] != "dashboard":
            continue
        title = str(obj.get("attributes", {}).get("title", obj["id"]))
        try:
            layout = _json(obj.get("attributes", {}), "panelsJSON")
        except DashboardsError as exc:
            out.append(PanelQuery(title, "(panels)", "dashboard", obj["id"], error=str(exc)))
            continue
        for panel in layout:
            try:
                target = index.ref(obj, panel.get("panelRefName", ""))
            except DashboardsError as exc:
                out.append(PanelQuery(title, str(panel.get("panelRefName")), "?", obj["id"],
                                      error=str(exc)))
                continue
            placed.add(target["id"])
            out.append(_panel(index, target, title, interval))
    for obj in objects:
        if obj["type"] == "search" and obj["id"] not in placed:
            out.append(_panel(index, obj, "", interval))
    return out


def references_resolve(objects: list[SavedObject]) -> list[str]:
    """Problems with references: each must name an object of the same file (empty: fine)."""
    keys = {(o["type"], o["id"]) for o in objects}
    problems = []
    for obj in objects:
        for ref in obj.get("references", []):
            if (ref.get("type"), ref.get("id")) not in keys:
                problems.append(f"{obj['type']} {obj['id']}: {ref.get('name')} -> "
                                f"{ref.get('type')} {ref.get('id')} is missing")
    return problems


__all__ = ["INDEX_REF", "FieldUse", "PanelQuery", "references_resolve", "resolve"]
