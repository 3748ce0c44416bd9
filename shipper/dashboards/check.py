"""``shipper dashboards check``: does every panel show data, from fields the index maps?

For each dashboard panel (and each saved search on no dashboard) this runs the panel's own
query and aggregation over the time range against Elasticsearch and reads the index mapping.
A panel fails when a field it uses is not mapped (or mapped with a type its aggregation cannot
use: a ``range`` over a keyword), when it matches no document, or when its aggregation returns
no non-empty bucket. Saved searches that are on no dashboard are reported but never fail: the
Mixer search is rightly empty on a mesh without Mixer.

Fields under a ``flattened`` / ``flat_object`` map (``kubernetes.labels.app``) exist whenever
the map does: the server indexes every key of it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shipper.dashboards.http import HttpClient
from shipper.dashboards.panels import FieldUse, PanelQuery, resolve
from shipper.errors import DashboardsError

NUMERIC = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float",
                     "scaled_float", "unsigned_long"})
MAPS = frozenset({"flattened", "flat_object"})
NOT_AGGREGATABLE = frozenset({"text", "object", "nested", "match_only_text"})
TARGET_BUCKETS = 60
_INTERVALS = (("1s", 1), ("5s", 5), ("10s", 10), ("30s", 30), ("1m", 60), ("5m", 300),
              ("10m", 600), ("30m", 1800), ("1h", 3600), ("3h", 10_800), ("12h", 43_200),
              ("1d", 86_400), ("7d", 604_800), ("30d", 2_592_000))
_NOW = re.compile(r"now(?:-(\d+)([smhdwMy]))?\Z")
_UNIT_SECS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "M": 2_592_000,
              "y": 31_536_000}


def mapped_fields(mapping_response: dict[str, Any]) -> dict[str, set[str]]:
    """Field path -> types over every index of a ``GET <index>/_mapping`` answer."""
    out: dict[str, set[str]] = {}

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            if not isinstance(spec, dict):
                continue
            path = prefix + name
            out.setdefault(path, set()).add(str(spec.get("type", "object")))
            if isinstance(spec.get("properties"), dict):
                walk(spec["properties"], path + ".")
            for sub, sub_spec in (spec.get("fields") or {}).items():
                if isinstance(sub_spec, dict):
                    out.setdefault(f"{path}.{sub}", set()).add(str(sub_spec.get("type", "")))

    for index in mapping_response.values():
        mappings = (index or {}).get("mappings") or {}
        if "properties" not in mappings and len(mappings) == 1:  # a 6.x type level
            mappings = next(iter(mappings.values())) or {}
        walk(mappings.get("properties") or {}, "")
    return out


def field_problem(use: FieldUse, mapped: dict[str, set[str]]) -> str | None:
    """Why the mapping cannot serve ``use``, or None."""
    types = mapped.get(use.path)
    if types is None:
        head = use.path
        while "." in head:
            head = head.rsplit(".", 1)[0]
            if mapped.get(head, set()) & MAPS:
                if use.need in ("numeric", "date"):
                    return f"{use.path} is a key of the map {head}, {use.use} needs a {use.need}"
                return None
        return f"{use.path} is not in the mapping"
    if use.need == "numeric" and not types & NUMERIC:
        return f"{use.path} is {'/'.join(sorted(types))}, {use.use} needs a number"
    if use.need == "date" and not types & {"date", "date_nanos"}:
        return f"{use.path} is {'/'.join(sorted(types))}, {use.use} needs a date"
    if use.need == "aggregatable" and types <= NOT_AGGREGATABLE:
        return f"{use.path} is {'/'.join(sorted(types))}, {use.use} needs a keyword"
    return None


def parse_time(value: str, now: datetime) -> datetime | None:
    """An ISO-8601 instant or ``now[-<n><unit>]``; None for other date math."""
    m = _NOW.match(value)
    if m is not None:
        if m.group(1) is None:
            return now
        return now - timedelta(seconds=int(m.group(1)) * _UNIT_SECS[m.group(2)])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def auto_interval(time_from: str, time_to: str, now: datetime | None = None) -> str:
    """Kibana's ``interval: auto`` in spirit: a round interval giving at most ~60 buckets."""
    now = now or datetime.now(UTC)
    start, end = parse_time(time_from, now), parse_time(time_to, now)
    if start is None or end is None or end <= start:
        return "1h"
    span = (end - start).total_seconds()
    for name, secs in _INTERVALS:
        if span / secs <= TARGET_BUCKETS:
            return name
    return _INTERVALS[-1][0]


@dataclass
class PanelResult:
    panel: PanelQuery
    hits: int = 0
    buckets: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def fails(self) -> bool:
        """Fails the check: a dashboard panel with a problem."""
        return self.panel.required and not self.ok


def _search_body(panel: PanelQuery, time_from: str, time_to: str) -> dict[str, Any]:
    clauses = [panel.query]
    if panel.time_field:
        clauses.append({"range": {panel.time_field: {
            "gte": time_from, "lte": time_to, "format": "strict_date_optional_time"}}})
    body: dict[str, Any] = {"size": 1 if panel.sort else 0, "track_total_hits": True,
                            "query": {"bool": {"filter": clauses}}}
    if panel.aggs:
        body["aggs"] = panel.aggs
    if panel.sort:
        body["sort"] = panel.sort
        body["_source"] = False
    return body


def _hits(answer: dict[str, Any]) -> int:
    total = (answer.get("hits") or {}).get("total", 0)
    return int(total.get("value", 0) if isinstance(total, dict) else total)


def _non_empty_buckets(answer: dict[str, Any], name: str) -> int:
    buckets = ((answer.get("aggregations") or {}).get(name) or {}).get("buckets", [])
    if isinstance(buckets, dict):
        buckets = list(buckets.values())
    return sum(1 for b in buckets if isinstance(b, dict) and b.get("doc_count", 0) > 0)


class Checker:
    """Runs panels against one Elasticsearch, fetching each index pattern's mapping once."""

    def __init__(self, client: HttpClient, index: str | None = None) -> None:
        self.client = client
        self.index = index
        self._mappings: dict[str, dict[str, set[str]]] = {}

    def mapping(self, index: str) -> dict[str, set[str]]:
        if index not in self._mappings:
            resp = self.client.json("GET", f"/{_quote(index)}/_mapping")
            if resp.status == 404:
                self._mappings[index] = {}
            elif resp.status != 200:
                raise DashboardsError(f"GET {index}/_mapping: HTTP {resp.status}: "
                                      f"{resp.body[:300]!r}")
            else:
                self._mappings[index] = mapped_fields(resp.json() or {})
        return self._mappings[index]

    def run(self, panel: PanelQuery, time_from: str, time_to: str) -> PanelResult:
        result = PanelResult(panel)
        if panel.error:
            result.problems.append(panel.error)
            return result
        index = self.index or panel.index_title
        if not index:
            result.problems.append("no index pattern")
            return result
        mapped = self.mapping(index)
        if not mapped:
            result.problems.append(f"no index matches {index}")
            return result
        for use in panel.fields:
            problem = field_problem(use, mapped)
            if problem and problem not in result.problems:
                result.problems.append(problem)
        resp = self.client.json("POST", f"/{_quote(index)}/_search",
                                _search_body(panel, time_from, time_to))
        if resp.status != 200:
            result.problems.append(f"search failed: HTTP {resp.status}: "
                                   f"{resp.body[:300].decode(errors='replace')}")
            return result
        answer = resp.json() or {}
        result.hits = _hits(answer)
        if panel.top_agg:
            result.buckets = _non_empty_buckets(answer, panel.top_agg)
        if result.hits == 0:
            result.problems.append("no data")
        elif result.buckets == 0:
            result.problems.append("no non-empty bucket")
        return result


def _quote(index: str) -> str:
    return urllib.parse.quote(index, safe="*,-_.")


def check(client: HttpClient, objects: list[dict[str, Any]], time_from: str, time_to: str,
          index: str | None = None) -> list[PanelResult]:
    """Every panel of ``objects`` run against ``client``'s Elasticsearch."""
    interval = auto_interval(time_from, time_to)
    checker = Checker(client, index)
    return [checker.run(panel, time_from, time_to) for panel in resolve(objects, interval)]


def format_table(results: Iterable[PanelResult], color: bool = False) -> str:
    """A fixed-width table: dashboard, panel, kind, hits, buckets, result."""
    rows = [("DASHBOARD", "PANEL", "KIND", "HITS", "BUCKETS", "RESULT")]
    marks = [""]
    for r in results:
        verdict = "ok" if r.ok else "; ".join(r.problems)
        if not r.ok and not r.panel.required:
            verdict = f"(not on a dashboard) {verdict}"
        rows.append((r.panel.dashboard or "-", r.panel.title, r.panel.kind, f"{r.hits:,}",
                     "-" if r.buckets is None else f"{r.buckets:,}", verdict))
        marks.append("ok" if r.ok else ("fail" if r.fails else "warn"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    colors = {"ok": "\033[32m", "fail": "\033[31m", "warn": "\033[33m"}
    lines = []
    for row, mark in zip(rows, marks, strict=True):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4])]
        last = row[5]
        if color and mark:
            last = f"{colors[mark]}{last}\033[0m"
        lines.append("  ".join([*cells, last]))
    return "\n".join(lines) + "\n"


@dataclass
class OutsideRange:
    """Documents of one index pattern whose time lies outside the checked range."""

    index: str
    time_field: str
    total: int
    outside: int
    oldest: str | None = None
    newest: str | None = None


def _instant(value: str, now: datetime) -> str:
    """``value`` as an ISO instant when it can be resolved (``now-24h`` -> a date)."""
    parsed = parse_time(value, now)
    if parsed is None:
        return value
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def outside_range(client: HttpClient, index: str, time_field: str, time_from: str,
                  time_to: str) -> OutsideRange | None:
    """How many documents of ``index`` lie outside the range, and the span they cover.

    An operator whose panels show "no data" usually has data, only elsewhere in time (a
    replayed backlog, a clock, a demo run yesterday): saying so turns a dead end into a
    ``--from`` away. None when the index cannot be searched.
    """
    outside = {"bool": {"must_not": [{"range": {time_field: {
        "gte": time_from, "lte": time_to, "format": "strict_date_optional_time"}}}]}}
    total_resp = client.json("POST", f"/{_quote(index)}/_count", None)
    ends: list[dict[str, Any]] = []
    # Sorting, not min/max aggregations: every server that runs the panels sorts by date.
    for order in ("asc", "desc"):
        resp = client.json("POST", f"/{_quote(index)}/_search", {
            "size": 1, "track_total_hits": True, "query": outside, "_source": False,
            "sort": [{time_field: {"order": order}}]})
        if resp.status != 200 or total_resp.status != 200:
            return None
        ends.append(resp.json() or {})

    def bound(answer: dict[str, Any]) -> str | None:
        hits = (answer.get("hits") or {}).get("hits") or []
        value = (hits[0].get("sort") or [None])[0] if hits else None
        if not isinstance(value, int | float):
            return None
        return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return OutsideRange(index, time_field, int((total_resp.json() or {}).get("count", 0)),
                        _hits(ends[0]), bound(ends[0]), bound(ends[1]))


def report_time_range(client: HttpClient, results: Iterable[PanelResult], time_from: str,
                      time_to: str, out: Any, index: str | None = None) -> None:
    """Say which time range was checked and how many documents lie outside it."""
    now = datetime.now(UTC)
    shown = f"{time_from} .. {time_to}"
    resolved = f"{_instant(time_from, now)} .. {_instant(time_to, now)}"
    out.write(f"\nTime range: {shown}" + (f" ({resolved})" if resolved != shown else "")
              + "\n")
    seen: set[tuple[str, str]] = set()
    for r in results:
        target = index or r.panel.index_title
        if not target or not r.panel.time_field or (target, r.panel.time_field) in seen:
            continue
        seen.add((target, r.panel.time_field))
        found = outside_range(client, target, r.panel.time_field, time_from, time_to)
        if found is None:
            continue
        line = (f"  {target}: {found.total - found.outside:,} of {found.total:,} documents in "
                f"this range, {found.outside:,} outside it")
        if found.outside:
            line += (f" ({found.time_field} from {found.oldest or '?'} to "
                     f"{found.newest or '?'}); widen it with --from/--to")
        out.write(line + "\n")


def check_and_report(client: HttpClient, objects: list[dict[str, Any]], time_from: str,
                     time_to: str, out: Any, index: str | None = None,
                     color: bool = False) -> bool:
    """Run the check, write the table and a verdict to ``out``; True when no panel fails."""
    results = check(client, objects, time_from, time_to, index)
    out.write(format_table(results, color))
    report_time_range(client, results, time_from, time_to, out, index)
    panels = [r for r in results if r.panel.required]
    failed = [r for r in panels if r.fails]
    if failed:
        out.write(f"\n{len(failed)} of {len(panels)} dashboard panels show no data or use "
                  "fields the mapping lacks.\n")
    else:
        out.write(f"\nAll {len(panels)} dashboard panels show data ({time_from} .. {time_to}).\n")
    return not failed
