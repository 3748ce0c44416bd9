"""Messages split by a rotation: the next generation finishes them under the first id."""

from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.formats import CriDecoder, DockerDecoder
from shipper.sources.tail.paths import parse_path

STATIC = parse_path("/var/log/containers/app.log", "kube").static_fields()
HANDOFF = object()


def test_a_cri_partial_line_is_finished_by_the_next_generation() -> None:
    old = CriDecoder("old0", STATIC, 1024)
    records, _ = old.decode([b"2024-01-01T00:00:00.1Z stdout F done",
                             b"2024-01-01T00:00:00.2Z stdout P first half "], 0)
    assert [r.body["log"] for r in records] == ["done"]
    start = len(b"2024-01-01T00:00:00.1Z stdout F done") + 1
    assert old.safe_offset(1000) == start
    groups, events = old.take_pending()
    new = CriDecoder("new0", STATIC, 1024)
    assert new.adopt_pending(groups, events, HANDOFF) == []
    assert new.safe_offset(0) == 0 and new.partials.safe_offset(50) == 50
    records, end = new.decode([b"2024-01-01T00:00:00.3Z stdout F second half"], 0)
    (joined,) = records
    assert joined.body["log"] == "first half second half"
    assert joined.doc_id == f"old0-{start:x}"  # named by where it started
    assert new.done_handoffs == [HANDOFF]
    assert new.safe_offset(end) == end


def test_the_next_generation_holds_its_checkpoint_at_the_continued_piece() -> None:
    old = CriDecoder("old0", STATIC, 1024)
    old.decode([b"2024-01-01T00:00:00.2Z stdout P a"], 0)
    new = CriDecoder("new0", STATIC, 1024)
    new.adopt_pending(*old.take_pending(), HANDOFF)
    new.decode([b"2024-01-01T00:00:00.3Z stdout P b"], 0)
    assert new.safe_offset(100) == 0


def test_a_multiline_event_continues_in_the_next_generation() -> None:
    rule = MultilineConfig(start_pattern=r"\d{4} ")
    old = CriDecoder("old0", STATIC, 1024, rule)
    old.decode([b"2024-01-01T00:00:00.1Z stdout F 2024 Exception", b"2024-01-01T00:00:00.2Z "
                b"stdout F   at one"], 0)
    new = CriDecoder("new0", STATIC, 1024, rule)
    new.adopt_pending(*old.take_pending(), HANDOFF)
    records, _ = new.decode([b"2024-01-01T00:00:00.3Z stdout F   at two",
                             b"2024-01-01T00:00:00.4Z stdout F 2024 next"], 0)
    (trace,) = records
    assert trace.body["log"] == "2024 Exception\n  at one\n  at two"
    assert trace.doc_id == "old0-0"
    assert new.done_handoffs == [HANDOFF]


def test_an_invalid_utf8_flag_of_a_docker_piece_survives_joining() -> None:
    dec = DockerDecoder("d0", STATIC, 1024)
    piece = b'{"log":"bad \xff piece ","stream":"stdout","time":"2024-01-01T00:00:00.1Z"}'
    rest = b'{"log":"rest\\n","stream":"stdout","time":"2024-01-01T00:00:00.2Z"}'
    records, _ = dec.decode([piece, rest], 0)
    (record,) = records
    assert record.body["log"] == "bad \ufffd piece rest"
    assert record.body["shipper"]["flags"] == ["invalid_utf8"]
    assert dec.flags == {"invalid_utf8": 1}
