"""The loader turns one YAML file into an AgentConfig, or raises every problem it has at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Literal

import pytest
import yaml

from shipper.config import checks
from shipper.config.dump import to_plain
from shipper.config.loader import load_config, parse_config_text
from shipper.config.model import AgentConfig, TelemetryConfig
from shipper.config.types import Bytes, Seconds
from shipper.errors import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True)
class TailSource:
    """Follows files."""

    paths: list[str]
    read_from: Literal["head", "tail"] = "head"
    max_line_bytes: Bytes = 32 * 1024


@dataclass(frozen=True)
class ForwardSource:
    """Declares its own type field, so it receives the type key."""

    type: Literal["forward"]
    listen: str = field(default="0.0.0.0:24224", metadata={"check": checks.host_port})


@dataclass(frozen=True)
class BufferSettings:
    """An output's buffer."""

    chunk_limit_bytes: Bytes = 2 * MIB
    flush_interval_secs: Seconds = 5.0
    when_full: Literal["block", "drop_newest"] = "block"


@dataclass(frozen=True)
class SearchOutput:
    """Sends to a search cluster."""

    hosts: list[str]
    password: str | None = field(default=None, repr=False, metadata={"secret": True})
    port: int = field(default=9200, metadata={"check": checks.port})
    match: str = "**"
    buffer: BufferSettings = field(default_factory=BufferSettings)


SOURCES: dict[str, type] = {"tail": TailSource, "forward": ForwardSource}
OUTPUTS: dict[str, type] = {"elasticsearch": SearchOutput}

FULL = """\
state_dir: /data/shipper
log_level: debug
shutdown_deadline_secs: 20s
telemetry:
  listen: 0.0.0.0:24231
sources:
  containers:
    type: tail
    paths: [/var/log/containers/*.log]
    max_line_bytes: 64KiB
  fluent:
    type: forward
outputs:
  es:
    type: elasticsearch
    hosts: ["https://${ES_HOST}:9200"]
    password: ${ES_PASSWORD}
    match: kube.**
    buffer:
      chunk_limit_bytes: 4MiB
      flush_interval_secs: 500ms
      when_full: drop_newest
"""
ENV = {"ES_HOST": "es.logging", "ES_PASSWORD": "s3cret"}

EXPECTED = AgentConfig(
    state_dir="/data/shipper",
    log_level="debug",
    shutdown_deadline_secs=20.0,
    telemetry=TelemetryConfig(listen="0.0.0.0:24231"),
    sources={
        "containers": TailSource(paths=["/var/log/containers/*.log"], max_line_bytes=65536),
        "fluent": ForwardSource(type="forward"),
    },
    outputs={
        "es": SearchOutput(
            hosts=["https://es.logging:9200"], password="s3cret", match="kube.**",
            buffer=BufferSettings(chunk_limit_bytes=4 * MIB, flush_interval_secs=0.5,
                              when_full="drop_newest")),
    },
    config_file="shipper.yaml",
)


def parse(text: str, environ: dict[str, str] | None = None) -> AgentConfig:
    return parse_config_text(dedent(text), file="shipper.yaml", source_types=SOURCES,
                             output_types=OUTPUTS, environ=environ or {})


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, environ)
    return [str(p) for p in caught.value.problems]


MINIMAL = """\
sources:
  containers: {type: tail, paths: [/var/log/containers/*.log]}
outputs:
  es: {type: elasticsearch, hosts: [http://es:9200]}
"""


def test_a_full_config_file_loads_into_the_agent_config(tmp_path: Path) -> None:
    path = tmp_path / "shipper.yaml"
    path.write_text(FULL)
    config = load_config(path, source_types=SOURCES, output_types=OUTPUTS, environ=ENV)
    assert config == dataclasses.replace(EXPECTED, config_file=str(path))


def test_a_dumped_config_loads_back_to_the_same_config() -> None:
    dumped = yaml.safe_dump(to_plain(parse(FULL, ENV), reveal_secrets=True,
                                     registries={"source": SOURCES, "output": OUTPUTS}))
    assert parse(dumped) == EXPECTED


def test_a_minimal_config_gets_the_documented_defaults() -> None:
    config = parse(MINIMAL)
    assert (config.state_dir, config.telemetry, config.shutdown_deadline_secs,
            config.log_level) == ("/var/lib/shipper", TelemetryConfig(listen="127.0.0.1:24231"),
                                  25.0, "info")
    assert config.config_file == "shipper.yaml"


def test_the_process_environment_is_used_when_none_is_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPER_TEST_STATE_DIR", "/from/env")
    config = parse_config_text(MINIMAL + "state_dir: ${SHIPPER_TEST_STATE_DIR}\n",
                               source_types=SOURCES, output_types=OUTPUTS)
    assert config.state_dir == "/from/env"


def test_an_unknown_type_lists_the_known_types_and_suggests_one() -> None:
    assert problems_of("""\
        sources:
          containers: {type: tial, paths: [a]}
        outputs:
          es:
            type: elastic
            hosts: [a]
        """) == [
        "shipper.yaml:2: sources.containers.type: unknown source type 'tial'; "
        "did you mean 'tail'? expected one of: forward, tail",
        "shipper.yaml:5: outputs.es.type: unknown output type 'elastic'; "
        "did you mean 'elasticsearch'? expected one of: elasticsearch",
    ]


def test_a_missing_type_lists_the_known_types() -> None:
    assert problems_of("""\
        sources:
          containers:
            paths: [a]
        outputs:
          es: {type: elasticsearch, hosts: [a]}
        """) == ["shipper.yaml:2: sources.containers.type: required key is missing; "
                 "expected one of: forward, tail"]


def test_the_type_key_is_not_unknown_to_a_component_without_a_type_field() -> None:
    assert problems_of(MINIMAL.replace("paths:", "path:")) == [
        "shipper.yaml:2: sources.containers.path: unknown key; did you mean 'paths'? "
        "expected one of: max_line_bytes, paths, read_from, type",
        "shipper.yaml:2: sources.containers.paths: required key is missing",
    ]


def test_at_least_one_source_and_one_output_are_required() -> None:
    assert problems_of("sources: {}\noutputs:\n") == [
        "shipper.yaml:1: sources: at least one source is required",
        "shipper.yaml:2: outputs: at least one output is required",
    ]


def test_sources_and_outputs_keys_are_required() -> None:
    assert problems_of("state_dir: /x\n") == [
        "shipper.yaml:1: sources: required key is missing",
        "shipper.yaml:1: outputs: required key is missing",
    ]


def test_the_telemetry_address_must_be_host_and_port() -> None:
    assert problems_of(MINIMAL + "telemetry:\n  listen: 24231\n") == [
        "shipper.yaml:6: telemetry.listen: expected a string, got 24231; "
        "put it in quotes to make it a string"]
    assert problems_of(MINIMAL + "telemetry:\n  listen: localhost\n") == [
        "shipper.yaml:6: telemetry.listen: expected host:port (like 127.0.0.1:24231), "
        "got 'localhost'"]


def test_the_config_file_is_not_a_key_of_the_file() -> None:
    assert problems_of(MINIMAL + "config_file: other.yaml\n")[0].startswith(
        "shipper.yaml:5: config_file: unknown key; expected one of: filters, log_level, outputs, ")


def test_problems_from_every_part_of_the_file_are_reported_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse("""\
            log_level: verbose
            shutdown_deadline_secs: soon
            sources:
              containers:
                type: tail
                paths: [/var/log/*.log]
                read_from: middle
              fluent:
                type: forward
                listen: 0.0.0.0:99999
            outputs:
              es:
                type: elasticsearch
                hosts: [a]
                password: ${ES_PASSWORD}
                buffer:
                  chunk_limit_bytes: 2XB
                  flush_interval: 5s
            """)
    assert str(caught.value) == "\n".join([
        "shipper.yaml:1: log_level: invalid value 'verbose'; "
        "expected one of: debug, info, warning, error",
        "shipper.yaml:2: shutdown_deadline_secs: invalid duration 'soon'; "
        "use seconds as a number or a duration like 250ms, 5s, 2m, 1h, 1h30m",
        "shipper.yaml:7: sources.containers.read_from: invalid value 'middle'; "
        "expected one of: head, tail",
        "shipper.yaml:10: sources.fluent.listen: the port must be between 1 and 65535, "
        "got 99999",
        "shipper.yaml:15: outputs.es.password: "
        "environment variable ES_PASSWORD is not set and has no default",
        "shipper.yaml:17: outputs.es.buffer.chunk_limit_bytes: invalid size '2XB': unknown "
        "unit 'XB'; use a byte count or a number with a unit: B, K, KB, KiB, M, MB, MiB, G, GB, "
        "GiB",
        "shipper.yaml:18: outputs.es.buffer.flush_interval: unknown key; did you mean "
        "'flush_interval_secs'? expected one of: chunk_limit_bytes, flush_interval_secs, "
        "when_full",
    ])


def test_a_yaml_syntax_error_is_a_problem_with_its_line() -> None:
    assert problems_of("sources:\n  a: [1\noutputs: {}\n") == [
        "shipper.yaml:3: <root>: invalid YAML: while parsing a flow sequence on line 2, "
        "expected ',' or ']', but got ':'"]


def test_a_value_the_yaml_layer_refused_is_reported_once() -> None:
    assert problems_of(MINIMAL + "state_dir: !!python/name:os.getcwd\n") == [
        "shipper.yaml:5: state_dir: unsupported YAML tag '!!python/name:os.getcwd'"]


def test_an_empty_file_is_a_problem() -> None:
    assert problems_of("# all commented out\n") == [
        "shipper.yaml:1: <root>: the file is empty; it needs at least 'sources' and 'outputs'"]


def test_an_unreadable_file_is_a_config_problem(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, source_types=SOURCES, output_types=OUTPUTS, environ={})
    assert str(caught.value) == f"{path}: <root>: cannot read file: No such file or directory"


def test_a_file_that_is_not_utf8_is_a_config_problem(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("state_dir: /caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, source_types=SOURCES, output_types=OUTPUTS, environ={})
    assert str(caught.value) == f"{path}: <root>: cannot read file: not UTF-8 (invalid " \
                                "continuation byte)"


def test_the_printed_agent_config_never_shows_a_secret() -> None:
    config = parse(FULL, ENV)
    assert "s3cret" not in repr(config)
    assert "'password': '<hidden>'" in repr(config)
