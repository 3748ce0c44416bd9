"""The YAML writer: every value reads back as written, comments where they help."""

from __future__ import annotations

import pytest
import yaml

from shipper.config.yamltree import Scalar, parse_yaml
from shipper.migrate.document import Commented, Document
from shipper.migrate.emit import render, scalar
from shipper.migrate.findings import Findings

TRICKY = ["yes", "no", "on", "off", "true", "null", "~", "", "010", "1_000", "12:30", "1e3",
          ".inf", "2MiB", "5s", "**", "kubernetes.**", "*_kube-system_*", "${HOST}",
          "${A:-http}://${B}:9200", "^\\w\\d{4}", "it's", "a: b", "a #b", "- x", "[x]", "{x}",
          "@timestamp", "%Y.%m.%d", "line\nbreak", "tab\there", "é", "'quoted'", '"dq"',
          "/var/log/containers/*.log", "-", "?", "!tag", "&anchor", "*alias", "|", ">"]


@pytest.mark.parametrize("text", TRICKY)
def test_strings_read_back_as_the_same_string_under_yaml_11_and_12(text):
    line = f"key: {scalar(text)}"
    assert yaml.safe_load(line) == {"key": text}
    tree, problems = parse_yaml(line, "x.yaml")
    assert not problems and tree is not None
    entry = tree.get("key")  # type: ignore[union-attr]
    assert isinstance(entry.value, Scalar) and entry.value.value == text


@pytest.mark.parametrize(("value", "written"), [
    (True, "true"), (False, "false"), (None, "null"), (8, "8"), (0.5, "0.5"),
    ("plain", "plain"), ("2MiB", "2MiB"), ("yes", '"yes"'), ("^\\d+", "'^\\d+'"),
])
def test_simple_values_are_written_plainly(value, written):
    assert scalar(value) == written


def test_document_layout_comments_and_header():
    document = Document()
    document.top["state_dir"] = Commented("/var/lib/shipper", "positions")
    document.add("sources", "in_tail container-logs", {
        "type": "tail", "include": ["/var/log/containers/*.log"],
        "multiline": [{"files": ["*"], "start_pattern": "^\\d"}]},
        "fluent.conf:3 <source> @type tail")
    document.add("outputs", "es", {"type": "elasticsearch", "match": "**",
                                   "buffer": {"total_limit_bytes": Commented("16MiB", "8 x 2M")}},
                 "fluent.conf:9 <match **> @type elasticsearch")
    document.add("outputs", "es", {"type": "stdout"}, "fluent.conf:20 <match x> @type stdout")
    findings = Findings()
    findings.warn("fluent.conf:12", "something is not converted")
    findings.note("fluent.conf:5", "explained")
    findings.secret("ES_PASSWORD", "fluent.conf:11", "elasticsearch password")
    text = render(document, findings, {"ES_PASSWORD": "fluent.conf:11", "HOST": "f:1"}, "f.conf")
    assert text.splitlines()[:17] == [
        "# shipper configuration converted from f.conf by `shipper migrate-fluentd`.",
        "# Review the notes below, then: shipper check -c <this file>",
        "#",
        "# Secrets that were written in the Fluentd file now come from the environment;",
        "# set these variables (from a Kubernetes Secret):",
        "#   ES_PASSWORD: elasticsearch password (fluent.conf:11)",
        "#",
        "# Environment variables the configuration reads (as Fluentd did):",
        "#   HOST (first used at f:1)",
        "#",
        "# Warnings (1):",
        "#   fluent.conf:12: something is not converted",
        "#",
        "# Notes (1):",
        "#   fluent.conf:5: explained",
        "",
        "state_dir: /var/lib/shipper  # positions",
    ]
    assert text.split("\nsources:\n", 1)[1] == """\
  # from fluent.conf:3 <source> @type tail
  in_tail_container_logs:
    type: tail
    include: [/var/log/containers/*.log]
    multiline:
      - files: ["*"]
        start_pattern: '^\\d'

outputs:
  # from fluent.conf:9 <match **> @type elasticsearch
  es:
    type: elasticsearch
    match: "**"
    buffer:
      total_limit_bytes: 16MiB  # 8 x 2M

  # from fluent.conf:20 <match x> @type stdout
  es_2:
    type: stdout
"""
    assert yaml.safe_load(text)["outputs"]["es"]["buffer"] == {"total_limit_bytes": "16MiB"}
    assert document.plain()["outputs"]["es"]["buffer"] == {"total_limit_bytes": "16MiB"}
