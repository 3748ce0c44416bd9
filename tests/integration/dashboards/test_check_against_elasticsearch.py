"""After the agent ships the demo node's logs, every dashboard panel finds data in a real
Elasticsearch API, with envoy.* fields typed by the template; and the check fails loudly
where the data or the mapping is missing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipper.app import Agent
from shipper.cli import main
from shipper.dashboards.objects import all_objects
from shipper.dashboards.panels import resolve
from shipper.demo.esquery import SearchClient
from shipper.demo.loggen import generate_node_logs
from tests.integration.agent_harness import config_text, load, run_until_settled, unique_prefix

ENVOY_FILTER = """\
filters:
  envoy:
    type: envoy_access_log
"""


def time_range(base_time: str) -> tuple[str, str]:
    start = datetime.fromisoformat(base_time.replace("Z", "+00:00"))
    return ((start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            (start + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))


def table_rows(out: str) -> dict[str, list[str]]:
    """Panel title -> the cells of its row in the check's table."""
    rows = {}
    for line in out.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6:
            rows[cells[1]] = cells
    return rows


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("node")
    return root, generate_node_logs(root, seed=5, lines=3000)


async def test_every_dashboard_panel_shows_the_shipped_demo_data(
        node: tuple[Path, Any], es_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    root, manifest = node
    prefix = unique_prefix()
    text = config_text(tmp_path / "state", root / "var" / "log" / "containers", es_url, prefix)
    agent = Agent(load(text + ENVOY_FILTER))
    await run_until_settled(agent, manifest.total_records)
    es = SearchClient(es_url)
    es.refresh(f"{prefix}-*")

    # The fields are typed by the template from the one field list.
    mapping = es.request("GET", f"/{prefix}-*/_mapping")
    envoy = next(iter(mapping.values()))["mappings"]["properties"]["envoy"]["properties"]
    assert envoy["response_code"]["type"] == "integer"
    assert envoy["duration_ms"]["type"] == "long"
    assert envoy["path"]["type"] == "keyword"
    assert envoy["path"]["fields"]["text"]["type"] == "text"
    hit = es.request("POST", f"/{prefix}-*/_search", {
        "size": 1, "query": {"match_phrase": {"envoy.response_flags": "UC"}}})["hits"]["hits"]
    assert hit, "the demo data has 503 UC responses"
    fields = hit[0]["_source"]["envoy"]
    assert fields["response_code"] == 503 and isinstance(fields["bytes_sent"], int)
    assert "-" not in fields.values()

    time_from, time_to = time_range(manifest.base_time)
    code = main(["dashboards", "check", "--es", es_url, "--index", f"{prefix}-*",
                 "--from", time_from, "--to", time_to])
    out = capsys.readouterr().out
    assert code == 0, out
    panels = [p for p in resolve(all_objects()) if p.required]
    rows = table_rows(out)
    for panel in panels:
        row = rows[panel.title]
        assert row[0] == panel.dashboard and row[-1] == "ok", row
        assert int(row[3].replace(",", "")) > 0
    assert f"All {len(panels)} dashboard panels show data" in out


async def test_the_check_fails_on_an_index_without_envoy_fields_or_data(
        es_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = unique_prefix() + "-bare"
    es = SearchClient(es_url)
    es.request("PUT", f"/{index}/_doc/1?refresh=true", {
        "@timestamp": "2026-11-22T00:05:00Z", "log": "hello",
        "kubernetes": {"namespace_name": "istio-system", "container_name": "discovery"}})
    es.refresh(index)
    code = main(["dashboards", "check", "--es", es_url, "--index", index,
                 "--from", "2026-11-21T23:00:00Z", "--to", "2026-11-23T00:00:00Z"])
    out = capsys.readouterr().out
    assert code == 1
    rows = table_rows(out)
    assert rows["istio-system log lines"][-1] == "ok"
    assert rows["istio-system log lines"][3] == "1"
    assert "envoy.response_code is not in the mapping" in rows["Requests"][-1]
    assert "no data" in rows["Requests"][-1]
    assert "dashboard panels show no data or use fields the mapping lacks" in out


async def test_the_check_names_its_time_range_and_counts_documents_outside_it(
        es_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Data from another day makes every panel empty; the check says where the data is."""
    index = unique_prefix() + "-old"
    es = SearchClient(es_url)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for n, stamp in enumerate(("2026-11-22T00:05:00Z", "2026-11-22T00:25:00Z", now)):
        es.request("PUT", f"/{index}/_doc/{n}", {
            "@timestamp": stamp, "log": "hello",
            "kubernetes": {"namespace_name": "istio-system", "container_name": "discovery"}})
    es.refresh(index)
    code = main(["dashboards", "check", "--es", es_url, "--index", index])
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^Time range: now-24h \.\. now \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \.\. "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$", out, re.M), out
    line = next(x for x in out.splitlines() if x.strip().startswith(f"{index}:"))
    assert "1 of 3 documents in this range, 2 outside it" in line, line
    assert "2026-11-22T00:05:00" in line and "2026-11-22T00:25:00" in line, line
    assert "--from" in line
