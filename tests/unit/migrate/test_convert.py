"""Labels, <system> and routing: flattened to shipper's tag-only routing, and said so."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.migrate import migrate
from shipper.migrate.routing import overlap
from tests.unit.migrate.helpers import convert, data, messages, validate


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("**", "app.**", True),
    ("fluent.**", "kubernetes.**", False),
    ("kubernetes.**", "kubernetes.var.log.containers.*.log", True),
    ("a.*", "a.b.c", False),
    ("app.{web,api}", "app.api", True),
    ("app.{web,api}", "app.db", False),
    ("x.** y.**", "y.z", True),
    ("kubelet", "kubelet.**", True),
])
def test_pattern_overlap(first, second, expected):
    assert overlap(first, second) is expected


def test_labels_are_flattened_and_error_and_fluent_log_labels_explained(tmp_path):
    migration = convert(tmp_path, """\
        <system>
          log_level warn
          workers 2
          root_dir /var/lib/fluentd
        </system>
        <source>
          @type forward
          @label @APP
        </source>
        <label @APP>
          <match **>
            @type relabel
            @label @OUT
          </match>
        </label>
        <label @OUT>
          <match **>
            @type stdout
          </match>
        </label>
        <label @ERROR>
          <match **>
            @type file
            path /var/log/errors
          </match>
        </label>
        <label @FLUENT_LOG>
          <match **>
            @type stdout
          </match>
        </label>
        <worker 0>
          <match other.**>
            @type stdout
          </match>
        </worker>
        """)
    config = data(migration)
    assert config["log_level"] == "warning"
    assert list(config["outputs"]) == ["stdout", "stdout_2"]
    assert config["workers"] == 2
    assert messages(migration) == [
        "fluent.conf:21: <label @ERROR>: not converted; records a server rejects go to the "
        "dead-letter store (state_dir/dead-letter, with the reason)",
        "fluent.conf:32: <worker 0>: shipper runs one process; its contents are converted for it",
        "fluent.conf:33: <match other.**> @type stdout in the top level: in Fluentd only "
        "records of sources routed there reach it; shipper routes by tag only, so records of "
        "forward (@label @APP) now also reach it"]
    notes = " ".join(messages(migration, "note"))
    assert "@label @APP: shipper routes by tag only" in notes
    assert "<label @OUT>: converted in place" in notes
    assert "<label @FLUENT_LOG>: Fluentd's own logs" in notes
    assert "root_dir: not needed" in notes
    validate(migration)


def test_a_config_without_sources_or_outputs_says_what_is_missing(tmp_path):
    migration = convert(tmp_path, "<source>\n  @type dummy\n</source>\n")
    warned = messages(migration)
    assert "fluent.conf:1: no source could be converted; shipper needs at least one (a tail " \
           "source of /var/log/containers/*.log)" in warned
    assert "fluent.conf:1: no output could be converted; shipper needs at least one" in warned
    assert migration.exit_code == 1


def test_two_sources_on_one_address_are_a_warning(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type forward
        </source>
        <source>
          @type forward
          bind 127.0.0.1
          port 24224
        </source>
        <match **>
          @type stdout
        </match>
        """)
    assert messages(migration) == [
        "fluent.conf:4: source forward_2 listens on 127.0.0.1:24224, which source forward "
        "already takes; the second could not start (address already in use)"]


def test_a_label_routed_source_reaching_other_outputs_is_a_warning():
    conf = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "label-routing.conf"
    migration = migrate(str(conf))
    warned = [w.message for w in migration.findings.warnings]
    assert any(m.startswith("<match **> @type forward in <label @FWD>") and
               "containers (no @label) now also reach it" in m for m in warned)
    assert any(m.startswith("<match kubernetes.**> @type elasticsearch in the top level") and
               "forward (@label @FWD) now also reach it" in m for m in warned)
    assert migration.exit_code == 1


def test_a_relabel_chain_carries_its_sources_to_the_next_label(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type tail
          path /var/log/containers/*.log
          tag kubernetes.*
          @label @K8S
        </source>
        <label @K8S>
          <match **>
            @type relabel
            @label @OUT
          </match>
        </label>
        <label @OUT>
          <match **>
            @type stdout
          </match>
        </label>
        """)
    assert not any("now also reach it" in m for m in messages(migration))


def test_an_output_no_source_reaches_says_nothing_would_be_shipped():
    conf = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "rewrite-tag-only-output.conf"
    warned = [w.message for w in migrate(str(conf)).findings.warnings]
    assert "output elasticsearch (match 'ns.**') matches the tags of no source " \
           "(kubernetes.**); it receives nothing in shipper" in warned
    assert "no output matches the tags of any source: as converted, nothing would be " \
           "shipped" in warned
