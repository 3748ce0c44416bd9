"""The first-match check finds the same earlier ``<match>`` as comparing every pair, in
about linear time, so a config with thousands of sections converts in seconds."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from shipper.migrate import migrate
from shipper.migrate.model import Section, Value
from shipper.migrate.routing import Scope, overlap
from tests.unit.migrate.helpers import data, write

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile"
PATTERNS = ["app.web", "app.*", "app.**", "**", "kubernetes.**", "kubernetes.var.*.log",
            "{app,db}.x", "db.**", "db", "a.b.c", "*.b.*", "fluent.**", "x.y z.**",
            "kubernetes.var.log.containers.fluentd**", "app.web.errors", "*", "audit",
            "**.**.z0", "a.**.**.b", "**.{p,q}1.**.**", "{a,b,c}.{x,y}.** {d,e}.*1", "x.y.a"]


def _section(i: int) -> Section:
    return Section("match", Value.of(str(i)), "fluent.conf", i)


@pytest.mark.parametrize("order", range(20))
def test_the_index_answers_like_the_pairwise_comparison(order):
    patterns = random.Random(order).sample(PATTERNS, len(PATTERNS))
    scope = Scope()
    for i, pattern in enumerate(patterns):
        expected = next((s for p, s in scope.matches if overlap(p, pattern)), None)
        assert scope.first_overlap(pattern) is expected, (pattern, scope.matches)
        scope.add(pattern, _section(i))


def _big_config(lines: int) -> str:
    out = ["<source>\n  @type tail\n  path /var/log/containers/*.log\n  tag kubernetes.*\n"
           "</source>\n<source>\n  @type forward\n</source>\n"]  # forward: any tag arrives
    count, i = 8, 0
    while count < lines:
        if i % 3 == 0:
            out.append(f"<filter app{i}.*.logs>\n  @type kubernetes_metadata\n</filter>\n")
            count += 3
        out.append(f"<match app{i}.{{a,b}}.**>\n  @type elasticsearch\n  host es{i}\n"
                   f"  port 9200\n  logstash_format true\n  <buffer>\n    flush_interval 5s\n"
                   "  </buffer>\n</match>\n")
        count, i = count + 9, i + 1
    return "".join(out) + "<match **>\n  @type stdout\n</match>\n"


@pytest.mark.slow
def test_a_10000_line_config_converts_in_under_5_seconds(tmp_path):
    path = write(tmp_path, _big_config(10_000))
    started = time.monotonic()
    migration = migrate(str(path))
    elapsed = time.monotonic() - started
    assert len(migration.document.outputs) > 1000
    assert [f.message.split(" comes after ")[0] for f in migration.findings.warnings] == [
        "<match **> @type stdout"]
    assert elapsed < 5.0, elapsed


def test_a_pattern_with_more_alternatives_than_are_expanded_is_still_found():
    many = "{" + ",".join(f"a{i}" for i in range(300)) + "}.x"
    scope = Scope()
    scope.add(many, _section(1))
    assert scope.first_overlap("a299.x") is scope.matches[0][1]
    assert scope.first_overlap("b.x") is None


def test_runs_of_globstars_convert_in_well_under_a_second():
    started = time.monotonic()
    migration = migrate(str(FIXTURES / "globstar-runs.conf"))
    assert time.monotonic() - started < 1.0
    assert [o["match"].rsplit(".", 1)[1] for o in data(migration)["outputs"].values()] == [
        "z0", "z1"]
    assert migration.findings.warnings == []  # z0 and z1 never overlap


def _overlapping_config(sections: int) -> str:
    """Filters and matches whose patterns all start with ``**``: every pair shares parts."""
    out = ["<source>\n  @type forward\n</source>\n"]
    for i in range(sections):
        out.append(f"<filter **.s{i}.**>\n  @type record_transformer\n  <record>\n"
                   f"    k{i} v\n  </record>\n</filter>\n<match **.{{p,q}}{i}.**.**>\n"
                   "  @type stdout\n</match>\n")
    return "".join(out)


@pytest.mark.slow
def test_a_10000_line_config_of_overlapping_globstar_patterns_converts_in_under_5_seconds(
        tmp_path):
    path = write(tmp_path, _overlapping_config(1200))
    started = time.monotonic()
    migration = migrate(str(path))
    elapsed = time.monotonic() - started
    assert len(migration.document.outputs) == 1200
    assert elapsed < 5.0, elapsed


def test_overlapping_globstar_patterns_find_the_same_earlier_match_as_pairwise():
    patterns = [f"**.{{p,q}}{i}.**.**" for i in range(30)] + [f"**.s{i}.**" for i in range(30)]
    patterns += ["**.p7", "q3.**", "*.*", "**"]
    scope = Scope()
    for i, pattern in enumerate(patterns):
        expected = next((s for p, s in scope.matches if overlap(p, pattern)), None)
        assert scope.first_overlap(pattern) is expected, pattern
        scope.add(pattern, _section(i))
