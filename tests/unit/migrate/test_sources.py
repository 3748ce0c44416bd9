"""<source> sections: in_tail and in_forward key by key, prometheus to telemetry, the rest
reported."""

from __future__ import annotations

import pytest

from tests.unit.migrate.helpers import convert, data, messages, one, validate

OUTPUT = "<match **>\n  @type stdout\n</match>\n"


def test_in_tail_of_container_logs_maps_key_by_key(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type tail
          @id in_tail_container_logs
          path /var/log/containers/*.log,/var/log/pods/*/*/*.log
          exclude_path ["/var/log/containers/fluent*"]
          pos_file /var/log/fluentd-containers.log.pos
          tag kubernetes.*
          read_from_head true
          rotate_wait 10s
          refresh_interval 60
          follow_inodes true
          <parse>
            @type cri
          </parse>
        </source>
        """ + OUTPUT)
    assert data(migration)["sources"] == {"in_tail_container_logs": {
        "type": "tail",
        "include": ["/var/log/containers/*.log", "/var/log/pods/*/*/*.log"],
        "exclude": ["/var/log/containers/fluent*"],
        "tag_prefix": "kubernetes",
        "read_from_head": True,
        "rotate_wait_secs": "10s",
        "refresh_interval_secs": "1m"}}
    assert messages(migration) == []
    notes = " ".join(messages(migration, "note"))
    assert "pos_file" in notes and "follow_inodes" in notes and "parser cri" in notes
    assert migration.exit_code == 0
    validate(migration)


def test_read_from_head_is_written_with_fluentds_default(tmp_path):
    migration = convert(tmp_path, "<source>\n  @type tail\n  path /var/log/containers/*.log\n"
                                  "  tag k.*\n</source>\n" + OUTPUT)
    assert one(migration, "sources")["read_from_head"] is False
    assert "read_from_head: false  # Fluentd's default" in migration.text


def test_container_parsers_need_no_setting_but_field_parsers_are_warned(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type tail
          path /var/log/containers/*.log
          tag a.*
          <parse>
            @type multi_format
            <pattern>
              format json
            </pattern>
            <pattern>
              format /^(?<time>.+) (?<stream>stdout|stderr) [^ ]* (?<log>.*)$/
            </pattern>
          </parse>
        </source>
        <source>
          @type tail
          path /var/log/containers/*.log
          tag b.*
          <parse>
            @type nginx
          </parse>
        </source>
        """ + OUTPUT)
    assert any("parser multi_format" in m for m in messages(migration, "note"))
    assert messages(migration) == [
        "fluent.conf:20: parser nginx: shipper does not extract fields from lines; container "
        "lines are decoded as docker/CRI and other lines ship whole in log"]


def test_a_multiline_parser_becomes_a_multiline_rule(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          type tail
          format multiline
          multiline_flush_interval 5s
          format_firstline /^\\w\\d{4}/
          format1 /^(?<severity>\\w)(?<time>\\d{4} [^\\s]*)\\s+(?<message>.*)/
          path /var/log/kubelet.log
          tag kubelet
        </source>
        <match kubelet>
          @type stdout
        </match>
        """)
    source = one(migration, "sources")
    assert source["multiline"] == [{"files": ["/var/log/kubelet.log"],
                                    "start_pattern": "^\\w\\d{4}", "flush_timeout_secs": "5s"}]
    assert source["tag_prefix"] == "kubelet"
    assert one(migration, "outputs")["match"] == "kubelet.**"  # the fixed tag, widened
    warned = " ".join(messages(migration))
    assert "format1: events are joined but their fields are not extracted" in warned
    assert "tag kubelet: shipper's tag is always <prefix>.<file path>" in warned
    assert "lines of /var/log/kubelet.log ship whole in log" in warned
    validate(migration)


def test_tag_forms(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type tail
          path /var/log/containers/*.log
          tag *
        </source>
        <source>
          @type tail
          path /var/log/containers/*.log
          tag "#{ENV['TAIL_TAG'] || 'kube.*'}"
        </source>
        """ + OUTPUT)
    first, second = data(migration)["sources"].values()
    assert first["tag_prefix"] == "" and second["tag_prefix"] == "kube"
    assert any("tag depends on TAIL_TAG; converted as 'kube.*'" in m
               for m in messages(migration, "note"))


def test_in_forward_with_security_users_clients_and_tls(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type forward
          port 24225
          bind ::
          add_tag_prefix fwd
          source_hostname_key host
          chunk_size_limit 100m
          skip_invalid_event true
          <security>
            self_hostname aggregator
            shared_key s3cr3t-key
            user_auth true
            <user>
              username alice
              password alicepass
            </user>
            <client>
              network 10.0.0.0/8
              users ["alice"]
            </client>
          </security>
          <transport tls>
            cert_path /etc/tls/tls.crt
            private_key_path /etc/tls/tls.key
            ca_path /etc/tls/ca.crt
            client_cert_auth true
            min_version TLS1_3
          </transport>
        </source>
        """ + OUTPUT)
    assert one(migration, "sources") == {
        "type": "forward",
        "listen": "[::]:24225",
        "add_tag_prefix": "fwd",
        "source_hostname_key": "host",
        "max_frame_bytes": 104857600,
        "max_decompressed_bytes": 104857600,
        "security": {"shared_key": "${FORWARD_SHARED_KEY}", "self_hostname": "aggregator",
                     "user_auth": True,
                     "users": [{"username": "alice", "password": "${FORWARD_ALICE_PASSWORD}"}],
                     "clients": [{"network": "10.0.0.0/8", "users": ["alice"]}]},
        "tls": {"cert_file": "/etc/tls/tls.crt", "key_file": "/etc/tls/tls.key",
                "ca_file": "/etc/tls/ca.crt", "client_cert_auth": True, "min_version": "1.3"}}
    assert [s.env for s in migration.findings.secrets] == [
        "FORWARD_SHARED_KEY", "FORWARD_ALICE_PASSWORD"]
    assert "s3cr3t-key" not in migration.text and "alicepass" not in migration.text
    assert migration.exit_code == 1
    validate(migration, {"FORWARD_SHARED_KEY": "k", "FORWARD_ALICE_PASSWORD": "p"})


def test_prometheus_becomes_the_telemetry_address(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type prometheus
          bind 0.0.0.0
          port 24231
          metrics_path /metrics
        </source>
        <source>
          @type prometheus_tail_monitor
        </source>
        <source>
          @type forward
        </source>
        """ + OUTPUT)
    assert data(migration)["telemetry"] == {"listen": "0.0.0.0:24231"}
    assert messages(migration) == []


def test_inputs_without_an_equivalent_are_warnings(tmp_path):
    migration = convert(tmp_path, """\
        <source>
          @type systemd
          tag journal
        </source>
        <source>
          @type http
          port 9880
        </source>
        <source>
          @type forward
        </source>
        """ + OUTPUT)
    assert messages(migration) == [
        "fluent.conf:1: <source> @type systemd: shipper has no journald source; these records "
        "are not shipped",
        "fluent.conf:5: <source> @type http: the input plugin http has no equivalent in "
        "shipper; it is not converted"]
    assert migration.exit_code == 1


@pytest.mark.parametrize(("parser", "severity", "text"), [
    ("cri", "note", "read as container log files (parser cri)"),
    ("json", "warning", "in docker json-file form (log, stream, time) are decoded"),
    ("none", "warning", "ship whole in log, flagged malformed")])
def test_a_tail_path_outside_the_container_directories_is_judged_by_its_parser(
        tmp_path, parser, severity, text):
    migration = convert(tmp_path, f"""\
        <source>
          @type tail
          path /srv/logs/*.log
          tag kubernetes.*
          <parse>
            @type {parser}
          </parse>
        </source>
        <match **>
          @type stdout
        </match>
        """)
    assert any(text in m for m in messages(migration, severity)), messages(migration, severity)
