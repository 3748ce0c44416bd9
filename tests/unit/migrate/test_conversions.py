"""Conversions that used to be reported as missing: a JSON-or-text multi_format parser, a
dated index_name, CRI/docker partial-line concat."""

from __future__ import annotations

from tests.unit.migrate.helpers import convert, messages, one, validate

TAIL = """\
<source>
  @type tail
  path /var/log/containers/*.log
  tag kubernetes.*
</source>
"""
OUTPUT = "<match **>\n  @type stdout\n</match>\n"


def test_a_json_or_plain_text_multi_format_parser_becomes_json_merge(tmp_path):
    migration = convert(tmp_path, TAIL + """\
<filter kubernetes.**>
  @type parser
  key_name log
  reserve_data true
  <parse>
    @type multi_format
    <pattern>
      format json
    </pattern>
    <pattern>
      format none
    </pattern>
  </parse>
</filter>
""" + OUTPUT)
    assert one(migration, "filters") == {"type": "json_merge", "match": "kubernetes.**",
                                         "key_name": "log"}
    assert messages(migration) == []
    assert "multi_format of json then none" in " ".join(messages(migration, "note"))
    validate(migration)


def test_a_multi_format_parser_with_a_regexp_is_still_not_converted(tmp_path):
    migration = convert(tmp_path, TAIL + """\
<filter kubernetes.**>
  @type parser
  key_name log
  <parse>
    @type multi_format
    <pattern>
      format json
    </pattern>
    <pattern>
      format /^(?<level>\\w+) (?<msg>.*)$/
    </pattern>
  </parse>
</filter>
""" + OUTPUT)
    assert [m.split(": only")[0] for m in messages(migration)] == [
        "fluent.conf:6: <filter kubernetes.**> @type parser"]


def test_a_dated_index_name_becomes_logstash_format_exactly(tmp_path):
    migration = convert(tmp_path, TAIL + """\
<match **>
  @type elasticsearch
  host es
  index_name k8s-%Y.%m.%d
</match>
""")
    output = one(migration, "outputs")
    assert {k: output[k] for k in ("logstash_format", "logstash_prefix",
                                   "logstash_prefix_separator", "logstash_dateformat")} == {
        "logstash_format": True, "logstash_prefix": "k8s", "logstash_prefix_separator": "-",
        "logstash_dateformat": "%Y.%m.%d"}
    assert "index" not in output and messages(migration) == []
    es = validate(migration).outputs["elasticsearch"]
    assert (es.logstash_prefix, es.logstash_dateformat) == ("k8s", "%Y.%m.%d")


def test_an_index_name_with_a_tag_placeholder_is_still_a_warning(tmp_path):
    migration = convert(tmp_path, TAIL + """\
<match **>
  @type elasticsearch
  index_name k8s-${tag}-%Y.%m.%d
</match>
""")
    assert [m.split(":")[2] for m in messages(migration)] == [" index_name"]


def test_cri_and_docker_partial_line_concat_needs_no_warning(tmp_path):
    for body in ("  key log\n  partial_key logtag\n  partial_value P\n  separator \"\"\n",
                 "  key log\n  use_partial_cri_logtag true\n  partial_cri_logtag_key logtag\n"
                 "  partial_cri_stream_key stream\n",
                 "  key log\n  use_partial_metadata true\n  separator \"\"\n"):
        migration = convert(tmp_path, TAIL + "<filter kubernetes.**>\n  @type concat\n" + body
                            + "</filter>\n" + OUTPUT)
        assert messages(migration) == [], body
        assert "joined by the tail source itself" in " ".join(messages(migration, "note"))
        assert "filters" not in migration.document.plain()
