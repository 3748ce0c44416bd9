"""Include globs read the files Ruby's ``Dir.glob`` (so Fluentd) reads: ``**/`` at every
depth, hidden files never, on disk and in ConfigMaps alike."""

from __future__ import annotations

from pathlib import Path

from shipper.migrate import migrate
from shipper.migrate.files import MemoryFiles, SourceText, glob_regex
from tests.unit.migrate.helpers import data

HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile"


def test_a_recursive_include_reads_every_level_and_skips_hidden_files():
    migration = migrate(str(HOSTILE / "glob-recursive" / "fluent.conf"))
    sources = data(migration)["sources"]
    paths = sorted(p for s in sources.values() for p in s.get("include", []))
    assert paths == ["/var/log/sub_a.log", "/var/log/sub_deeper_b.log", "/var/log/top.log"]
    assert all(s["type"] == "tail" for s in sources.values())  # not .hidden.conf's forward
    assert [o["match"] for o in data(migration)["outputs"].values()] == ["**"]


def test_configmap_paths_glob_like_the_disk():
    files = MemoryFiles({p: SourceText("", p) for p in [
        "/etc/f/conf.d/a.conf", "/etc/f/conf.d/s/b.conf", "/etc/f/conf.d/s/t/c.conf",
        "/etc/f/conf.d/.h.conf", "/etc/f/conf.d/.s/d.conf", "/etc/f/conf.d/x.input"]})
    assert files.glob("/etc/f/conf.d/**/*.conf") == [
        "/etc/f/conf.d/a.conf", "/etc/f/conf.d/s/b.conf", "/etc/f/conf.d/s/t/c.conf"]
    assert files.glob("/etc/f/conf.d/*.conf") == ["/etc/f/conf.d/a.conf"]
    assert files.glob("/etc/f/conf.d/*") == ["/etc/f/conf.d/a.conf", "/etc/f/conf.d/x.input"]


def test_glob_parts_do_not_cross_slashes():
    assert glob_regex("/a/[!b]?.conf").match("/a/cd.conf")
    assert not glob_regex("/a/[!b]?.conf").match("/a/bd.conf")
    assert not glob_regex("/a/*.conf").match("/a/s/x.conf")
    assert not glob_regex("/a/?.conf").match("/a/..conf")


def test_a_configmap_entry_of_any_name_is_read_when_an_include_names_it():
    migration = migrate(str(HOSTILE / "configmap-glob.yaml"))
    sources = data(migration)["sources"]
    listens = sorted(s["listen"] for s in sources.values() if s["type"] == "forward")
    assert listens == ["0.0.0.0:24224"]  # 02-forward.input read, .hidden.conf skipped
    assert any(s["type"] == "tail" for s in sources.values())


def test_a_file_included_twice_is_a_warning():
    migration = migrate(str(HOSTILE / "include-twice" / "fluent.conf"))
    warned = [f for f in migration.findings.warnings if "a second time" in f.message]
    assert [f.where for f in warned] == [f"{HOSTILE / 'include-twice' / 'fluent.conf'}:2"]
    assert migration.exit_code == 1


def test_an_include_with_more_brace_alternatives_than_are_expanded_still_matches():
    migration = migrate(str(HOSTILE / "brace-many" / "fluent.conf"))
    listens = [s["listen"] for s in data(migration)["sources"].values()]
    assert listens == ["0.0.0.0:24231"]  # d/aaxxxx.conf; d/aa.conf is not an alternative
    assert not any("matches no file" in f.message for f in migration.findings.warnings)


def test_glob_braces_nest_and_stay_within_a_part():
    assert glob_regex("/d/{a,{b,c}}x.conf").match("/d/cx.conf")
    assert not glob_regex("/d/{a,b}.conf").match("/d/ab.conf")
