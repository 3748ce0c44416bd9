"""A ConfigMap manifest is read as the files it mounts, with the manifest's line numbers."""

from __future__ import annotations

import pytest

from shipper.errors import FluentdSyntaxError
from shipper.migrate import read_fluentd
from shipper.migrate.findings import Findings
from tests.unit.migrate.helpers import write

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: fluentd-config
data:
  output.conf: |-
    <match **>
      @type stdout
    </match>
  input.conf: |
    # containers
    <source>
      @type tail
    </source>
  README.md: not a conf entry
"""

DEPLOYMENT = """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fluentd
spec:
  template:
    spec:
      containers:
        - name: fluentd
          image: fluent/fluentd:v1.16
          volumeMounts:
            {mounts}
      volumes:
        - name: conf
          configMap:
            name: {configmap}
"""


def test_without_a_root_file_every_conf_entry_is_read_in_name_order(tmp_path):
    path = write(tmp_path, MANIFEST, "configmap.yaml")
    findings = Findings()
    root = read_fluentd(str(path), findings)
    source, match = root.children
    assert (source.name, source.file, source.line) == ("source", str(path), 12)
    assert (match.name, match.line) == ("match", 7)
    assert match.params["@type"].line == 8
    assert "every .conf entry is read in name order" in findings.notes[0].message


def test_fluent_conf_is_the_root_and_includes_the_other_entries(tmp_path):
    text = MANIFEST.replace("data:\n", "data:\n  fluent.conf: |\n    @include input.conf\n")
    path = write(tmp_path, text, "configmap.yaml")
    findings = Findings()
    root = read_fluentd(str(path), findings)
    assert [c.name for c in root.children] == ["source"]  # output.conf is not included
    assert findings.items == []


def test_absolute_includes_resolve_where_the_workload_mounts_the_entries(tmp_path):
    text = MANIFEST.replace("data:\n", "data:\n  fluent.conf: |\n"
                                       "    @include /etc/fluent/config.d/*.conf\n")
    text += DEPLOYMENT.format(mounts="- {name: conf, mountPath: /etc/fluent/config.d}",
                              configmap="fluentd-config")
    root = read_fluentd(str(write(tmp_path, text, "configmap.yaml")), Findings())
    assert [c.name for c in root.children] == ["source", "match"]


def test_an_include_is_never_matched_by_file_name_alone(tmp_path):
    """Without a workload the ConfigMap is in /fluentd/etc: /etc/fluent/config.d is not it."""
    text = MANIFEST.replace("data:\n", "data:\n  fluent.conf: |\n"
                                       "    @include /etc/fluent/config.d/*.conf\n")
    findings = Findings()
    root = read_fluentd(str(write(tmp_path, text, "configmap.yaml")), findings)
    assert root.children == []
    assert [f.message.split(" (")[0] for f in findings.warnings] == [
        "@include /etc/fluent/config.d/*.conf matches no file"]


def test_a_manifest_without_a_configmap_is_an_error(tmp_path):
    path = write(tmp_path, "kind: Deployment\nmetadata: {name: x}\n", "deploy.yaml")
    with pytest.raises(FluentdSyntaxError, match=r"no ConfigMap with \.conf entries"):
        read_fluentd(str(path), Findings())


def test_a_syntax_error_in_an_entry_points_at_the_manifest_line(tmp_path):
    text = MANIFEST.replace("      @type stdout\n    </match>", "      @type stdout\n    </mat>")
    with pytest.raises(FluentdSyntaxError) as caught:
        read_fluentd(str(write(tmp_path, text, "configmap.yaml")), Findings())
    assert caught.value.line == 9
    assert "unmatched end tag </mat>" in caught.value.message
