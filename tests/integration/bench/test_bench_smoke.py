"""The benchmark still runs: every row on a tiny workload, one run, no timing asserted.

The real figures take minutes of CPU (``make bench``); this only proves the harness works end
to end — agent processes, the Kubernetes API, the blackhole, the forward client and the
steady writer — and that every row delivered every record, enriched.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.run import ROWS, main

LINES = 2_000
FILES = 4
STEADY_SECS = 3.0
STEADY_RATE = 400.0


def test_every_row_delivers_every_record_enriched_unless_it_says_otherwise(tmp_path: Path) -> None:
    page, results = tmp_path / "PERFORMANCE.md", tmp_path / "results.json"
    code = main(["--workdir", str(tmp_path / "work"), "--lines", str(LINES),
                 "--files", str(FILES), "--runs", "1", "--steady-secs", str(STEADY_SECS),
                 "--steady-rate", str(STEADY_RATE), "--rss-interval", "0.5",
                 "--timeout", "60", "--stage-lines", "2000",
                 "--write", str(page), "--json", str(results)])
    assert code == 0

    data = json.loads(results.read_text())
    assert data["workload_records"] == LINES
    rows = data["rows"]
    # every throughput row once per implementation (compiled, python); steady once
    assert len(rows) == 2 * (len(ROWS) - 1) + 1
    assert sum(label.endswith("[python]") for label in rows) == len(ROWS) - 1
    for label, runs in rows.items():
        (run,) = runs
        joined = "preset: java" in label  # stack traces become one record each
        expected = (run["records"] if label.startswith("steady") or joined else LINES)
        assert run["records"] == expected, label
        if joined:
            assert LINES // 2 < run["records"] < LINES, label
        assert run["delivered"] == expected, label
        if "no enrichment" in label:
            assert run["enriched"] == 0 and run["envoy_parsed"] == 0, label
        else:
            assert run["enriched"] == expected and run["not_found"] == 0, label
            assert run["envoy_parsed"] > 0, label
        assert run["cpu_secs"] > 0 and run["max_rss_mib"] > 0, label
    steady = next(runs[0] for label, runs in rows.items() if label.startswith("steady"))
    # the writer wrote at the asked rate for the asked time (whole ticks, so nearly exact)
    assert abs(steady["records"] - STEADY_RATE * STEADY_SECS) <= STEADY_RATE * 0.1
    assert len(steady["rss_samples"]) >= 4 and steady["rss_windows"] is not None

    text = page.read_text()
    assert text.startswith("# Performance")
    for label in rows:
        assert f"| {label} | " in text
    assert "cores" in text and "Python" in text and "Reproduce:" in text
    assert "## Where the time goes" in text and "| decode |" in text
    assert "µs per line, compiled | µs per line, python" in text
    assert "| rest of the agent in the bulk blackhole row" in text
    assert str(tmp_path) not in text
