"""<filter> sections: kubernetes_metadata, parser -> json_merge, grep -> tail exclude,
Logz.io's record_transformer, concat -> multiline; everything else reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.migrate import migrate
from tests.unit.migrate.helpers import convert, data, messages, one, validate

TAIL = """\
<source>
  @type tail
  path /var/log/containers/*.log
  tag kubernetes.*
  read_from_head true
</source>
"""
OUTPUT = "<match **>\n  @type stdout\n</match>\n"


def test_kubernetes_metadata_maps_key_by_key(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type kubernetes_metadata
          @id filter_kube_metadata
          kubernetes_url https://10.0.0.1:443/api
          ca_file /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
          bearer_token_file /var/run/secrets/kubernetes.io/serviceaccount/token
          verify_ssl false
          annotation_match ["^fluentd\\\\.", "sidecar.istio.io/(?<x>status)"]
          de_dot false
          skip_labels "#{ENV['SKIP_LABELS'] || 'false'}"
          skip_namespace_metadata true
          cache_size 1000
          watch true
        </filter>
        """ + OUTPUT)
    assert one(migration, "filters") == {
        "type": "kubernetes_metadata", "match": "kubernetes.**",
        "kubernetes_url": "https://10.0.0.1:443",
        "ca_file": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "bearer_token_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "verify_ssl": False, "de_dot": False, "skip_labels": "${SKIP_LABELS:-false}",
        "skip_namespace_metadata": True,
        "annotation_match": ["^fluentd\\.", "sidecar.istio.io/(?P<x>status)"]}
    assert messages(migration) == []
    validate(migration)


def test_the_in_cluster_api_address_is_the_default(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type kubernetes_metadata
          kubernetes_url "#{ENV['URL'] || 'https://' + ENV.fetch('KUBERNETES_SERVICE_HOST')}"
          ca_file "#{ENV['KUBERNETES_CA_FILE']}"
          watch false
        </filter>
        """ + OUTPUT)
    # ENV['URL'] still overrides the in-cluster default, as it did in Fluentd.
    assert one(migration, "filters") == {"type": "kubernetes_metadata", "match": "kubernetes.**",
                                         "kubernetes_url": "${URL:-}"}
    assert [m.split(" overrides")[0] for m in messages(migration)] == [
        "fluent.conf:9: kubernetes_url: ENV['URL']",
        "fluent.conf:11: watch false: shipper always watches pods (list+watch keeps its cache "
        "current with far fewer requests)"]
    assert validate(migration).filters["kubernetes_metadata"].kubernetes_url is None


def test_a_json_parser_filter_becomes_json_merge(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type parser
          key_name log
          reserve_data true
          remove_key_name_field true
          hash_value_field app
          <parse>
            @type json
          </parse>
        </filter>
        """ + OUTPUT)
    assert one(migration, "filters") == {"type": "json_merge", "match": "kubernetes.**",
                                         "key_name": "log", "merge_key": "app",
                                         "keep_log": False}
    assert messages(migration) == []
    validate(migration)


def test_other_parser_filters_are_not_converted(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type parser
          key_name log
          <parse>
            @type regexp
            expression /^(?<level>\\w+) (?<msg>.*)$/
          </parse>
        </filter>
        """ + OUTPUT)
    assert "filters" not in data(migration)
    assert messages(migration) == [
        "fluent.conf:7: <filter kubernetes.**> @type parser: only the json parser has an "
        "equivalent (json_merge); parser regexp is not converted"]


def test_grep_excluding_namespaces_or_containers_excludes_their_files(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <source>
          @type tail
          path /var/log/other/*.log
          tag other.*
        </source>
        <filter kubernetes.**>
          @type kubernetes_metadata
        </filter>
        <filter kubernetes.**>
          @type grep
          <exclude>
            key $.kubernetes.namespace_name
            pattern /^(kube-system|monitoring)$/
          </exclude>
          <exclude>
            key $['kubernetes']['container_name']
            pattern ^istio-proxy$
          </exclude>
          <exclude>
            key log
            pattern /health/
          </exclude>
          <regexp>
            key stream
            pattern /stderr/
          </regexp>
        </filter>
        """ + OUTPUT)
    sources = data(migration)["sources"]
    assert sources["containers"]["exclude"] == [
        "*_kube-system_*", "*_monitoring_*", "*_*_istio-proxy-" + "?" * 64 + ".log"]
    assert "exclude" not in sources["other"]  # its tags never reach the filter
    warned = messages(migration)
    assert "fluent.conf:25: grep <exclude> on log: shipper can only exclude namespaces or " \
           "containers by exact name (as tail exclude globs); not converted" in warned
    assert any(m.startswith("fluent.conf:29: grep <regexp>") for m in warned)
    validate(migration)


def test_logzio_record_transformer_is_done_by_the_output(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type record_transformer
          enable_ruby
          <record>
            type my-app
            message ${record["log"]}
          </record>
          remove_keys log
        </filter>
        <match **>
          @type logzio_buffered
          endpoint_url "#{ENV['LOGZIO_URL']}?token=#{ENV['LOGZIO_TOKEN']}"
        </match>
        """)
    assert one(migration, "outputs")["log_type"] == "my-app"
    assert messages(migration) == []


def test_other_record_rewriting_is_a_warning(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type record_transformer
          <record>
            hostname "#{Socket.gethostname}"
            cluster prod
          </record>
        </filter>
        """ + OUTPUT)
    assert messages(migration) == [
        "fluent.conf:7: <filter kubernetes.**> @type record_transformer: shipper has no record "
        "rewriting filter; the fields cluster, hostname are not set"]


def test_concat_becomes_a_multiline_rule_and_partial_joining_is_automatic(tmp_path):
    migration = convert(tmp_path, TAIL + """\
        <filter kubernetes.**>
          @type concat
          key log
          multiline_start_regexp /^\\d{4}-\\d{2}-\\d{2}/
          flush_interval 3
        </filter>
        <filter kubernetes.**>
          @type concat
          key log
          multiline_end_regexp /\\n$/
          separator ""
        </filter>
        """ + OUTPUT)
    assert one(migration, "sources")["multiline"] == [
        {"files": ["*"], "start_pattern": "^\\d{4}-\\d{2}-\\d{2}", "flush_timeout_secs": "3s"}]
    assert messages(migration) == []
    assert any("partial lines" in m for m in messages(migration, "note"))
    validate(migration)


def test_unknown_filters_are_warnings(tmp_path):
    migration = convert(tmp_path, TAIL + "<filter **>\n  @type geoip\n</filter>\n" + OUTPUT)
    assert messages(migration) == ["fluent.conf:7: <filter **> @type geoip: the filter plugin "
                                   "geoip has no equivalent in shipper; it is not converted"]


HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile"


@pytest.mark.parametrize(("name", "why"), [
    ("grep-exclude-before-metadata.conf", "no kubernetes_metadata filter runs before it"),
    ("grep-exclude-literal-key.conf", "without $. the key is one top-level field"),
    ("grep-exclude-narrow-tags.conf", "sees only some records of containers")])
def test_grep_exclude_that_fluentd_would_not_apply_to_whole_files_is_a_warning(name, why):
    migration = migrate(str(HOSTILE / name))
    assert "exclude" not in data(migration)["sources"]["containers"]
    assert [w.message for w in migration.findings.warnings if why in w.message] != []
    assert migration.exit_code == 1
