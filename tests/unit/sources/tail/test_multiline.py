"""Multi-line events: joined per stream, bounded, flags kept, checkpoint held at the start."""

from shipper.record import Record
from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.formats import CriDecoder
from shipper.sources.tail.multiline import Multiline
from shipper.sources.tail.paths import parse_path

START = r"\d{4}-\d\d-\d\d "
STATIC = parse_path("/var/log/containers/app.log", "kube").static_fields()


def rec(log: str, stream: str = "stdout", ident: str = "x-0",
        flags: list[str] | None = None) -> Record:
    body = {"log": log, "stream": stream}
    if flags:
        body["shipper"] = {"flags": flags}
    return Record(body, 1, "t", ident)


def ml(max_lines: int = 100, max_bytes: int = 10_000) -> Multiline:
    return Multiline(START, max_lines, max_bytes, [])


def test_continuation_lines_join_the_event_that_started_before_them() -> None:
    agg = ml()
    assert agg.add(rec("2024-01-01 boom", ident="a-0"), 0) is None
    assert agg.add(rec("  at Foo.bar"), 20) is None
    assert agg.add(rec("  at Baz.qux"), 35) is None
    done = agg.add(rec("2024-01-01 next", ident="a-32"), 50)
    assert done is not None and done.doc_id == "a-0"
    assert done.body["log"] == "2024-01-01 boom\n  at Foo.bar\n  at Baz.qux"
    assert agg.safe_offset(100) == 50  # the open event starts there


def test_streams_are_joined_separately() -> None:
    agg = ml()
    agg.add(rec("2024-01-01 out"), 0)
    agg.add(rec("2024-01-01 err", "stderr"), 10)
    agg.add(rec(" err more", "stderr"), 20)
    agg.add(rec(" out more"), 30)
    out = {r.body["stream"]: r.body["log"] for r in agg.flush()}
    assert out == {"stdout": "2024-01-01 out\n out more", "stderr": "2024-01-01 err\n err more"}
    assert not agg and agg.safe_offset(40) == 40


def test_max_lines_and_max_bytes_start_a_new_event() -> None:
    agg = ml(max_lines=2)
    agg.add(rec("2024-01-01 a"), 0)
    agg.add(rec(" 1"), 1)
    done = agg.add(rec(" 2"), 2)
    assert done is not None and done.body["log"] == "2024-01-01 a\n 1"
    small = ml(max_bytes=20)
    small.add(rec("2024-01-01 abcdef"), 0)  # 17 bytes
    done = small.add(rec(" toolong"), 1)
    assert done is not None and done.body["log"] == "2024-01-01 abcdef"


def test_a_head_less_first_line_still_collects_its_continuation() -> None:
    agg = ml()
    agg.add(rec("  at orphan"), 0)
    agg.add(rec("  at orphan2"), 5)
    (done,) = agg.flush()
    assert done.body["log"] == "  at orphan\n  at orphan2"


def test_flags_of_every_joined_line_are_kept() -> None:
    agg = ml()
    agg.add(rec("2024-01-01 a"), 0)
    agg.add(rec(" bad \ufffd", flags=["invalid_utf8"]), 5)
    (done,) = agg.flush()
    assert done.body["shipper"] == {"flags": ["invalid_utf8"]}


def test_the_cri_decoder_joins_stack_traces_and_holds_the_checkpoint() -> None:
    rule = MultilineConfig(start_pattern=START)
    dec = CriDecoder("abcd", STATIC, 1024, rule)
    lines = [b"2024-01-01T00:00:00.1Z stdout F 2024-01-01 error",
             b"2024-01-01T00:00:00.2Z stdout F \tat A.b(A.java:1)",
             b"2024-01-01T00:00:00.3Z stdout F 2024-01-01 fine"]
    records, end = dec.decode(lines, 0)
    assert [r.body["log"] for r in records] == ["2024-01-01 error\n\tat A.b(A.java:1)"]
    assert records[0].doc_id == "abcd-0"
    third = len(lines[0]) + len(lines[1]) + 2
    assert dec.safe_offset(end) == third
    (last,) = dec.flush_events()
    assert last.body["log"] == "2024-01-01 fine" and last.doc_id == f"abcd-{third:x}"
