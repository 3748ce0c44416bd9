"""The saved objects: valid NDJSON, stable and unique ids, resolvable references, importable
shapes for Kibana 7.10+/8.x and OpenSearch Dashboards, and fields the template maps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from outputs.elasticsearch.health import ServerInfo, mappings
from shipper.dashboards import ndjson, objects
from shipper.dashboards.build import INDEX_REF, check_field, dashboard, terms
from shipper.dashboards.check import field_problem, mapped_fields
from shipper.dashboards.panels import references_resolve, resolve
from shipper.errors import DashboardsError

REPO = Path(__file__).resolve().parents[3]
# Kibana 8's dashboard schema forbids unknown attributes (spec §3.3).
DASHBOARD_ATTRIBUTES = {"title", "description", "kibanaSavedObjectMeta", "timeRestore",
                        "timeFrom", "timeTo", "refreshInterval", "controlGroupInput",
                        "panelsJSON", "optionsJSON", "hits", "version"}
JSON_STRINGS = {"visState", "uiStateJSON", "panelsJSON", "optionsJSON", "fields"}


def families() -> dict[str, list[dict[str, Any]]]:
    return {name: ndjson.parse(text, name) for name, text in ndjson.generated_files().items()}


@pytest.mark.parametrize("name", sorted(objects.FAMILIES))
def test_the_committed_files_are_exactly_what_the_generator_writes(name: str) -> None:
    committed = (REPO / "dashboards" / name).read_text(encoding="utf-8")
    assert committed == ndjson.generated_files()[name], (
        "dashboards/ is stale: run `shipper dashboards generate`")


def test_every_line_is_a_json_object_and_nested_json_strings_parse() -> None:
    for name, text in ndjson.generated_files().items():
        lines = text.splitlines()
        assert lines and text.endswith("\n")
        for line in lines:
            obj = json.loads(line)
            assert set(obj) <= {"type", "id", "attributes", "references", "migrationVersion"}
            for key, value in obj["attributes"].items():
                if key in JSON_STRINGS:
                    json.loads(value)
            meta = obj["attributes"].get("kibanaSavedObjectMeta")
            if meta:
                json.loads(meta["searchSourceJSON"])
        assert "exportedCount" not in text, name


@pytest.mark.parametrize(("name", "objs"), sorted(families().items()))
def test_ids_are_unique_and_every_reference_resolves_within_each_file(
        name: str, objs: list[dict[str, Any]]) -> None:
    keys = [(o["type"], o["id"]) for o in objs]
    assert len(keys) == len(set(keys))
    assert all(o["id"].startswith("shipper-") for o in objs)
    assert references_resolve(objs) == []
    assert objs[0]["type"] == "index-pattern"  # each file imports on its own


def test_ids_are_stable() -> None:
    ids = {o["id"] for o in objects.all_objects()}
    assert {"shipper-index-pattern", "shipper-search-envoy-logs",
            "shipper-search-istio-control-plane", "shipper-search-mixer-telemetry",
            "shipper-dashboard-istio-logs", "shipper-dashboard-envoy-access-logs"} <= ids


def test_reference_names_follow_kibanas_conventions() -> None:
    for obj in objects.all_objects():
        names = {r["name"] for r in obj["references"]}
        attrs = obj["attributes"]
        if obj["type"] == "dashboard":
            panels = json.loads(attrs["panelsJSON"])
            assert names == {f"panel_{i}" for i in range(len(panels))}
            assert [p["panelRefName"] for p in panels] == [f"panel_{i}" for i in range(len(panels))]
            assert all("id" not in p and "type" not in p for p in panels)
            assert [p["panelIndex"] for p in panels] == [p["gridData"]["i"] for p in panels]
            assert len({p["panelIndex"] for p in panels}) == len(panels)
            assert all(p["gridData"]["x"] + p["gridData"]["w"] <= 48 for p in panels)
        elif obj["type"] in ("search", "visualization"):
            source = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            assert "index" not in source
            if attrs.get("savedSearchRefName"):
                assert names == {"search_0"} and "indexRefName" not in source
            else:
                assert source["indexRefName"] == INDEX_REF and names == {INDEX_REF}


def test_objects_carry_only_the_kibana_7_10_stamps() -> None:
    stamps = {"index-pattern": "7.6.0", "search": "7.9.3", "visualization": "7.10.0",
              "dashboard": "7.9.3"}
    for obj in objects.all_objects():
        assert obj["migrationVersion"] == {obj["type"]: stamps[obj["type"]]}
        assert "coreMigrationVersion" not in obj and "typeMigrationVersion" not in obj
        if obj["type"] == "dashboard":
            assert set(obj["attributes"]) <= DASHBOARD_ATTRIBUTES
        assert obj["type"] != "lens"


def test_the_index_pattern_is_logstash_with_timestamp_and_fields_read_from_the_mapping() -> None:
    ip = objects.all_objects()[0]
    assert ip["attributes"] == {"title": "logstash-*", "timeFieldName": "@timestamp",
                                "fields": "[]"}
    assert objects.all_objects("k8s-*")[0]["attributes"]["title"] == "k8s-*"


def test_the_dashboards_have_the_panels_the_issue_asks_for() -> None:
    panels = resolve(objects.all_objects())
    by_board: dict[str, list[tuple[str, str]]] = {}
    for p in panels:
        by_board.setdefault(p.dashboard, []).append((p.title, p.kind))
    assert by_board["Istio logs"][:3] == [
        ("istio-system log lines", "metric"), ("Istio logs by component", "pie"),
        ("Istio logs over time by component", "line")]
    titles = [t for t, _ in by_board["Envoy access logs"]]
    assert titles == ["Requests", "5xx share", "Requests over time by response class",
                      "Top paths", "Top upstream clusters", "Request duration (ms)",
                      "Response flags", "Slowest Envoy requests"]
    assert {t for t, _ in by_board[""]} == {"Istio control plane",
                                             "Mixer telemetry (Istio before 1.5)"}
    assert all(p.error is None for p in panels)


@pytest.mark.parametrize("info", [
    ServerInfo("elasticsearch", (8, 15, 3), "8.15.3"),
    ServerInfo("elasticsearch", (7, 10, 2), "7.10.2"),
    ServerInfo("opensearch", (2, 16, 0), "2.16.0"),
], ids=str)
def test_every_field_a_panel_uses_is_mapped_by_the_template_with_a_fitting_type(
        info: ServerInfo) -> None:
    mapped = mapped_fields({"logstash-x": {"mappings": mappings(info)}})
    uses = [u for p in resolve(objects.all_objects()) for u in p.fields]
    assert {u.path for u in uses} >= {"envoy.response_code", "envoy.duration_ms",
                                      "envoy.path", "kubernetes.container_name",
                                      "kubernetes.labels.istio-mixer-type", "@timestamp"}
    problems = {u.path: field_problem(u, mapped) for u in uses}
    assert {k: v for k, v in problems.items() if v} == {}


def test_a_panel_cannot_use_a_field_the_template_does_not_map() -> None:
    with pytest.raises(DashboardsError, match=r"not in shipper\.fields"):
        terms("2", "envoy.no_such_field", "segment")
    with pytest.raises(DashboardsError, match="needs a numeric"):
        check_field("envoy.path", "numeric")
    with pytest.raises(DashboardsError, match="needs a aggregatable"):
        check_field("log", "aggregatable")
    assert check_field("kubernetes.labels.app", "aggregatable") == "kubernetes.labels.app"


def test_dashboard_layout_wraps_at_48_columns() -> None:
    vis = {"type": "visualization", "id": "v"}
    from shipper.dashboards.build import Panel

    board = dashboard("d", "D", [Panel(vis, 30, 5), Panel(vis, 30, 8), Panel(vis, 18, 4)])
    grid = [p["gridData"] for p in json.loads(board["attributes"]["panelsJSON"])]
    assert [(g["x"], g["y"]) for g in grid] == [(0, 0), (0, 5), (30, 5)]
    with pytest.raises(DashboardsError):
        dashboard("d", "D", [Panel(vis, 49, 5)])


def test_generate_writes_the_files_and_read_rejects_other_extensions(tmp_path: Path) -> None:
    written = ndjson.write(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(objects.FAMILIES)
    assert len(ndjson.read(written)) == len(objects.all_objects())
    other = tmp_path / "x.json"
    other.write_text("{}")
    with pytest.raises(DashboardsError, match=r"\*\.ndjson"):
        ndjson.read([other])


def test_parse_skips_blank_and_summary_lines_and_rejects_garbage() -> None:
    text = '{"type":"search","id":"a","attributes":{}}\n\n{"exportedCount":1,"missingRefCount":0}\n'
    assert [o["id"] for o in ndjson.parse(text)] == ["a"]
    with pytest.raises(DashboardsError, match="x:1"):
        ndjson.parse("nope", "x")
    with pytest.raises(DashboardsError, match="type and an id"):
        ndjson.parse('{"id": "a"}')
