"""Type hints drive the conversion of YAML into config dataclasses, and every problem is named."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from textwrap import dedent
from typing import Any, Literal

import pytest

from shipper.config import checks
from shipper.config.schema import convert
from shipper.config.types import Bytes, Seconds
from shipper.config.yamltree import parse_yaml

MIB = 1024 * 1024


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"


@dataclass(frozen=True)
class Buffer:
    """How records wait for delivery."""

    chunk_limit_bytes: Bytes = 2 * MIB
    flush_interval_secs: Seconds = 5.0
    when_full: Literal["block", "drop_newest"] = "block"


@dataclass(frozen=True)
class Server:
    """A destination."""

    host: str
    port: int = field(default=9200, metadata={"check": checks.port})
    tls: bool = False
    weight: float = 1.0
    api_key: str | None = field(default=None, repr=False, metadata={"secret": True})
    tags: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    compression: Compression = Compression.NONE
    buffer: Buffer = field(default_factory=Buffer)
    max_bytes: Bytes | None = None
    settings: Any = None


@dataclass(frozen=True)
class Range:
    """Validates across fields in __post_init__."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not be above high ({self.high})")


@dataclass(frozen=True)
class Cluster:
    """Nesting through lists and mappings."""

    servers: list[Server]
    by_zone: dict[str, Server] = field(default_factory=dict)
    ranges: list[Range] = field(default_factory=list)


@dataclass(frozen=True)
class Login:
    """Validates across fields with a validate() method."""

    user: str | None = None
    password: str | None = field(default=None, repr=False, metadata={"secret": True})
    realm: str = "default"

    def validate(self) -> list[str]:
        problems = []
        if self.password is not None and self.user is None:
            problems.append("password: set user too")
        if self.realm == self.user:
            problems.append("the realm and the user must differ")
        return problems


@dataclass(frozen=True)
class Limits:
    """Validates several fields in __post_init__, messages joined by '; '."""

    low: int = 1
    high: int = 2

    def __post_init__(self) -> None:
        problems = [f"{name}: must be > 0" for name in ("low", "high")
                    if getattr(self, name) <= 0]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Service:
    """Holds the cross-field validated parts."""

    login: Login = field(default_factory=Login)
    limits: Limits = field(default_factory=Limits)


def load(cls: type, text: str, environ: dict[str, str] | None = None) -> Any:
    tree, problems = parse_yaml(dedent(text), "c.yaml")
    assert problems == []
    value, problems = convert(cls, tree, file="c.yaml", environ=environ or {})
    assert [str(p) for p in problems] == []
    return value


def problems_of(cls: type, text: str, environ: dict[str, str] | None = None) -> list[str]:
    tree, problems = parse_yaml(dedent(text), "c.yaml")
    assert problems == []
    value, problems = convert(cls, tree, file="c.yaml", environ=environ or {})
    assert value is None
    return [str(p) for p in problems]


def test_a_valid_mapping_becomes_the_dataclass_with_defaults_filled_in() -> None:
    server = load(Server, """\
        host: es.logging
        port: 9243
        tls: true
        weight: 2
        tags: [a, b]
        headers: {X-Scope: logs}
        fallbacks: [es2, es3]
        compression: gzip
        buffer:
          chunk_limit_bytes: 512KiB
          flush_interval_secs: 1m30s
        max_bytes: 10MB
        settings: {refresh: 1s, replicas: [1, 2]}
        """)
    assert server == Server(
        host="es.logging", port=9243, tls=True, weight=2.0, tags=["a", "b"],
        headers={"X-Scope": "logs"}, fallbacks=("es2", "es3"), compression=Compression.GZIP,
        buffer=Buffer(chunk_limit_bytes=512 * 1024, flush_interval_secs=90.0),
        max_bytes=10_000_000, settings={"refresh": "1s", "replicas": [1, 2]})
    assert isinstance(server.weight, float)


def test_sizes_and_durations_also_accept_plain_numbers() -> None:
    assert load(Buffer, "chunk_limit_bytes: 1024\nflush_interval_secs: 2.5\n") == Buffer(
        chunk_limit_bytes=1024, flush_interval_secs=2.5)


def test_null_for_a_nested_mapping_or_collection_means_empty() -> None:
    server = load(Server, """\
        host: h
        buffer:
        tags:
        headers: ~
        """)
    assert server == Server(host="h")


def test_an_unknown_key_suggests_the_closest_name_and_lists_all() -> None:
    assert problems_of(Buffer, "flush_intervl_secs: 5s\n") == [
        "c.yaml:1: flush_intervl_secs: unknown key; did you mean 'flush_interval_secs'? "
        "expected one of: chunk_limit_bytes, flush_interval_secs, when_full"]


def test_an_unknown_key_with_no_close_name_only_lists_the_keys() -> None:
    assert problems_of(Buffer, "colour: blue\n") == [
        "c.yaml:1: colour: unknown key; "
        "expected one of: chunk_limit_bytes, flush_interval_secs, when_full"]


def test_a_missing_required_key_is_reported_on_the_line_of_its_parent_key() -> None:
    assert problems_of(Cluster, """\
        by_zone:
          west:
            port: 9200
        servers: []
        """) == ["c.yaml:2: by_zone.west.host: required key is missing"]


@pytest.mark.parametrize(("text", "problem"), [
    ("host: h\nport: abc", "c.yaml:2: port: expected an integer, got 'abc'"),
    ("host: h\nport: '9200'", "c.yaml:2: port: expected an integer, got '9200'"),
    ("host: h\nport: true", "c.yaml:2: port: expected an integer, got true"),
    ("host: h\nport: 1.5", "c.yaml:2: port: expected an integer, got 1.5"),
    ("host: h\ntls: yes", "c.yaml:2: tls: expected true or false, got 'yes'"),
    ("host: h\ntls: 1", "c.yaml:2: tls: expected true or false, got 1"),
    ("host: h\nweight: fast", "c.yaml:2: weight: expected a number, got 'fast'"),
    ("host: h\nweight: .inf", "c.yaml:2: weight: expected a finite number, got inf"),
    ("host: 2024", "c.yaml:1: host: expected a string, got 2024; "
                   "put it in quotes to make it a string"),
    ("host: [a]", "c.yaml:1: host: expected a string, got a list"),
    ("host:", "c.yaml:1: host: expected a string, got null"),
    ("host: h\ntags: a", "c.yaml:2: tags: expected a list, got 'a'"),
    ("host: h\ntags: [a, 1]", "c.yaml:2: tags[1]: expected a string, got 1; "
                              "put it in quotes to make it a string"),
    ("host: h\nheaders: [a]", "c.yaml:2: headers: expected a mapping, got a list"),
    ("host: h\nbuffer: big", "c.yaml:2: buffer: expected a mapping, got 'big'"),
    ("host: h\ncompression: zip", "c.yaml:2: compression: invalid value 'zip'; "
                                   "did you mean 'gzip'? expected one of: none, gzip"),
    ("host: h\nmax_bytes: 1.5", "c.yaml:2: max_bytes: expected a size in bytes (an integer or "
                                 "a string like 2MiB), got 1.5"),
    ("host: h\nmax_bytes: -1", "c.yaml:2: max_bytes: invalid size -1: must not be negative"),
])
def test_a_value_of_the_wrong_type_is_named_with_what_was_expected(text: str,
                                                                    problem: str) -> None:
    assert problems_of(Server, text + "\n") == [problem]


def test_a_bad_size_is_reported_with_the_units_it_accepts() -> None:
    assert problems_of(Buffer, "chunk_limit_bytes: 2 megs\n") == [
        "c.yaml:1: chunk_limit_bytes: invalid size '2 megs': unknown unit 'megs'; "
        "use a byte count or a number with a unit: B, K, KB, KiB, M, MB, MiB, G, GB, GiB"]


def test_a_bad_duration_is_reported_with_examples() -> None:
    assert problems_of(Buffer, "flush_interval_secs: 5 sec\n") == [
        "c.yaml:1: flush_interval_secs: invalid duration '5 sec'; "
        "use seconds as a number or a duration like 250ms, 5s, 2m, 1h, 1h30m"]


def test_a_bad_literal_suggests_the_closest_allowed_value() -> None:
    assert problems_of(Buffer, "when_full: blok\n") == [
        "c.yaml:1: when_full: invalid value 'blok'; did you mean 'block'? "
        "expected one of: block, drop_newest"]


def test_a_check_in_the_field_metadata_reports_its_message() -> None:
    assert problems_of(Server, "host: h\nport: 99999\n") == [
        "c.yaml:2: port: must be between 1 and 65535, got 99999"]


def test_a_value_error_from_post_init_is_reported_on_the_mapping() -> None:
    assert problems_of(Cluster, """\
        servers: []
        ranges:
          - low: 1
            high: 2
          - low: 5
            high: 3
        """) == ["c.yaml:5: ranges[1]: low (5) must not be above high (3)"]


def test_problems_from_validate_are_reported_on_the_key_they_name() -> None:
    assert problems_of(Service, """\
        login:
          realm: ops
          password: hunter2
        """) == ["c.yaml:3: login.password: set user too"]
    assert problems_of(Service, """\
        login:
          user: ops
          realm: ops
        """) == ["c.yaml:1: login: the realm and the user must differ"]


def test_field_messages_joined_in_a_value_error_are_reported_one_by_one() -> None:
    assert problems_of(Service, """\
        limits:
          low: 0
          high: -1
        """) == ["c.yaml:2: limits.low: must be > 0", "c.yaml:3: limits.high: must be > 0"]


def test_a_secret_value_is_never_shown_in_a_problem() -> None:
    problems = problems_of(Server, "host: h\napi_key: 123456\n")
    assert problems == ["c.yaml:2: api_key: expected a string, got a number (secret, not shown); "
                        "put it in quotes to make it a string"]
    assert "123456" not in problems[0]


def test_every_problem_is_reported_together_in_line_order() -> None:
    assert problems_of(Cluster, """\
        servers:
          - host: a
            port: x
          - prot: 1
        by_zone:
          east:
            host: b
            buffer:
              when_full: never
              chunk_limit_bytes: lots
        extra: 1
        """) == [
        "c.yaml:3: servers[0].port: expected an integer, got 'x'",
        "c.yaml:4: servers[1].prot: unknown key; did you mean 'port'? expected one of: api_key, "
        "buffer, compression, fallbacks, headers, host, max_bytes, port, settings, tags, tls, "
        "weight",
        "c.yaml:4: servers[1].host: required key is missing",
        "c.yaml:9: by_zone.east.buffer.when_full: invalid value 'never'; "
        "expected one of: block, drop_newest",
        "c.yaml:10: by_zone.east.buffer.chunk_limit_bytes: invalid size 'lots'; use a byte count "
        "or a number with a unit: B, K, KB, KiB, M, MB, MiB, G, GB, GiB",
        "c.yaml:11: extra: unknown key; expected one of: by_zone, ranges, servers",
    ]


def test_a_root_that_is_not_a_mapping_is_a_problem() -> None:
    assert problems_of(Buffer, "- a\n- b\n") == [
        "c.yaml:1: <root>: expected a mapping, got a list"]


# -- ${VAR} interpolation -----------------------------------------------------------------------

ENV = {"PORT": "9243", "TLS": "true", "WEIGHT": "0.5", "HOST": "es.logging", "PIN": "0042",
       "SIZE": "64KiB", "EVERY": "250ms", "MODE": "drop_newest", "KEY": "s3cret!"}


def test_an_interpolated_value_is_read_again_as_the_target_type() -> None:
    server = load(Server, """\
        host: ${HOST}
        port: ${PORT}
        tls: "${TLS}"
        weight: ${WEIGHT}
        api_key: ${KEY}
        tags: ["${PIN}", "${TLS}"]
        buffer:
          chunk_limit_bytes: ${SIZE}
          flush_interval_secs: ${EVERY}
          when_full: ${MODE}
        settings: {pin: "${PIN}"}
        """, ENV)
    assert server == Server(
        host="es.logging", port=9243, tls=True, weight=0.5, api_key="s3cret!",
        tags=["0042", "true"], settings={"pin": "0042"},
        buffer=Buffer(chunk_limit_bytes=64 * 1024, flush_interval_secs=0.25,
                      when_full="drop_newest"))


def test_defaults_apply_when_the_variable_is_unset_or_empty() -> None:
    server = load(Server, """\
        host: ${HOST:-localhost}
        port: ${PORT:-9200}
        tls: ${TLS:-false}
        """, {"HOST": ""})
    assert (server.host, server.port, server.tls) == ("localhost", 9200, False)


def test_an_empty_interpolated_value_for_an_optional_field_means_unset() -> None:
    server = load(Server, "host: h\napi_key: ${API_KEY:-}\nmax_bytes: ${MAX:-}\n")
    assert (server.api_key, server.max_bytes) == (None, None)


def test_a_double_dollar_brace_is_kept_as_literal_text() -> None:
    server = load(Server, "host: $${HOST}-${HOST}\n", ENV)
    assert server.host == "${HOST}-es.logging"


def test_a_missing_variable_without_default_names_the_variable_and_the_key() -> None:
    assert problems_of(Server, """\
        host: https://${ES_HOST}:${ES_PORT}
        port: ${PORT}
        """) == [
        "c.yaml:1: host: environment variable ES_HOST is not set and has no default",
        "c.yaml:1: host: environment variable ES_PORT is not set and has no default",
        "c.yaml:2: port: environment variable PORT is not set and has no default",
    ]


def test_a_malformed_reference_is_a_problem() -> None:
    assert problems_of(Server, "host: ${ES HOST}\n") == [
        "c.yaml:1: host: invalid reference '${ES HOST}'; "
        "write ${NAME} or ${NAME:-default}, or $${ for a literal ${"]


def test_an_interpolated_value_of_the_wrong_type_says_it_came_from_the_environment() -> None:
    assert problems_of(Server, "host: h\nport: ${HOST}\ntls: ${PORT}\n", ENV) == [
        "c.yaml:2: port: expected an integer, got 'es.logging' "
        "(after substituting environment variables)",
        "c.yaml:3: tls: expected true or false, got '9243' "
        "(after substituting environment variables)",
    ]


@dataclass(frozen=True)
class Pin:
    """A secret that is not a string."""

    code: int = field(default=0, repr=False, metadata={"secret": True})


def test_an_interpolated_secret_is_not_shown_either() -> None:
    assert problems_of(Pin, "code: ${KEY}\n", ENV) == [
        "c.yaml:1: code: expected an integer, got a string (secret, not shown) "
        "(after substituting environment variables)"]


# -- programming errors -------------------------------------------------------------------------

@dataclass(frozen=True)
class Ambiguous:
    value: int | str = 0


def test_a_union_other_than_optional_is_a_programming_error() -> None:
    tree, _ = parse_yaml("value: 1\n", "c.yaml")
    with pytest.raises(TypeError) as caught:
        convert(Ambiguous, tree, file="c.yaml", environ={})
    assert str(caught.value) == ("unsupported config type int | str: "
                                 "only X | None unions are supported")
