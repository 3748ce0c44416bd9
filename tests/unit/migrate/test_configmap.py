"""A ConfigMap manifest is read as the files it mounts, with the manifest's line numbers."""

from __future__ import annotations

import re

import pytest
import yaml

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


def _configmap(name: str, entries: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": entries}


SOURCE = "<source>\n  @type forward\n</source>\n"
MATCH = "<match **>\n  @type stdout\n</match>\n"


def test_a_kind_list_and_a_json_manifest_are_read_like_documents(tmp_path):
    import json
    listed = {"apiVersion": "v1", "kind": "List", "items": [
        _configmap("fluentd-config", {"in.conf": SOURCE, "out.conf": MATCH}),
        _configmap("fluentd-main", {"fluent.conf": "@include config.d/*.conf\n"})]}
    for name in ("list.json", "list.yaml"):
        path = write(tmp_path, json.dumps(listed, indent=2), name)
        findings = Findings()
        root = read_fluentd(str(path), findings)
        assert [c.name for c in root.children] == ["source", "match"], name
        assert "ConfigMap fluentd-config is read as the files of /fluentd/etc/config.d" in \
            findings.notes[0].message


def test_without_a_root_an_entry_another_entry_includes_is_read_only_there(tmp_path):
    text = yaml.safe_dump(_configmap("c", {"a.conf": "@include z.conf\n" + MATCH,
                                           "z.conf": SOURCE}))
    root = read_fluentd(str(write(tmp_path, text, "cm.yaml")), Findings())
    assert [c.name for c in root.children] == ["source", "match"]


def test_a_subpath_mount_and_the_fluentd_command_choose_the_root(tmp_path):
    documents = [
        _configmap("c", {"agent.conf": "@include /etc/extra/out.conf\n" + SOURCE,
                         "out.conf": MATCH, "fluent.conf": "<unused>\n</unused>\n"}),
        {"kind": "DaemonSet", "metadata": {"name": "ds"}, "spec": {"template": {"spec": {
            "containers": [{"name": "agent", "image": "fluentd",
                            "command": ["fluentd", "-c", "/etc/agent/agent.conf"],
                            "volumeMounts": [
                                {"name": "v", "mountPath": "/etc/agent"},
                                {"name": "v", "mountPath": "/etc/extra/out.conf",
                                 "subPath": "out.conf"}]}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}]}}}}]
    path = write(tmp_path, yaml.safe_dump_all(documents), "ds.yaml")
    root = read_fluentd(str(path), Findings())
    assert [c.name for c in root.children] == ["match", "source"]


@pytest.mark.parametrize(("documents", "message"), [
    ([_configmap("a", {"in.conf": SOURCE}), _configmap("b", {"out.conf": MATCH})],
     "no ConfigMap holds a root file"),
    ([_configmap("a", {"fluent.conf": SOURCE}), _configmap("b", {"fluent.conf": MATCH})],
     "several ConfigMaps hold a root file"),
    ([_configmap("main", {"fluent.conf": "@include x/*.conf\n@include y/*.conf\n"}),
      _configmap("b", {"in.conf": SOURCE}), _configmap("c", {"out.conf": MATCH})],
     "where ConfigMap(s) b (line 12), c (line 19) are mounted is unknown"),
    ([_configmap("main", {"fluent.conf": MATCH}), _configmap("b", {"in.conf": SOURCE})],
     "nothing here includes them"),
])
def test_an_ambiguous_layout_is_refused_with_what_is_unknown(tmp_path, documents, message):
    path = write(tmp_path, yaml.safe_dump_all(documents), "cms.yaml")
    with pytest.raises(FluentdSyntaxError, match=re.escape(message)):
        read_fluentd(str(path), Findings())


def test_two_workloads_are_two_configurations_and_are_refused(tmp_path):
    def workload(kind: str, configmap: str) -> dict:
        return {"kind": kind, "metadata": {"name": configmap}, "spec": {"template": {"spec": {
            "containers": [{"name": "fluentd", "volumeMounts": [
                {"name": "v", "mountPath": "/opt/bitnami/fluentd/conf"}]}],
            "volumes": [{"name": "v", "configMap": {"name": configmap}}]}}}}

    documents = [_configmap("fwd", {"fluentd.conf": SOURCE}),
                 _configmap("agg", {"fluentd.conf": MATCH}),
                 workload("DaemonSet", "fwd"), workload("StatefulSet", "agg")]
    path = write(tmp_path, yaml.safe_dump_all(documents), "bitnami.yaml")
    with pytest.raises(FluentdSyntaxError, match=r"several workloads mount Fluentd ConfigMaps.*"
                                                 r"choose one with --workload NAME"):
        read_fluentd(str(path), Findings())
    # --workload picks one; the other's ConfigMap is not read and not ambiguous.
    assert [c.name for c in read_fluentd(str(path), Findings(), "agg").children] == ["match"]
    assert [c.name for c in read_fluentd(str(path), Findings(), "fwd").children] == ["source"]
    with pytest.raises(FluentdSyntaxError, match=r"no workload named x .*those that do: fwd, agg"):
        read_fluentd(str(path), Findings(), "x")


def test_an_include_of_a_file_in_no_configmap_exits_2_saying_so(tmp_path):
    text = yaml.safe_dump(_configmap("c", {"fluent.conf": "@include systemd.conf\n" + MATCH}))
    with pytest.raises(FluentdSyntaxError) as caught:
        read_fluentd(str(write(tmp_path, text, "cm.yaml")), Findings())
    assert "@include systemd.conf: /fluentd/etc/systemd.conf is in no ConfigMap of this " \
           "file" in caught.value.message


def test_a_manifest_nested_too_deeply_is_refused_in_one_line(capsys):
    from pathlib import Path

    from shipper.cli import main

    deep = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "deep-nesting.yaml"
    with pytest.raises(FluentdSyntaxError, match="nested too deeply"):
        read_fluentd(str(deep), Findings())
    assert main(["migrate-fluentd", str(deep)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_configmap_the_workload_does_not_mount_is_not_read():
    from pathlib import Path

    from shipper.migrate import migrate

    manifest = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "configmap-not-mounted.yaml"
    migration = migrate(str(manifest))
    assert migration.document.sources == {}
    notes = [f.message for f in migration.findings.ordered() if f.severity == "note"]
    assert "ConfigMap fluentd-extra is not read: DaemonSet fluentd does not mount it, so " \
           "Fluentd does not see it either" in notes


def test_a_configmap_entry_defined_twice_is_refused():
    from pathlib import Path

    manifest = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "configmap-duplicate-key.yaml"
    with pytest.raises(FluentdSyntaxError, match=r":9: the ConfigMap entry fluent.conf is "
                                                 r"defined twice \(first at line 5\)"):
        read_fluentd(str(manifest), Findings())
