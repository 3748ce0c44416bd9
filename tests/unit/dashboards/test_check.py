"""The pure parts of ``dashboards check``: mappings, field fitness, intervals, the table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shipper.dashboards.check import (
    PanelResult,
    _non_empty_buckets,
    _search_body,
    auto_interval,
    field_problem,
    format_table,
    mapped_fields,
    parse_time,
)
from shipper.dashboards.panels import FieldUse, PanelQuery

MAPPING: dict[str, Any] = {
    "logstash-2026.11.22": {"mappings": {"properties": {
        "@timestamp": {"type": "date"},
        "log": {"type": "text"},
        "kubernetes": {"properties": {
            "container_name": {"type": "keyword"},
            "labels": {"type": "flattened"}}},
        "envoy": {"properties": {
            "response_code": {"type": "integer"},
            "path": {"type": "keyword", "fields": {"text": {"type": "text"}}}}}}}},
    "logstash-2026.11.21": {"mappings": {"properties": {
        "envoy": {"properties": {"duration_ms": {"type": "long"}}}}}},
    "old-6x": {"mappings": {"_doc": {"properties": {"legacy": {"type": "keyword"}}}}},
}
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_mapped_fields_merge_indices_objects_multi_fields_and_6x_types() -> None:
    mapped = mapped_fields(MAPPING)
    assert mapped["envoy.path"] == {"keyword"}
    assert mapped["envoy.path.text"] == {"text"}
    assert mapped["envoy.duration_ms"] == {"long"}
    assert mapped["envoy"] == {"object"}
    assert mapped["legacy"] == {"keyword"}


@pytest.mark.parametrize(("path", "need", "problem"), [
    ("envoy.response_code", "numeric", None),
    ("envoy.duration_ms", "numeric", None),
    ("envoy.path", "aggregatable", None),
    ("envoy.path.text", "any", None),
    ("kubernetes.labels.istio-mixer-type", "aggregatable", None),
    ("@timestamp", "date", None),
    ("envoy.path", "numeric", "envoy.path is keyword, range needs a number"),
    ("log", "aggregatable", "log is text, range needs a keyword"),
    ("envoy.direction", "any", "envoy.direction is not in the mapping"),
    ("kubernetes.labels.port", "numeric",
     "kubernetes.labels.port is a key of the map kubernetes.labels, range needs a numeric"),
    ("log", "date", "log is text, range needs a date"),
])
def test_field_problems_name_the_field_and_the_need(path: str, need: str,
                                                    problem: str | None) -> None:
    assert field_problem(FieldUse(path, need, "range"), mapped_fields(MAPPING)) == problem  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "expected"), [
    ("now", NOW),
    ("now-24h", datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
    ("now-15m", datetime(2026, 11, 22, 11, 45, tzinfo=UTC)),
    ("2026-11-22T00:00:00Z", datetime(2026, 11, 22, tzinfo=UTC)),
    ("2026-11-22T00:00:00", datetime(2026, 11, 22, tzinfo=UTC)),
    ("now-1d/d", None),
    ("yesterday", None),
])
def test_time_bounds_parse_iso_and_simple_date_math(value: str,
                                                    expected: datetime | None) -> None:
    assert parse_time(value, NOW) == expected


@pytest.mark.parametrize(("start", "end", "interval"), [
    ("now-15m", "now", "30s"),
    ("now-24h", "now", "30m"),
    ("now-7d", "now", "3h"),
    ("2026-11-21T23:00:00Z", "2026-11-23T00:00:00Z", "30m"),
    ("now-1d/d", "now", "1h"),
    ("now", "now-1h", "1h"),
])
def test_auto_interval_keeps_buckets_few_and_round(start: str, end: str, interval: str) -> None:
    assert auto_interval(start, end, NOW) == interval


def test_the_search_adds_the_time_range_and_counts_hits_exactly() -> None:
    panel = PanelQuery("D", "P", "search", "p", query={"exists": {"field": "x"}},
                       sort=[{"x": {"order": "desc"}}], time_field="@timestamp")
    body = _search_body(panel, "now-1h", "now")
    assert body["track_total_hits"] is True and body["size"] == 1
    assert body["query"] == {"bool": {"filter": [
        {"exists": {"field": "x"}},
        {"range": {"@timestamp": {"gte": "now-1h", "lte": "now",
                                  "format": "strict_date_optional_time"}}}]}}
    assert body["sort"] == [{"x": {"order": "desc"}}]


def test_buckets_count_only_non_empty_ones_for_lists_and_keyed_filters() -> None:
    listed = {"aggregations": {"a": {"buckets": [{"doc_count": 3}, {"doc_count": 0}]}}}
    keyed = {"aggregations": {"a": {"buckets": {"5xx": {"doc_count": 0},
                                                "other": {"doc_count": 9}}}}}
    assert _non_empty_buckets(listed, "a") == 1
    assert _non_empty_buckets(keyed, "a") == 1
    assert _non_empty_buckets({}, "a") == 0


def test_the_table_shows_every_panel_and_marks_only_dashboard_panels_as_failures() -> None:
    ok = PanelResult(PanelQuery("Envoy access logs", "Top paths", "table", "t"), 1234, 20)
    bad = PanelResult(PanelQuery("Istio logs", "Pie", "pie", "p"), 0, 0, ["no data"])
    optional = PanelResult(PanelQuery("", "Mixer", "search", "m"), 0, None, ["no data"])
    assert not ok.fails and bad.fails and not optional.fails
    table = format_table([ok, bad, optional])
    lines = table.splitlines()
    assert lines[0].split() == ["DASHBOARD", "PANEL", "KIND", "HITS", "BUCKETS", "RESULT"]
    assert lines[1].split()[-3:] == ["1,234", "20", "ok"]
    assert lines[2].endswith("no data")
    assert lines[3].endswith("(not on a dashboard) no data")
    colored = format_table([ok, bad, optional], color=True)
    assert "\033[32mok\033[0m" in colored and "\033[31mno data" in colored
    assert "\033[33m(not on a dashboard)" in colored


def test_check_help_states_the_default_time_range(capsys) -> None:
    """An operator whose panels are empty must see which range was searched by default."""
    import pytest

    from shipper.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["dashboards", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: now-24h" in text and "default: now)" in text
