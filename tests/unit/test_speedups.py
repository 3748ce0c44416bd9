"""The compiled decode loops against the pure-Python reference: identical records, flags,
carried times, partial state and bulk bodies on generated lines (differential tests).

Both implementations run in one process: ``decoder._decode_py`` is the Python loop, the
``shipper._speedups`` functions are the compiled one. ``SHIPPER_REQUIRE_COMPILED=1`` (set by
``make test``) turns a missing extension into a failure instead of a skip.
"""

from __future__ import annotations

import os
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import BulkEncoder
from shipper import speedups as speedups_module
from shipper.sources.tail.formats import CriDecoder, Decoder, DockerDecoder
from shipper.sources.tail.paths import parse_path

REQUIRED = os.environ.get("SHIPPER_REQUIRE_COMPILED") == "1"

try:
    from shipper import _speedups as compiled  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the build
    compiled = None

needs_compiled = pytest.mark.skipif(compiled is None and not REQUIRED,
                                    reason="compiled extension not built")

IDENT = "0123456789abcdef"
STATIC = parse_path("/var/log/containers/web-1_shop_nginx-" + "a" * 64 + ".log",
                    "kubernetes").static_fields()
ENCODER = BulkEncoder(ElasticsearchConfig(hosts=["http://127.0.0.1:9200"]))


def test_the_compiled_path_is_active_when_required() -> None:
    """``make test`` sets SHIPPER_REQUIRE_COMPILED=1: there the extension must be in use."""
    if not REQUIRED:
        pytest.skip("SHIPPER_REQUIRE_COMPILED is not set")
    assert compiled is not None, "shipper._speedups did not build or import"
    assert speedups_module.IMPLEMENTATION == speedups_module.COMPILED
    from shipper.sources.tail import formats
    assert formats._decode_cri is compiled.decode_cri
    assert formats._decode_docker is compiled.decode_docker


def test_pure_python_is_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPPER_PURE_PYTHON", "1")
    module, reason = speedups_module._load()
    assert module is None
    assert "SHIPPER_PURE_PYTHON" in reason


# -- generated lines ---------------------------------------------------------------------

HEADS = st.sampled_from(["2024-01-01T12:00:00", "2024-02-29T23:59:59", "2023-02-29T00:00:00",
                         "2024-13-01T00:00:00", "2024-01-01T12:00:0x", "2024-01-01 12:00:00",
                         "\u0661024-01-01T12:00:00", "4048-01-01T12:00:00",
                         "0001-01-01T00:00:00"])
FRACS = st.one_of(st.from_regex(r"\A[0-9]{1,9}\Z"), st.sampled_from(
    ["", "0000000001", "12345678\u0661", "abc", "123456789"]))
ZONES = st.sampled_from(["Z", "Z", "Z", "z", "+01:00", "-23:59", "", "ZZ"])


@st.composite
def times(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 3)):  # mostly what runtimes write: UTC, 1-9 fraction digits
        head = draw(st.sampled_from(["2024-01-01T12:00:00", "2024-01-01T12:00:01",
                                     "2024-02-29T23:59:59"]))
        return head + "." + draw(st.from_regex(r"\A[0-9]{1,9}\Z")) + "Z"
    frac = draw(FRACS)
    return draw(HEADS) + ("." + frac if frac or draw(st.booleans()) else "") + draw(ZONES)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
MESSAGES = st.one_of(TEXT, st.sampled_from(["", "\n", "\r\n", "a\r", "x\n", "\x00\n",
                                            "\u2028\n", "\U0001f600\n", "\\\"/\b\f\t\n"]))


def escape_variants(encoded: bytes, choice: int) -> bytes:
    """Same JSON string, other legal spellings (\\u escapes, \\/), or an illegal one."""
    if choice == 1:
        return encoded.replace(b"\\n", b"\\u000a").replace(b"\\t", b"\\u0009")
    if choice == 2:
        return encoded.replace(b"/", b"\\/").replace(b"e", b"\\u0065")
    if choice == 3:  # uppercase hex, a surrogate pair
        return encoded.replace(b"\\n", b"\\u000A").replace(b"x", b"\\uD83D\\uDE00")
    if choice == 4:  # a lone surrogate (orjson refuses it)
        return encoded.replace(b"a", b"\\ud800", 1)
    if choice == 5:  # a raw control character (illegal in JSON)
        return encoded.replace(b"\\n", b"\n", 1)
    if choice == 6:  # a bad escape
        return encoded.replace(b"\\n", b"\\q", 1)
    return encoded


@st.composite
def docker_lines(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) < 5:  # half are lines the compiled path takes
        log = draw(MESSAGES).rstrip("\r") + "\n"
        ts = draw(st.sampled_from(["2024-01-01T12:00:00", "2024-01-01T12:00:01",
                                   "0001-01-01T00:00:00"])) + "." \
            + draw(st.from_regex(r"\A[0-9]{1,9}\Z")) + "Z"
        line = orjson.dumps({"log": log, "stream": draw(st.sampled_from(["stdout", "stderr"])),
                             "time": ts})
        return line.replace(orjson.dumps(log), escape_variants(orjson.dumps(log),
                                                               draw(st.integers(0, 3))), 1)
    log = draw(MESSAGES) + draw(st.sampled_from(["\n", "\n", "\n", "", "\r\n"]))
    stream = draw(st.sampled_from(["stdout", "stderr"] * 4 + ["stdin", "", "STDOUT"]))
    obj: dict[str, Any] = {"log": log, "stream": stream, "time": draw(times())}
    shape = draw(st.integers(0, 9))
    if shape == 1:
        obj = {"stream": stream, "log": log, "time": obj["time"]}
    elif shape == 2:
        obj["attrs"] = {"k": "v"}
    elif shape == 3:
        del obj["log"]
    elif shape == 4:
        obj["log"] = draw(st.sampled_from([None, 1, ["x"]]))
    line = orjson.dumps(obj)
    line = line.replace(orjson.dumps(log), escape_variants(orjson.dumps(log),
                                                           draw(st.integers(0, 8))), 1)
    mutation = draw(st.integers(0, 20))
    if mutation == 1:
        line = b"\0\0" + line
    elif mutation == 2:
        line = line + b" "
    elif mutation == 3:
        line = line[:draw(st.integers(0, len(line)))]
    elif mutation == 4:
        at = draw(st.integers(0, len(line)))
        line = line[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\0"])) \
            + line[at:]
    elif mutation == 5:
        line = line + b"\r"
    elif mutation == 6:
        line = line.replace(b'":"', b'": "', 1)
    elif mutation == 7:
        line = draw(st.binary(max_size=60))
    return line


@st.composite
def cri_lines(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) < 5:  # half are lines the compiled path takes
        ts = draw(st.sampled_from([b"2024-01-01T12:00:00.", b"2024-02-29T23:59:59.",
                                   b"4048-01-01T12:00:00."])) \
            + draw(st.from_regex(rb"\A[0-9]{9}\Z")) + b"Z"
        content = draw(TEXT).rstrip("\r").encode()
        return b" ".join((ts, draw(st.sampled_from([b"stdout", b"stderr"])), b"F", content))
    ts = draw(times()).encode("utf-8")
    stream = draw(st.sampled_from([b"stdout", b"stderr"] * 4 + [b"stdin", b""]))
    tag = draw(st.sampled_from([b"F"] * 6 + [b"P", b"P", b"P:x", b"F:x", b"", b"f"]))
    content = draw(st.one_of(st.binary(max_size=40), TEXT.map(lambda t: t.encode()),
                             st.sampled_from([b"", b"a\r", b" ", b"\xff", b"a b  c"])))
    line = b" ".join((ts, stream, tag, content))
    mutation = draw(st.integers(0, 16))
    if mutation == 1:
        line = b"\0" + line
    elif mutation == 2:
        line = line + b"\r"
    elif mutation == 3:
        line = line[:draw(st.integers(0, len(line)))]
    elif mutation == 4:
        line = line.replace(b" ", b"  ", 1)
    elif mutation == 5:
        line = draw(st.binary(max_size=60))
    return line


def state(decoder: Decoder) -> tuple[Any, ...]:
    groups = {stream: (g.offset, g.time_ns, g.time_str, g.carry, g.local, g.local_carry,
                       g.total, g.flags)
              for stream, g in decoder.partials.groups.items()}
    return (decoder.carry_ns, decoder.initial, decoder.used_initial, dict(decoder.flags),
            groups, decoder.safe_point(0))


def run(cls: type[Decoder], lines: list[bytes], cuts: list[int], max_bytes: int,
        use_compiled: bool) -> tuple[list[Any], list[bytes], list[Any]]:
    """Decode ``lines`` in reads cut at ``cuts``; records, bulk payloads, states per read."""
    decoder = cls(IDENT, STATIC, max_bytes, carry_ns=1_700_000_000_123_456_789)
    fast = None
    if use_compiled:
        assert compiled is not None
        fast = compiled.decode_cri if cls is CriDecoder else compiled.decode_docker
    records: list[Any] = []
    states: list[Any] = []
    offset = 0
    bounds = sorted({0, len(lines), *(c for c in cuts if c <= len(lines))})
    for lo, hi in pairwise(bounds):
        batch = lines[lo:hi]
        if fast is not None:
            out, offset = fast(decoder, batch, offset, decoder._decode_py)
        else:
            out, offset = decoder._decode_py(batch, offset)
        records.extend(out)
        states.append((offset, state(decoder)))
    records.extend(decoder.flush())
    states.append(state(decoder))
    return ([(r.body, r.time_ns, r.tag, r.doc_id) for r in records], ENCODER.encode(records),
            states)


def check(cls: type[Decoder], lines: list[bytes], cuts: list[int], max_bytes: int) -> None:
    reference = run(cls, lines, cuts, max_bytes, use_compiled=False)
    candidate = run(cls, lines, cuts, max_bytes, use_compiled=True)
    assert candidate[0] == reference[0]
    assert candidate[1] == reference[1]  # byte-identical bulk payloads
    assert candidate[2] == reference[2]  # flags, carried time, open partials after each read


DIFF = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@needs_compiled
@DIFF
@given(st.lists(docker_lines(), max_size=25), st.lists(st.integers(0, 25), max_size=4),
       st.sampled_from([16, 64, 16 * 1024]))
def test_docker_compiled_matches_python(lines: list[bytes], cuts: list[int],
                                        max_bytes: int) -> None:
    check(DockerDecoder, lines, cuts, max_bytes)


@needs_compiled
@DIFF
@given(st.lists(cri_lines(), max_size=25), st.lists(st.integers(0, 25), max_size=4),
       st.sampled_from([8, 64, 16 * 1024]))
def test_cri_compiled_matches_python(lines: list[bytes], cuts: list[int],
                                     max_bytes: int) -> None:
    check(CriDecoder, lines, cuts, max_bytes)


@needs_compiled
def test_common_lines_take_the_compiled_path() -> None:
    """The plain lines must not all fall back (else the extension would be dead weight)."""
    calls: list[int] = []

    def counting(batch: list[bytes], offset: int) -> tuple[list[Any], int]:
        calls.append(len(batch))
        return [], offset + sum(len(x) + 1 for x in batch)

    assert compiled is not None
    docker = DockerDecoder(IDENT, STATIC, 16 * 1024)
    lines = [orjson.dumps({"log": f"m{i}\\u00e9\n", "stream": "stderr",
                           "time": "2024-01-01T12:00:00.12Z"}) for i in range(50)]
    records, _ = compiled.decode_docker(docker, lines, 0, counting)
    assert len(records) == 50 and calls == []
    assert records[0].body["time"] == "2024-01-01T12:00:00.120000000Z"
    cri = CriDecoder(IDENT, STATIC, 16 * 1024)
    lines = [b"2024-01-01T12:00:00.123456789Z stdout F hello %d" % i for i in range(50)]
    records, end = compiled.decode_cri(cri, lines, 7, counting)
    assert len(records) == 50 and calls == []
    assert records[1].doc_id == f"{IDENT}-{7 + len(lines[0]) + 1:x}"
    assert end == 7 + sum(len(x) + 1 for x in lines)


def test_build_info_and_version_say_which_implementation_runs(
        capsys: pytest.CaptureFixture[str]) -> None:
    from shipper import __version__
    from shipper.cli import build_parser
    from shipper.metrics import Metrics

    value = Metrics().registry.get_sample_value(
        "shipper_build_info",
        {"version": __version__, "implementation": speedups_module.IMPLEMENTATION})
    assert value == 1
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert f"({speedups_module.IMPLEMENTATION} per-line path)" in capsys.readouterr().out


# -- bulk payloads -------------------------------------------------------------------------

K8S = {"namespace_name": "shop", "pod_name": "web-1", "labels": {"app": "web"}}
DOC_IDS = st.one_of(st.none(), st.from_regex(r"\A[0-9a-f]{16}-[0-9a-f]{1,8}\Z"),
                    st.text(max_size=12), st.sampled_from(['a"b', "a\\b", "\x7f", "é", "\x00"]))
TIMES = st.one_of(st.integers(1_500_000_000 * 10**9, 1_500_000_100 * 10**9),
                  st.integers(-10**18, 10**18), st.integers(-3 * 10**9, 3 * 10**9),
                  st.sampled_from([0, 2**63 - 1, 2**63, -1]))


@st.composite
def bulk_records(draw: st.DrawFn) -> Any:
    from shipper.record import Record

    body: dict[str, Any] = {}
    shape = draw(st.integers(0, 5))
    if shape:
        body["log"] = draw(st.text(max_size=30))  # lone surrogates: the lenient path
        body["stream"] = "stdout"
        body["kubernetes"] = K8S
    if shape == 2:
        body["@timestamp"] = "2024-01-01T00:00:00Z"
    if shape == 3:
        body["n"] = draw(st.sampled_from([1.5, None, [1, {"a": "b"}], {1: 2}]))
    return Record(body, draw(TIMES), "tag", draw(DOC_IDS))


def encoded(encoder: BulkEncoder, records: list[Any], use_compiled: bool) -> Any:
    try:
        if use_compiled:
            assert compiled is not None
            from outputs.elasticsearch.request import BodySerializer
            return compiled.encode_bulk(records, encoder._second_parts, encoder._parts_for,
                                        BodySerializer().dumps, encoder._one)
        return encoder._encode_py(records)
    except (ValueError, OverflowError, OSError) as exc:
        return type(exc)


@needs_compiled
@DIFF
@given(st.lists(bulk_records(), max_size=20), st.booleans())
def test_bulk_encode_compiled_matches_python(records: list[Any], daily: bool) -> None:
    config = ElasticsearchConfig(hosts=["http://127.0.0.1:9200"],
                                 logstash_dateformat="%Y.%m.%d" if daily else "%Y.%m.%d.%H")
    reference = encoded(BulkEncoder(config), records, use_compiled=False)
    candidate = encoded(BulkEncoder(config), records, use_compiled=True)
    assert candidate == reference


def test_encode_uses_the_compiled_loop_only_without_id_key() -> None:
    """With ``id_key`` the id comes from the body: that stays on the Python loop."""
    from shipper.record import Record

    records = [Record({"log": "x", "rid": "r-1"}, 1_700_000_000_000_000_000, "t", "d-1")]
    with_key = BulkEncoder(ElasticsearchConfig(hosts=["http://127.0.0.1:9200"], id_key="rid"))
    assert b'"_id":"r-1"' in with_key.encode(records)[0]
    assert ENCODER.encode(records) == ENCODER._encode_py(records)
    assert b'"_id":"d-1"' in ENCODER.encode(records)[0]


@needs_compiled
def test_the_compiled_records_set_every_field_of_record() -> None:
    """The extension fills a Record's slots itself: it must know every field."""
    import dataclasses

    from shipper.record import Record

    assert compiled is not None
    assert tuple(f.name for f in dataclasses.fields(Record)) == compiled.RECORD_FIELDS
