"""Settings of the elasticsearch output: defaults, per-field checks and cross-field rules."""

from __future__ import annotations

import dataclasses

from outputs.elasticsearch.config import ElasticsearchConfig

FIELDS = {f.name: f for f in dataclasses.fields(ElasticsearchConfig)}


def check(name: str, value: object) -> str | None:
    return FIELDS[name].metadata["check"](value)  # type: ignore[no-any-return]


def test_defaults_follow_fluentd() -> None:
    config = ElasticsearchConfig()
    assert config.hosts == ["http://127.0.0.1:9200"]
    assert config.logstash_format
    assert (config.logstash_prefix, config.logstash_prefix_separator,
            config.logstash_dateformat) == ("logstash", "-", "%Y.%m.%d")
    assert config.write_operation == "create"
    assert config.max_request_bytes == 10 * 1024 * 1024
    assert config.validate() == []


def test_every_field_is_documented_and_secrets_are_marked() -> None:
    for field in FIELDS.values():
        assert field.metadata.get("doc"), field.name
    assert {n for n, f in FIELDS.items() if f.metadata.get("secret")} == {"password", "api_key"}


def test_hosts_must_be_plain_http_urls() -> None:
    assert check("hosts", ["https://es.example:9243", "http://10.0.0.1:9200/proxy"]) is None
    assert check("hosts", []) is not None
    assert "URL" in (check("hosts", ["es:9200"]) or "")
    assert "credentials" in (check("hosts", ["https://elastic:pw@es:9200"]) or "")
    assert check("hosts", ["http://es:notaport"]) is not None


def test_numbers_and_names_are_checked() -> None:
    assert check("max_request_bytes", 0) is not None
    assert check("request_timeout_secs", 2.5) is None
    assert check("template_name", "bad name") is not None
    assert check("logstash_dateformat", "%Y.%m.%d") is None
    assert check("logstash_dateformat", "") is not None


def test_a_fixed_index_is_required_without_logstash_format() -> None:
    assert ElasticsearchConfig(logstash_format=False).validate() == [
        "index: required when logstash_format is false"]
    assert ElasticsearchConfig(logstash_format=False, index="k8s").validate() == []
    assert ElasticsearchConfig(logstash_format=False, index="bad:name").validate() != []


def test_credentials_must_be_coherent() -> None:
    assert ElasticsearchConfig(password="x").validate() == ["password: set user too"]
    assert ElasticsearchConfig(user="u", password="p").validate() == []
    assert len(ElasticsearchConfig(user="u", api_key="k").validate()) == 1
    assert ElasticsearchConfig(client_key="k.pem").validate() == ["client_key: set client_cert too"]
    assert len(ElasticsearchConfig(ilm_policy="p", install_template=False).validate()) == 1
