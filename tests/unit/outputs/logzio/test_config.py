"""The logzio output's settings: listener resolution, the insecure-port rule, token sources,
limits, and that no message or dump ever shows the token."""

from __future__ import annotations

import pytest

from outputs.logzio.config import (
    MAX_BODY_BYTES,
    MAX_LINE_BYTES,
    Endpoint,
    LogzioConfig,
    parse_listener,
)
from shipper.app import OUTPUT_TYPES, parse_agent_config, render_config_reference
from shipper.config.dump import to_plain
from shipper.errors import ConfigError

TOKEN = "tokSECRETvalue1234567890abcdefgh"

BASE = """\
sources: {c: {type: tail, include: ["/var/log/containers/*.log"]}}
outputs:
  logzio:
    type: logzio
"""


def load(body: str, **environ: str) -> LogzioConfig:
    config = parse_agent_config(BASE + body, file="shipper.yaml", environ=environ)
    output = config.outputs["logzio"]
    assert isinstance(output, LogzioConfig)
    return output


def problems(body: str, **environ: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_agent_config(BASE + body, file="shipper.yaml", environ=environ)
    return str(info.value)


def test_logzio_is_a_registered_output_type() -> None:
    assert OUTPUT_TYPES["logzio"] is LogzioConfig
    assert "## `outputs.<name>` with `type: logzio`" in render_config_reference()


def test_defaults_ship_to_the_us_listener_over_https_8071_as_type_k8s() -> None:
    config = load("    token: abc\n")
    assert config.endpoint() == Endpoint("https", "listener.logz.io", 8071, "")
    assert config.log_type == "k8s"
    assert config.tag_key == "fluentd_tags"
    assert config.max_request_bytes == MAX_BODY_BYTES == 10_485_760
    assert config.max_line_bytes == MAX_LINE_BYTES == 500_000


@pytest.mark.parametrize(("region", "host"), [
    ("eu", "listener-eu.logz.io"), ("EU", "listener-eu.logz.io"), ("au", "listener-au.logz.io"),
    ("ca", "listener-ca.logz.io"), ("uk", "listener-uk.logz.io"), ("us", "listener.logz.io")])
def test_region_codes_pick_the_listener_host(region: str, host: str) -> None:
    assert load(f"    region: {region}\n    token: abc\n").endpoint() == \
        Endpoint("https", host, 8071, "")


def test_unknown_region_is_an_error_listing_the_codes() -> None:
    message = problems("    region: mars\n    token: abc\n")
    assert "outputs.logzio.region: unknown region 'mars'" in message
    assert "eu" in message


def test_logzio_k8s_listener_url_from_the_environment() -> None:
    config = load("    listener: ${LOGZIO_URL}\n    token: ${LOGZIO_TOKEN}\n",
                  LOGZIO_URL="https://listener-eu.logz.io:8071", LOGZIO_TOKEN=TOKEN)
    assert config.endpoint() == Endpoint("https", "listener-eu.logz.io", 8071, "")
    assert config.token == TOKEN


def test_listener_without_port_uses_8071_for_https_and_8070_for_http() -> None:
    assert parse_listener("https://listener.logz.io").port == 8071
    assert parse_listener("http://listener.logz.io").port == 8070
    assert parse_listener("https://proxy.local:9443/logzio/").path == "/logzio"


def test_plain_http_is_refused_unless_allow_insecure() -> None:
    message = problems("    listener: http://listener.logz.io:8070\n    token: abc\n")
    assert "outputs.logzio.listener: plain http sends the token in clear text" in message
    config = load("    listener: http://127.0.0.1:8070\n    allow_insecure: true\n"
                  "    token: abc\n")
    assert config.endpoint().scheme == "http"


def test_a_token_pasted_into_the_listener_url_is_refused_without_repeating_it() -> None:
    message = problems(f"    listener: https://listener.logz.io:8071?token={TOKEN}\n"
                       f"    token: {TOKEN}\n")
    assert "must not carry a query string" in message
    assert TOKEN not in message


def test_listener_must_be_an_http_url() -> None:
    assert "must be a URL like" in problems("    listener: listener.logz.io\n    token: a\n")
    assert "not a valid URL" in problems("    listener: 'https://h:port'\n    token: a\n")


def test_exactly_one_token_source() -> None:
    assert "outputs.logzio.token: set token" in problems("    region: eu\n")
    both = problems("    token: abc\n    token_file: /etc/shipper/logzio/token\n")
    assert "set either token or token_file, not both" in both
    assert load("    token_file: /etc/shipper/logzio/token\n").token_file == \
        "/etc/shipper/logzio/token"


def test_region_and_listener_together_are_ambiguous() -> None:
    message = problems("    region: eu\n    listener: https://listener.logz.io\n    token: a\n")
    assert "set either region or listener, not both" in message


def test_a_bad_token_is_described_without_its_value() -> None:
    message = problems(f"    token: '{TOKEN} x'\n")
    assert "outputs.logzio.token: must not contain spaces" in message
    assert TOKEN not in message
    wrong_type = problems("    token: 123456789\n")
    assert "secret, not shown" in wrong_type
    assert "123456789" not in wrong_type


def test_limits_cannot_exceed_what_the_listener_accepts() -> None:
    assert "max_line_bytes: must be between 1024 and 500000" in problems(
        "    token: a\n    max_line_bytes: 600000\n")
    assert "max_request_bytes: must be between 1024 and 10485760" in problems(
        "    token: a\n    max_request_bytes: 20MiB\n")
    assert "max_line_bytes: must not exceed max_request_bytes" in problems(
        "    token: a\n    max_request_bytes: 100KiB\n")
    config = load("    token: a\n    max_request_bytes: 1MiB\n    max_line_bytes: 64KiB\n")
    assert (config.max_request_bytes, config.max_line_bytes) == (1024 * 1024, 65536)


def test_log_type_must_not_contain_spaces() -> None:
    assert "outputs.logzio.log_type:" in problems("    token: a\n    log_type: 'my type'\n")
    assert load("    token: a\n    log_type: istio-proxy\n").log_type == "istio-proxy"


def test_tag_key_can_be_turned_off_but_not_emptied() -> None:
    assert load("    token: a\n    tag_key: null\n").tag_key is None
    assert "tag_key: must not be empty" in problems("    token: a\n    tag_key: ''\n")


def test_the_token_never_appears_in_repr_or_dumps() -> None:
    config = parse_agent_config(BASE + "    token: ${LOGZIO_TOKEN}\n", file="shipper.yaml",
                                environ={"LOGZIO_TOKEN": TOKEN})
    output = config.outputs["logzio"]
    assert TOKEN not in repr(config)
    assert TOKEN not in repr(output)
    assert TOKEN not in str(to_plain(config))
    assert to_plain(output)["token"] == "<hidden>"
    assert output.token == TOKEN  # still usable by the output


def test_migration_examples_are_in_the_reference() -> None:
    reference = render_config_reference()
    for text in ("LOGZIO_TOKEN", "LOGZIO_URL", "LOGZIO_LOG_SHIPPING_TOKEN",
                 "token_file: /etc/shipper/logzio/token", "LOGZIO_FLUSH_THREAD_COUNT"):
        assert text in reference


def test_the_migration_example_is_a_valid_config() -> None:
    example = LogzioConfig.__config_examples__
    block = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_agent_config(
        "sources: {c: {type: tail, include: ['/x/*.log']}}\n" + block, file="example.yaml",
        environ={"LOGZIO_URL": "https://listener-eu.logz.io:8071", "LOGZIO_TOKEN": TOKEN})
    output = config.outputs["logzio"]
    assert output.buffer.max_in_flight == 4
    assert output.buffer.retry_max_secs == 30.0
    assert output.endpoint().host == "listener-eu.logz.io"
