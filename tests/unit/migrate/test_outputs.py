"""<match> sections: elasticsearch, logzio, forward, stdout, copy; null and re-emitting
plugins reported; secrets moved out of the file."""

from __future__ import annotations

from pathlib import Path

from shipper.migrate import migrate
from tests.unit.migrate.helpers import convert, data, messages, one, validate

SOURCE = "<source>\n  @type forward\n</source>\n"


def test_elasticsearch_host_port_scheme_path_credentials_and_index(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          host es.logging.svc
          port 9243
          scheme https
          path /es/
          user elastic
          password changeme
          ssl_verify false
          ca_file /etc/es/ca.crt
          logstash_format true
          logstash_prefix k8s
          logstash_dateformat %Y%m%d
          id_key _hash
          write_operation create
          request_timeout 15s
          compression_level best_speed
          include_tag_key true
          type_name _doc
        </match>
        """)
    assert one(migration, "outputs") == {
        "type": "elasticsearch", "match": "**", "hosts": ["https://es.logging.svc:9243/es"],
        "user": "elastic", "password": "${ES_PASSWORD}", "logstash_format": True,
        "logstash_prefix": "k8s", "logstash_dateformat": "%Y%m%d", "ca_file": "/etc/es/ca.crt",
        "verify_certs": False, "gzip": True, "request_timeout_secs": "15s", "id_key": "_hash",
        "write_operation": "create"}
    assert [(s.env, s.where.rsplit("/", 1)[1]) for s in migration.findings.secrets] == [
        ("ES_PASSWORD", "fluent.conf:11")]
    assert "changeme" not in migration.text
    assert messages(migration) == []
    assert any(  # the forward source keeps the tag in the record
        "forward source(s) forward write the tag into tag (tag_key)" in n
        for n in messages(migration, "note"))
    assert validate(migration, {"ES_PASSWORD": "x"}).sources["forward"].tag_key == "tag"
    assert migration.exit_code == 1  # the password must now be provided
    assert validate(migration, {"ES_PASSWORD": "changeme"}).outputs["elasticsearch"] \
        .password == "changeme"


def test_include_tag_key_sets_tag_key_only_on_forward_sources_this_output_receives(tmp_path):
    tail = ("<source>\n  @type tail\n  path /var/log/containers/*.log\n  tag kube.*\n"
            "</source>\n")
    forward = "<source>\n  @type forward\n  add_tag_prefix app\n</source>\n"
    match = "<match {}>\n  @type elasticsearch\n  include_tag_key true\n</match>\n"
    elsewhere = validate(convert(tmp_path, tail + forward + match.format("kube.**")))
    assert elsewhere.sources["forward"].tag_key is None
    here = convert(tmp_path, tail + forward + match.format("app.**"))
    assert messages(here) == []
    assert validate(here).sources["forward"].tag_key == "tag"


def test_fluentds_default_index_is_written_out(tmp_path):
    migration = convert(tmp_path, SOURCE + "<match **>\n  @type elasticsearch\n</match>\n")
    assert one(migration, "outputs") == {
        "type": "elasticsearch", "match": "**", "hosts": ["http://localhost:9200"],
        "logstash_format": False, "index": "fluentd"}
    assert migration.exit_code == 0
    validate(migration)


def test_hosts_lists_lose_their_credentials_to_user_and_password(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          hosts https://elastic:pa55@es-0:9200,es-1:9200
          scheme https
          index_name app-logs
        </match>
        """)
    output = one(migration, "outputs")
    assert output["hosts"] == ["https://es-0:9200", "https://es-1:9200"]
    assert (output["user"], output["password"]) == ("elastic", "${ES_PASSWORD}")
    assert output["index"] == "app-logs"
    assert "pa55" not in migration.text
    validate(migration, {"ES_PASSWORD": "x"})


def test_template_file_keeps_the_operators_template(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          logstash_format true
          template_name logs
          template_file /etc/fluent/template.json
          enable_ilm true
          ilm_policy_id logs-30d
        </match>
        """)
    output = one(migration, "outputs")
    assert output["install_template"] is False and output["ilm_policy"] == "logs-30d"
    assert any("template_file: your own index template" in m for m in messages(migration))


def test_index_placeholders_are_warnings(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          index_name fluentd.${tag}.%Y%m%d
          target_index_key index
        </match>
        """)
    assert one(migration, "outputs")["index"] == "fluentd"
    warned = " ".join(messages(migration))
    assert "index_name: placeholders" in warned and "target_index_key" in warned


def test_logzio_endpoint_with_a_literal_token_uses_the_region_and_an_env_token(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type logzio_buffered
          endpoint_url https://listener-eu.logz.io:8071?token=aBcDeFgHiJkLmNoPqRsTuVwXyZ&type=java
          output_include_time true
          output_include_tags false
          bulk_limit 1000000
          gzip true
        </match>
        """)
    assert one(migration, "outputs") == {
        "type": "logzio", "match": "**", "region": "eu", "token": "${LOGZIO_TOKEN}",
        "log_type": "java", "tag_key": None, "gzip": True, "max_request_bytes": "1MB"}
    assert "aBcDeFgHiJkLmNoPqRsTuVwXyZ" not in migration.text
    assert [s.env for s in migration.findings.secrets] == ["LOGZIO_TOKEN"]
    validate(migration, {"LOGZIO_TOKEN": "t"})


def test_logzio_endpoint_from_the_environment_keeps_its_variables(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type logzio_buffered
          endpoint_url "#{ENV['LOGZIO_URL']}?token=#{ENV['LOGZIO_TOKEN']}"
        </match>
        """)
    output = one(migration, "outputs")
    assert (output["listener"], output["token"]) == ("${LOGZIO_URL}", "${LOGZIO_TOKEN}")
    assert output["log_type"] == "http-bulk"  # what the listener assumed without a type
    assert migration.exit_code == 0
    validate(migration, {"LOGZIO_URL": "https://listener.logz.io:8071", "LOGZIO_TOKEN": "t"})


def test_logzio_over_plain_http_is_allowed_with_a_warning(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type logzio_buffered
          endpoint_url http://logzio-proxy:8070?token=abc
        </match>
        """)
    output = one(migration, "outputs")
    assert output["listener"] == "http://logzio-proxy:8070" and output["allow_insecure"] is True
    assert any("plain http" in m for m in messages(migration))


def test_forward_output_servers_security_and_tls(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type forward
          transport tls
          tls_cert_path /etc/tls/ca.crt
          tls_verify_hostname true
          require_ack_response
          ack_response_timeout 30
          heartbeat_type tcp
          compress gzip
          <security>
            self_hostname node-1
            shared_key key123
          </security>
          <server>
            name agg0
            host aggregator-0
            port 24224
            weight 60
          </server>
          <server>
            host aggregator-dr
            standby
          </server>
        </match>
        """)
    assert one(migration, "outputs") == {
        "type": "forward", "match": "**",
        "servers": [{"host": "aggregator-0", "port": 24224, "weight": 60},
                    {"host": "aggregator-dr", "standby": True}],
        "require_ack_response": True, "ack_response_timeout_secs": "30s", "compress": "gzip",
        "heartbeat_type": "transport", "shared_key": "${FORWARD_SHARED_KEY}",
        "self_hostname": "node-1", "tls": {"ca_file": "/etc/tls/ca.crt"}}
    assert messages(migration) == []
    validate(migration, {"FORWARD_SHARED_KEY": "k"})


def test_copy_becomes_one_output_per_store(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match app.**>
          @type copy
          @id out_app
          <store>
            @type elasticsearch
            host es
          </store>
          <store ignore_error>
            @type stdout
          </store>
        </match>
        """)
    outputs = data(migration)["outputs"]
    assert list(outputs) == ["out_app_elasticsearch", "out_app_stdout"]
    assert {o["match"] for o in outputs.values()} == {"app.**"}
    validate(migration)


def test_first_match_wins_in_fluentd_so_overlaps_are_warned(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match fluent.**>
          @type null
        </match>
        <match app.**>
          @type stdout
        </match>
        <match **>
          @type stdout
        </match>
        <match other.**>
          @type stdout
        </match>
        """)
    warned = messages(migration)
    assert warned == [
        "fluent.conf:10: <match **> @type stdout comes after <match app.**> @type stdout "
        "(" + str(tmp_path / "fluent.conf") + ":7); Fluentd gives a record only to the first "
        "match, shipper to every output whose pattern matches, so records matching both now "
        "also reach this output",
        "fluent.conf:13: <match other.**> @type stdout comes after <match **> @type stdout "
        "(" + str(tmp_path / "fluent.conf") + ":10); Fluentd gives a record only to the first "
        "match, shipper to every output whose pattern matches, so records matching both now "
        "also reach this output"]
    assert any("Fluentd's own events" in m for m in messages(migration, "note"))


def test_null_and_unknown_outputs_are_warnings(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match noisy.**>
          @type null
        </match>
        <match **>
          @type s3
        </match>
        """)
    assert [m.split(":", 2)[1] for m in messages(migration)] == ["1", "4", "7"]
    assert "no output could be converted" in messages(migration)[0]


DETECT_SOURCE = """\
<source>
  @type tail
  path /var/log/containers/*.log
  tag raw.kubernetes.*
  read_from_head true
</source>
"""


def test_detect_exceptions_of_one_language_becomes_a_preset_rule(tmp_path):
    migration = convert(tmp_path, DETECT_SOURCE + """\
        <match raw.kubernetes.**>
          @type detect_exceptions
          remove_tag_prefix raw
          languages java
          message log
          multiline_flush_interval 5
          max_bytes 500000
          max_lines 1000
        </match>
        <match kubernetes.**>
          @type stdout
        </match>
        """)
    source = one(migration, "sources")
    assert source["tag_prefix"] == "kubernetes"
    assert source["multiline"] == [{"files": ["*"], "preset": "java", "max_lines": 1000,
                                    "max_bytes": "500000", "flush_timeout_secs": "5s"}]
    assert messages(migration) == []
    assert any("java preset" in m for m in messages(migration, "note"))
    config = validate(migration)
    (rule,) = config.sources[next(iter(config.sources))].multiline
    assert (rule.preset, rule.max_lines, rule.max_bytes) == ("java", 1000, 500000)


def test_detect_exceptions_of_every_language_asks_for_pod_annotations(tmp_path):
    migration = convert(tmp_path, DETECT_SOURCE + """\
        <match raw.kubernetes.**>
          @type detect_exceptions
          remove_tag_prefix raw
          languages java, php
          max_lines 1000
        </match>
        <match kubernetes.**>
          @type stdout
        </match>
        """)
    assert "multiline" not in one(migration, "sources")
    (warning,) = messages(migration)
    assert "java, php" in warning and "shipper.io/multiline" in warning
    assert "(php: no preset)" in warning
    validate(migration)


HOSTILE = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile"


def test_hosts_without_a_port_take_the_port_parameter():
    migration = migrate(str(HOSTILE / "es-hosts-port.conf"))
    assert one(migration, "outputs")["hosts"] == ["http://es1:9201", "http://es2:9201"]
    assert not any("port" in m for m in messages(migration))


def test_hosts_without_a_port_take_the_scheme_and_the_default_port():
    migration = migrate(str(HOSTILE / "es-hosts-scheme.conf"))
    assert one(migration, "outputs")["hosts"] == ["https://es1:9200", "https://es2:9200"]


def test_a_url_without_a_port_keeps_its_schemes_port(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          hosts https://es1,http://es2/
        </match>
        """)
    assert one(migration, "outputs")["hosts"] == ["https://es1:443", "http://es2:80/"]


def test_hosts_with_different_credentials_warn():
    migration = migrate(str(HOSTILE / "es-hosts-credentials.conf"))
    assert any("different credentials" in f.message for f in migration.findings.warnings)
    assert migration.exit_code == 1


def test_ssl_version_gets_a_tls_note_not_the_type_name_one(tmp_path):
    migration = convert(tmp_path, SOURCE + """\
        <match **>
          @type elasticsearch
          host es1
          ssl_version TLSv1_2
        </match>
        """)
    notes = [m for m in messages(migration, "note") if "ssl_version" in m]
    assert len(notes) == 1 and "TLS version is negotiated" in notes[0]
    assert "type names" not in notes[0]
