"""Fluentd values become shipper values: units converted, lookups as ${...}, nothing silent."""

from __future__ import annotations

import pytest

from shipper.migrate.findings import Findings
from shipper.migrate.model import Env, Param, Ruby, Section, Text, Value
from shipper.migrate.reader import (
    Conversion,
    SectionReader,
    fluent_bool,
    fluent_seconds,
    fluent_size,
    size_text,
)


@pytest.mark.parametrize(("text", "size"), [
    ("2M", 2 * 1024 ** 2), ("2m", 2 * 1024 ** 2), ("8MB", 8 * 1024 ** 2), ("512k", 512 * 1024),
    ("1g", 1024 ** 3), ("1t", 1024 ** 4), ("1000", 1000), ("1.5M", 1572864), ("abc", None),
])
def test_fluentd_sizes_are_powers_of_1024(text, size):
    assert fluent_size(text) == size


def test_sizes_are_written_in_binary_units():
    assert (size_text("2M"), size_text("1000"), size_text("x")) == ("2MiB", "1000", None)


@pytest.mark.parametrize(("text", "seconds"), [
    ("5s", 5.0), ("30", 30.0), ("1m", 60.0), ("1h", 3600.0), ("1d", 86400.0), ("0.5", 0.5),
    ("5 minutes", None),
])
def test_fluentd_durations(text, seconds):
    assert fluent_seconds(text) == seconds


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("yes", True), ("", True), ("false", False), ("no", False), ("maybe", None),
])
def test_fluentd_booleans(text, value):
    assert fluent_bool(text) == value


def reader(**params: Value) -> tuple[SectionReader, Findings]:
    section = Section("match", Value.of("**"), "fluent.conf", 1)
    for line, (key, value) in enumerate(params.items(), start=2):
        section.params[key] = Param(key, value, "fluent.conf", line)
    findings = Findings()
    return SectionReader(section, Conversion(findings)), findings


def test_lookups_become_references_with_converted_defaults():
    r, findings = reader(
        host=Value((Env("HOST"),)),
        chunk=Value((Env("CHUNK", "text", "2M"),)),
        user=Value((Env("USER", "default"),)),
        threads=Value((Env("THREADS", "default"),)),
        url=Value((Text("https://"), Env("HOST"), Text(":9200"))),
    )
    assert r.text("host") == "${HOST}"
    assert r.text("host", optional=True) == "${HOST:-}"
    assert r.size("chunk") == "${CHUNK:-2MiB}"
    assert r.text("user", optional=True) == "${USER:-}"
    assert r.integer("threads", default=2) == "${THREADS:-2}"
    assert r.text("url") == "https://${HOST}:9200"
    assert r.conv.env_used == {"HOST": "fluent.conf:2", "CHUNK": "fluent.conf:3",
                               "USER": "fluent.conf:4", "THREADS": "fluent.conf:5"}
    # A size the environment sets keeps Fluentd's 1024-based units there: it must change.
    assert [(f.where, f.message.split(" holds")[0]) for f in findings.items] == [
        ("fluent.conf:3", "chunk: ENV['CHUNK']")]


def test_literal_values_are_converted_and_escaped():
    r, _ = reader(flag=Value(), enabled=Value.of("yes"), size=Value.of("16m"),
                  wait=Value.of("90"), text=Value.of("${record['log']}"), n=Value.of("8"))
    r.section.params["flag"].flag = True
    assert r.boolean("flag") is True
    assert r.boolean("enabled") is True
    assert r.size("size") == "16MiB"
    assert r.seconds("wait") == "1m30s"
    assert r.text("text") == "$${record['log']}"  # not read as a reference by shipper
    assert r.integer("n") == 8


def test_untranslatable_ruby_and_invalid_values_are_warnings_not_guesses():
    r, findings = reader(host=Value((Ruby("Socket.gethostname"),)), size=Value.of("huge"))
    assert r.text("host") is None
    assert r.size("size") is None
    assert [f.where for f in findings.warnings] == ["fluent.conf:2", "fluent.conf:3"]
    assert "#{Socket.gethostname} has no equivalent" in findings.warnings[0].message


def test_a_literal_secret_moves_to_a_new_variable_and_is_listed():
    r, findings = reader(password=Value.of("hunter2"), other=Value.of("s3cret"))
    assert r.secret("password", "ES_PASSWORD", "elasticsearch password") == "${ES_PASSWORD}"
    assert r.secret("other", "ES_PASSWORD", "another password") == "${ES_PASSWORD_2}"
    assert [(s.env, s.where) for s in findings.secrets] == [
        ("ES_PASSWORD", "fluent.conf:2"), ("ES_PASSWORD_2", "fluent.conf:3")]
    assert findings.needs_review


def test_a_secret_from_the_environment_stays_there_but_its_written_default_moves():
    r, findings = reader(a=Value((Env("PASS"),)), b=Value((Env("KEY", "text", "changeme"),)))
    assert r.secret("a", "X", "a") == "${PASS}"
    assert r.secret("b", "X", "b") == "${KEY}"
    assert [s.env for s in findings.secrets] == ["KEY"]


def test_parameters_nobody_read_are_reported_without_secret_values():
    r, findings = reader(known=Value.of("1"), type_name=Value.of("fluentd"),
                         client_key_pass=Value.of("hunter2"),
                         proxy=Value.of("https://u:p@proxy:3128/?token=abc"))
    r.text("known")
    r.finish("the elasticsearch output")
    text = " ".join(f.message for f in findings.warnings)
    assert "type_name 'fluentd' in <match **> has no equivalent in the elasticsearch output" \
        in text
    assert "client_key_pass (value hidden)" in text
    assert "hunter2" not in text and "token=abc" not in text and "u:p" not in text
    assert "known" not in text


def test_messages_never_echo_headers_or_embedded_ruby_that_may_hold_a_secret(capsys):
    from pathlib import Path

    from shipper.cli import main

    conf = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
        "secret-messages.conf"
    assert main(["migrate-fluentd", str(conf)]) == 1
    out, err = capsys.readouterr()
    for secret in ("HeaderTok999", "RubySecretFFF", "RubyUserBBB", "RubyOtherCCC"):
        assert secret not in err and secret not in out, secret
    assert "custom_headers (value hidden)" in err
    assert "harmless_param '42'" in err  # other values are still shown
