"""Forward source settings: safe defaults, strict validation, secrets never shown."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

import pytest

from shipper.app import parse_agent_config, render_config_reference
from shipper.errors import ConfigError
from shipper.sources.forward.config import (
    ForwardClient,
    ForwardConfig,
    ForwardSecurity,
    ForwardTls,
    ForwardUser,
)

MIB = 1024 * 1024


def load(source: str) -> object:
    text = f"sources:\n  fwd:\n{source}\noutputs:\n  out: {{type: stdout}}\n"
    return parse_agent_config(text, file="test.yaml").sources["fwd"]


def test_defaults_are_fluentd_port_and_safe_limits() -> None:
    cfg = ForwardConfig()
    assert cfg.listen == "0.0.0.0:24224"
    assert cfg.max_frame_bytes == 8 * MIB and cfg.max_decompressed_bytes == 64 * MIB
    assert cfg.max_connections == 256 and cfg.max_connections_per_address == 128
    # Idle between complete requests is normal (fluent-logger keeps its connection open);
    # only a request that trickles in is cut short.
    assert cfg.idle_timeout_secs == 3600 and cfg.frame_timeout_secs == 30
    assert cfg.max_nesting_depth == 32
    assert cfg.security is None and cfg.tls is None


@pytest.mark.parametrize("cls", [ForwardConfig, ForwardSecurity, ForwardTls, ForwardUser,
                                 ForwardClient])
def test_every_field_is_documented(cls: type) -> None:
    assert is_dataclass(cls)
    assert all(f.metadata.get("doc") for f in fields(cls))


def test_a_full_config_loads_with_units() -> None:
    cfg = load("""    type: forward
    listen: 127.0.0.1:0
    max_frame_bytes: 1MiB
    idle_timeout_secs: 5s
    source_hostname_key: host
    security:
      shared_key: s3cret
      user_auth: true
      users: [{username: alice, password: pw}]
      clients: [{network: 10.0.0.0/8, users: [alice]}]
    tls: {cert_file: /c.pem, key_file: /k.pem}""")
    assert isinstance(cfg, ForwardConfig)
    assert cfg.max_frame_bytes == MIB and cfg.idle_timeout_secs == 5
    assert cfg.security is not None and cfg.security.users[0].username == "alice"
    assert "s3cret" not in repr(cfg) and "pw" not in repr(cfg.security.users)


@pytest.mark.parametrize(("body", "message"), [
    ("listen: nowhere", "expected host:port"),
    ("security: {user_auth: true, shared_key: k}", "at least one user"),
    ("security: {shared_key: k, allow_anonymous_source: false}", "clients: required"),
    ("security: {shared_key: k, clients: [{network: not-a-net}]}", "CIDR"),
    ("tls: {cert_file: c, key_file: k, client_cert_auth: true}", "ca_file"),
    ("max_frame_bytes: 10MiB\n    max_decompressed_bytes: 1MiB", "at least max_frame"),
    ("tag: a\n    add_tag_prefix: b", "either tag or add_tag_prefix"),
    ("tag: 'has space'", "without spaces"),
    ("max_connections: 0", "greater than 0"),
])
def test_impossible_settings_are_rejected(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(f"    type: forward\n    {body}")
    assert message in str(info.value)


def test_the_reference_shows_the_docker_and_fluent_bit_examples() -> None:
    text = render_config_reference()
    assert "--log-driver=fluentd" in text and "fluentd-address=" in text
    assert "Name                 forward" in text and "Shared_Key" in text
