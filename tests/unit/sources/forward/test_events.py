"""Entries become JSON-safe records with Fluentd's time rules and resend-stable ids."""

from __future__ import annotations

import gzip
from typing import Any

import msgpack
import orjson
import pytest

from shipper.errors import InputProtocolError
from shipper.sources.forward.decoder import EventTime, parse_request, unpack_frame
from shipper.sources.forward.events import (
    NS,
    EventConverter,
    clean_list,
    clean_map,
    event_time_ns,
    sanitize_tag,
)

NOW = 1_800_000_000 * NS


def convert(message: list[object], converter: EventConverter | None = None,
            max_records: int = 1000) -> list[list]:
    frame = msgpack.packb(message, use_bin_type=True)
    request = parse_request(unpack_frame(frame), frame, 1 << 20)
    conv = converter or EventConverter(None, None, {}, clock=lambda: NOW)
    return list(conv.batches(request, max_records))


@pytest.mark.parametrize(("value", "expected"), [
    (1_700_000_000, 1_700_000_000 * NS),
    (EventTime(1_700_000_000 * NS + 5), 1_700_000_000 * NS + 5),
    (1_700_000_000.25, 1_700_000_000 * NS + 250_000_000),
    ([EventTime(7 * NS), {"meta": 1}], 7 * NS),  # protocol v1.5 metadata form
    (0, NOW), (None, NOW), (EventTime(0), NOW),
    (-5, -1), (10 ** 15, -1), (float("nan"), -1),
    ("yesterday", None), ({"t": 1}, None),
])
def test_event_times(value: object, expected: int | None) -> None:
    assert event_time_ns(value, NOW) == expected


def test_invalid_events_are_skipped_and_counted_the_rest_kept() -> None:
    entries = [[1, {"ok": 1}], [1, None], [1, "not a map"], ["bad time", {"x": 1}], [2],
               [10 ** 15, {"late": True}]]
    conv = EventConverter(None, None, {}, clock=lambda: NOW)
    [records] = convert(["tag", entries], conv)
    assert [r.body for r in records] == [{"ok": 1}, {"late": True}]
    assert records[1].time_ns == NOW  # out of range: receive time, flagged
    assert conv.skipped == {"invalid_event": 3, "nil_record": 1}
    assert conv.flagged == {"time_out_of_range": 1}


def test_bodies_become_json_safe() -> None:
    event_time = msgpack.ExtType(0, b"\0\0\0\3\0\0\0\x09")
    record = {b"bin-key": b"\xff\x00ok", 1: "int key", "nested": {"t": event_time},
              "list": [b"caf\xc3\xa9", msgpack.ExtType(5, b"\x01")], "float": 1.5}
    [[out]] = convert(["t", 1, record])
    body = out.body
    assert body == {"bin-key": "\\xff\x00ok", "1": "int key", "nested": {"t": 3},
                    "list": ["café", {"ext_type": 5, "data": "AQ=="}], "float": 1.5}
    orjson.dumps(body)  # must not raise


def test_invalid_utf8_in_strings_becomes_escaped_text() -> None:
    raw_str = b"\xa4bad\xff"[:1] + b"ba\xff\xfe"  # fixstr(4) holding invalid UTF-8
    entry = b"\x92\x01\x81\xa3log" + raw_str
    message_frame = b"\x93\xa1t\x01\x81\xa3log" + raw_str
    for frame in (message_frame,
                  msgpack.packb(["t", entry], use_bin_type=True)):
        request = parse_request(unpack_frame(frame), frame, 1 << 20)
        [[record]] = list(EventConverter(None, None, {}).batches(request, 10))
        assert record.body == {"log": "ba\\xff\\xfe"}
        orjson.dumps(record.body)


def test_clean_map_returns_plain_records_untouched() -> None:
    record = {"log": "x", "n": 1, "ok": True, "none": None}
    assert clean_map(record, fix=True) is record


def test_clean_map_keeps_clean_nested_maps_and_lists_without_copying() -> None:
    record = {"log": "x", "kubernetes": {"labels": {"app": "web"}, "ports": [80, "http"]},
              "tags": ["a", {"b": 1}]}
    assert clean_map(record, fix=True) is record
    assert clean_map(record, fix=False) is record


def test_a_dirty_value_deep_inside_is_still_cleaned() -> None:
    kubernetes = {"labels": {"app": b"web"}, "ports": [80, b"http"]}
    record = {"log": "x", "kubernetes": kubernetes, "tags": [[EventTime(5_000_000_000)]]}
    cleaned = clean_map(record, fix=False)
    assert cleaned is not record
    assert cleaned == {"log": "x", "kubernetes": {"labels": {"app": "web"},
                                                  "ports": [80, "http"]}, "tags": [[5]]}
    assert kubernetes == {"labels": {"app": b"web"}, "ports": [80, b"http"]}  # not mutated


def nest(depth: int, leaf: Any, kind: str = "map") -> Any:
    """``leaf`` inside ``depth`` maps (or lists, or alternating)."""
    value = leaf
    for level in range(depth):
        as_list = kind == "list" or (kind == "mixed" and level % 2)
        value = [value] if as_list else {"n": value}
    return value


class CountingBytes:
    """Counts how often the cleaner converts the leaf: a measure of work, not of time."""

    def __init__(self) -> None:
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        return "leaf"


@pytest.mark.parametrize("kind", ["map", "list", "mixed"])
def test_cleaning_visits_each_value_once_however_deep(kind: str) -> None:
    """Each level used to clean its child twice (check, throw away, redo): 2**depth."""
    leaf = CountingBytes()
    record = nest(20, leaf, kind)
    record = record if isinstance(record, dict) else {"n": record}
    cleaned = clean_map(record, fix=False)
    assert leaf.calls == 1
    value = cleaned
    while not isinstance(value, str):
        value = value["n"] if isinstance(value, dict) else value[0]
    assert value == "leaf"


@pytest.mark.parametrize("kind", ["map", "list", "mixed"])
def test_nesting_is_bounded(kind: str) -> None:
    assert clean_map({"n": nest(31, 1, kind)}, fix=True, depth=32)  # 32 levels in all
    with pytest.raises(InputProtocolError) as exc:
        clean_map({"n": nest(32, 1, kind)}, fix=True, depth=32)
    assert exc.value.reason == "too_deep"
    with pytest.raises(InputProtocolError):  # far past the interpreter's recursion limit
        clean_map({"n": nest(5000, b"x", kind)}, fix=False)
    with pytest.raises(InputProtocolError):
        clean_list(nest(40, 1, "list"), fix=False, depth=32)


def test_a_copied_map_keeps_its_order_and_cleans_every_later_value() -> None:
    record = {"a": "x", "b": b"\xff", "c": {"d": b"y"}, 1: "int key", "e": [b"z", 2]}
    assert clean_map(record, fix=False) == {"a": "x", "b": "\\xff", "c": {"d": "y"},
                                            "1": "int key", "e": ["z", 2]}
    record = {"a": "x", "b": b"y", "c": {"d": b"y"}, "e": [b"z", 2]}
    cleaned = clean_map(record, fix=False)
    assert list(cleaned) == ["a", "b", "c", "e"]
    assert cleaned == {"a": "x", "b": "y", "c": {"d": "y"}, "e": ["z", 2]}


def test_the_converter_refuses_records_deeper_than_its_limit() -> None:
    conv = EventConverter(None, None, {}, clock=lambda: NOW, max_depth=4)
    shallow: list[object] = ["t", [[1, nest(4, 1)]]]
    deep: list[object] = ["t", [[1, nest(5, 1)]]]
    assert convert(shallow, conv)
    with pytest.raises(InputProtocolError):
        convert(deep, conv)


def test_chunk_ids_give_stable_document_ids_and_no_chunk_gives_none() -> None:
    message = ["t", [[1, {"a": 1}], [2, {"b": 2}]], {"chunk": "abc"}]
    first = [r.doc_id for r in convert(message)[0]]
    again = [r.doc_id for r in convert(message)[0]]
    assert first == again and len(set(first)) == 2
    assert first[0].endswith("-0") and first[1].endswith("-1")
    other = [r.doc_id for r in convert(["t", [[1, {"a": 9}]], {"chunk": "abc"}])[0]]
    assert other[0] != first[0]  # a reused chunk id with other data: other ids
    assert [r.doc_id for r in convert(["t", [[1, {"a": 1}]]])[0]] == [None]


def test_large_requests_are_split_into_batches_with_continuing_ids() -> None:
    entries = b"".join(msgpack.packb([i + 1, {"i": i}]) for i in range(25))
    blob = gzip.compress(entries)
    batches = convert(["t", blob, {"compressed": "gzip", "chunk": "c"}], max_records=10)
    assert [len(b) for b in batches] == [10, 10, 5]
    ids = [r.doc_id for b in batches for r in b]
    assert [i.rsplit("-", 1)[1] for i in ids] == [f"{i:x}" for i in range(25)]


def test_metrics_and_traces_signals_are_not_stored() -> None:
    conv = EventConverter(None, None, {})
    entries = msgpack.packb([1, {"m": 1}]) * 3
    assert convert(["t", entries, {"fluent_signal": 1}], conv) == []
    assert conv.skipped == {"metrics_or_traces": 3}


def test_tags_are_rewritten_and_sanitised() -> None:
    assert sanitize_tag("app.log") == "app.log"
    assert sanitize_tag("bad tag\n\x00") == "bad_tag__"
    assert sanitize_tag("") == "_"
    assert len(sanitize_tag("x" * 5000)) == 512
    prefixed = EventConverter(None, "fwd", {})
    assert prefixed.route_tag("app") == "fwd.app"
    fixed = EventConverter("all", None, {})
    assert fixed.route_tag("app") == "all"


def test_source_keys_are_added_to_every_record() -> None:
    conv = EventConverter(None, None, {"host": "node-1", "addr": "10.0.0.1"})
    [[record]] = convert(["t", 1, {"log": "x"}], conv)
    assert record.body == {"log": "x", "host": "node-1", "addr": "10.0.0.1"}


def test_tag_key_writes_the_routing_tag_into_every_record() -> None:
    conv = EventConverter(None, "fwd", {"host": "node-1"}, tag_key="tag")
    [[first, second]] = convert(["app.web", [[1, {"log": "x"}], [2, {"tag": "spoofed"}]]],
                                conv)
    assert first.body == {"log": "x", "host": "node-1", "tag": "fwd.app.web"}
    assert second.body == {"tag": "fwd.app.web", "host": "node-1"}  # as Fluentd: tag wins
    assert first.tag == second.tag == "fwd.app.web"


def test_an_id_carried_by_an_upstream_shipper_becomes_the_document_id() -> None:
    conv = EventConverter(None, None, {}, clock=lambda: NOW, id_key="_shipper_id")
    entries = [[1, {"log": "a", "_shipper_id": "abc-1"}], [1, {"log": "b", "_shipper_id": 7}],
               [1, {"log": "c", "_shipper_id": "x" * 513}], [1, {"log": "d"}]]
    [records] = convert(["tag", entries, {"chunk": "c1"}], conv)
    assert [r.body for r in records] == [{"log": "a"}, {"log": "b"}, {"log": "c"}, {"log": "d"}]
    assert records[0].doc_id == "abc-1"
    assert records[1].doc_id is not None and records[1].doc_id.endswith("-1")
    assert records[3].doc_id is not None and records[3].doc_id.endswith("-3")
    assert conv.flagged == {"invalid_id": 2}


def test_without_an_id_key_the_field_is_ordinary_data() -> None:
    conv = EventConverter(None, None, {}, clock=lambda: NOW)
    [[record]] = convert(["tag", [[1, {"_shipper_id": "abc-1"}]]], conv)
    assert record.body == {"_shipper_id": "abc-1"}
    assert record.doc_id is None
