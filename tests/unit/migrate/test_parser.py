"""Fluentd's configuration syntax is read like Fluentd reads it, every value with its line."""

from __future__ import annotations

import pytest

from shipper.errors import FluentdSyntaxError
from shipper.migrate.findings import Findings
from shipper.migrate.model import Env, Ruby, Section, Text
from shipper.migrate.parser import parse_file
from tests.unit.migrate.helpers import write


def parse(tmp_path, text: str, name: str = "fluent.conf") -> tuple[Section, Findings]:
    findings = Findings()
    return parse_file(str(write(tmp_path, text, name)), findings), findings


def test_sections_nest_and_keep_their_arguments_and_lines(tmp_path):
    root, _ = parse(tmp_path, """\
        # a comment line
        <source>
          @type forward
        </source>

        <label @ES>
          <match kubernetes.** app.{a,b}>
            @type elasticsearch
            <buffer tag, time>
              flush_interval 5s
            </buffer>
          </match>
        </label>
        """)
    source, label = root.children
    assert (source.name, source.plugin, source.line) == ("source", "forward", 2)
    assert (label.name, label.arg.literal, label.line) == ("label", "@ES", 6)
    match = label.children[0]
    assert match.arg.literal == "kubernetes.** app.{a,b}"
    assert match.title() == "<match kubernetes.** app.{a,b}> @type elasticsearch"
    buffer = match.child("buffer")
    assert buffer is not None and buffer.arg.literal == "tag, time"
    assert buffer.params["flush_interval"].line == 10


def test_values_end_at_a_comment_but_a_hash_inside_a_word_is_kept(tmp_path):
    root, _ = parse(tmp_path, """\
        <source>
          path /var/log/containers/*.log   # the kubelet's links
          tag app#1.*
          format /^(?<msg>.*)$/
        </source>
        """)
    params = root.children[0].params
    assert params["path"].value.literal == "/var/log/containers/*.log"
    assert params["tag"].value.literal == "app#1.*"
    assert params["format"].value.literal == "/^(?<msg>.*)$/"


def test_a_key_alone_on_its_line_is_a_flag(tmp_path):
    root, _ = parse(tmp_path, "<match **>\n  disable_retry_limit\n  num_threads 2\n"
                              "  retry_forever # comment\n</match>\n  ")
    params = root.children[0].params
    assert params["disable_retry_limit"].flag and params["retry_forever"].flag
    assert not params["num_threads"].flag


def test_the_old_type_spelling_names_the_plugin(tmp_path):
    root, _ = parse(tmp_path, "<match **>\n  type elasticsearch\n</match>\n")
    assert root.children[0].plugin == "elasticsearch"


def test_quoted_values_unescape_and_may_span_lines(tmp_path):
    root, _ = parse(tmp_path, """\
        <filter **>
          double "a\\tb \\"q\\" \\d"
          single 'it\\'s \\n'
          multi "first
        second"
        </filter>
        """)
    params = root.children[0].params
    assert params["double"].value.literal == 'a\tb "q" \\d'
    assert params["single"].value.literal == "it's \\n"
    assert params["multi"].value.literal == "first\nsecond"
    assert params["multi"].line == 4


def test_json_values_may_span_lines_with_comments(tmp_path):
    root, _ = parse(tmp_path, """\
        <source>
          exclude_path ["/var/log/containers/fluent*",  # the agent itself
                        "/var/log/containers/#x*"]
          labels {"a": "b#c",
                  "d": 1}
          after 1
        </source>
        """)
    params = root.children[0].params
    assert params["exclude_path"].value.literal == \
        '["/var/log/containers/fluent*","/var/log/containers/#x*"]'
    assert params["labels"].value.literal == '{"a":"b#c","d":1}'
    assert params["after"].line == 6


def test_embedded_ruby_becomes_pieces_only_in_double_quotes(tmp_path):
    root, _ = parse(tmp_path, """\
        <match "#{ENV['TAG'] || 'kubernetes'}.**">
          host "#{ENV['FLUENT_ELASTICSEARCH_HOST']}"
          url "#{ENV['URL']}?token=#{ENV['TOKEN']}"
          name "#{Socket.gethostname}"
          literal '#{ENV["X"]}'
        </match>
        """)
    match = root.children[0]
    assert match.arg.pieces == (Env("TAG", "text", "kubernetes"), Text(".**"))
    assert match.arg.assumed() == "kubernetes.**"
    params = match.params
    assert params["host"].value.pieces == (Env("FLUENT_ELASTICSEARCH_HOST"),)
    assert params["url"].value.pieces == (Env("URL"), Text("?token="), Env("TOKEN"))
    assert params["name"].value.pieces == (Ruby("Socket.gethostname"),)
    assert params["literal"].value.literal == '#{ENV["X"]}'


def test_a_key_written_twice_keeps_the_last_value_and_says_so(tmp_path):
    root, findings = parse(tmp_path, "<source>\n  port 1\n  port 2\n</source>\n")
    assert root.children[0].params["port"].value.literal == "2"
    assert "port is also set at" in findings.notes[0].message
    assert findings.notes[0].where.endswith("fluent.conf:3")


def test_includes_are_relative_to_the_including_file_and_globs_are_sorted(tmp_path):
    write(tmp_path, "<source>\n  @type tail\n</source>\n", "conf/inputs.conf")
    write(tmp_path, "<match b.**>\n  @type stdout\n</match>\n", "conf/d/b.conf")
    write(tmp_path, "<match a.**>\n  @type stdout\n</match>\n", "conf/d/a.conf")
    write(tmp_path, "@include inputs.conf\n@include d/*.conf\n", "conf/main.conf")
    root, findings = parse(tmp_path, "@include conf/main.conf\n<match **>\n  @type null\n"
                                     "</match>\n")
    assert [(s.name, s.arg.literal) for s in root.children] == [
        ("source", ""), ("match", "a.**"), ("match", "b.**"), ("match", "**")]
    assert root.children[1].file.endswith("conf/d/a.conf")
    assert findings.items == []


def test_an_include_named_by_the_environment_reads_its_default(tmp_path):
    write(tmp_path, "<source>\n  @type systemd\n</source>\n", "systemd.conf")
    root, findings = parse(tmp_path, "@include \"#{ENV['SYSTEMD_CONF'] || 'systemd'}.conf\"\n")
    assert root.children[0].plugin == "systemd"
    assert "SYSTEMD_CONF" in findings.notes[0].message


def test_a_missing_include_is_an_error_and_an_empty_glob_a_warning(tmp_path):
    """Fluentd refuses to start without a named include, but starts with an empty glob."""
    with pytest.raises(FluentdSyntaxError, match=r"fluent.conf:2: @include missing.conf: no "
                                                 r"such file"):
        parse(tmp_path, "# header\n@include missing.conf\n")
    _, findings = parse(tmp_path, "@include conf.d/*.conf\n")
    assert [(f.severity, f.where.rsplit("/", 1)[1]) for f in findings.items] == [
        ("warning", "fluent.conf:1")]
    assert "matches no file" in findings.items[0].message


def test_an_include_inside_a_section_adds_to_that_section(tmp_path):
    write(tmp_path, "flush_interval 3s\n", "buffer.conf")
    root, _ = parse(tmp_path, "<match **>\n  <buffer>\n    @include buffer.conf\n  </buffer>\n"
                              "</match>\n")
    buffer = root.children[0].child("buffer")
    assert buffer is not None and buffer.params["flush_interval"].value.literal == "3s"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("<source>\n  @type tail\n", 3, "the file ends inside <source> @type tail opened at line 1"),
    ("<source>\n</match>\n", 2, "unmatched end tag </match>; expected </source>"),
    ("</source>\n", 1, "unmatched end tag </source>; expected nothing"),
    ("<source>\n  tag \"abc\n</source>\n", 2, "the file ends inside a double-quoted string"),
    ("<source>\n  x [1, 2\n</source>\n", 2, "the JSON array of x is not closed"),
    ("<source>\n  x {\"a\": }\n</source>\n", 2, "the value of x is not valid JSON"),
    ("<source\n</source>\n", 1, "expected '>' to close <source"),
    ("<source>\n  tag \"a\" b\n</source>\n", 2, "expected the end of the line after the value"),
])
def test_syntax_errors_name_the_file_and_line(tmp_path, text, line, message):
    with pytest.raises(FluentdSyntaxError) as caught:
        parse(tmp_path, text)
    error = caught.value
    assert (error.file.rsplit("/", 1)[1], error.line) == ("fluent.conf", line)
    assert error.message.startswith(message)
    assert str(error).endswith(f"fluent.conf:{line}: {error.message}")


def test_an_include_loop_is_an_error(tmp_path):
    write(tmp_path, "@include fluent.conf\n", "other.conf")
    with pytest.raises(FluentdSyntaxError, match="@include loop"):
        parse(tmp_path, "@include other.conf\n")
