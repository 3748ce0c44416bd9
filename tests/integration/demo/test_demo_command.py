"""``shipper demo`` as a user runs it (a real process) against a real Elasticsearch API: its
lines are dated just before now, so ``dashboards check`` with its default range finds them,
and a second run on the same cluster counts only its own documents."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipper.demo.esquery import SearchClient
from shipper.demo.run import LEAD_TIME, demo_base_time

LINES = 1500


def run_demo(es_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shipper.cli", "demo", "--es", es_url, "--lines", str(LINES),
         "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=300, check=False)


def test_the_base_time_is_a_fixed_lead_before_now_in_whole_seconds() -> None:
    now = datetime(2026, 12, 7, 21, 30, 15, 987654, tzinfo=UTC)
    assert demo_base_time(now) == datetime(2026, 12, 7, 21, 15, 15, tzinfo=UTC)
    assert LEAD_TIME >= timedelta(minutes=14)  # ten minutes of lines end before now


@pytest.mark.slow
def test_two_demo_runs_each_count_their_own_documents_dated_before_now(
        es_url: str, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    first = run_demo(es_url, tmp_path / "one")
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_demo(es_url, tmp_path / "two")
    assert second.returncode == 0, second.stdout + second.stderr
    documents = 0
    for done in (first, second):
        # The Java app's pod is annotated: each stack trace is one document, so a run has
        # fewer documents than generated records, exactly as many as the summary expects.
        total = re.search(rf"Total documents of this run ([\d,]+) for {LINES:,} generated "
                          r"records \(stack traces joined: ([\d,]+) documents expected\): "
                          "every line indexed exactly once", done.stdout)
        assert total, done.stdout
        assert total.group(1) == total.group(2)
        documents += int(total.group(1).replace(",", ""))
        traces = re.search(r"^stack traces: ([\d,]+) events, each one document", done.stdout,
                           re.M)
        assert traces and int(traces.group(1)) > 0, done.stdout
        assert int(total.group(1).replace(",", "")) < LINES
        assert "MISMATCH" not in done.stdout
    assert "other documents in logstash-*" in second.stdout

    es = SearchClient(es_url)
    es.refresh("logstash-*")
    newest = es.request("POST", "/logstash-*/_search", {
        "size": 1, "_source": ["@timestamp"], "sort": [{"@timestamp": "desc"}]})
    oldest = es.request("POST", "/logstash-*/_search", {
        "size": 1, "_source": ["@timestamp"], "sort": [{"@timestamp": "asc"}],
        "query": {"range": {"@timestamp": {"gte": "now-1h"}}}})

    def stamp(answer: dict[str, object]) -> datetime:
        hit = answer["hits"]["hits"][0]  # type: ignore[index]
        return datetime.fromisoformat(hit["_source"]["@timestamp"].replace("Z", "+00:00"))

    assert stamp(newest) <= datetime.now(UTC)
    assert stamp(oldest) >= started - LEAD_TIME - timedelta(seconds=1)

    # The README's next step: the default range (now-24h .. now) finds the demo's data.
    check = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "dashboards", "check", "--es", es_url],
        capture_output=True, text=True, timeout=120, check=False)
    assert re.search(r"^Time range: now-24h \.\. now \(", check.stdout, re.M), check.stdout
    assert "Istio logs" in check.stdout
    istio_row = next(x for x in check.stdout.splitlines() if "istio-system log lines" in x)
    assert istio_row.rstrip().endswith("ok"), istio_row
    found = re.search(r"logstash-\*: ([\d,]+) of [\d,]+ documents in this range, "
                      r"[\d,]+ outside it", check.stdout)
    assert found, check.stdout
    assert int(found.group(1).replace(",", "")) >= documents  # both runs are in the range
