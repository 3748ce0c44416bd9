"""Encoding records into bulk payloads (spec §1.1, §1.2, §1.8)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.request import (
    BulkEncoder,
    body_spans,
    decode_payload,
    join_body,
)
from shipper.record import Record, format_rfc3339_nanos


def ns(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """UTC date-time to nanoseconds since the epoch."""
    when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000


def lines(payload: bytes) -> tuple[dict[str, object], dict[str, object]]:
    assert payload.endswith(b"\n")
    action, source, rest = payload.split(b"\n")
    assert rest == b""
    return orjson.loads(action), orjson.loads(source)


def test_a_payload_is_an_action_line_and_a_source_line() -> None:
    record = Record({"log": "hello", "stream": "stdout"}, ns(2026, 11, 22, 1, 2, 3), "kube.a",
                    "abc123")
    (payload,) = BulkEncoder(ElasticsearchConfig()).encode([record])
    action, source = lines(payload)
    assert action == {"create": {"_index": "logstash-2026.11.22", "_id": "abc123"}}
    assert source == {"@timestamp": "2026-11-22T01:02:03.000000000Z", "log": "hello",
                      "stream": "stdout"}


def test_the_id_is_left_out_when_the_record_has_none() -> None:
    record = Record({"log": "x"}, ns(2026, 1, 1), "t")
    action, _ = lines(BulkEncoder(ElasticsearchConfig()).encode([record])[0])
    assert action == {"create": {"_index": "logstash-2026.01.01"}}


def test_the_index_follows_the_utc_day_of_each_record() -> None:
    encoder = BulkEncoder(ElasticsearchConfig())
    records = [
        Record({}, ns(2026, 11, 22, 23, 59, 59) + 999_999_999, "t", "a"),
        Record({}, ns(2026, 11, 23), "t", "b"),
        Record({}, ns(2026, 11, 22, 12), "t", "c"),
        Record({}, ns(1999, 12, 31, 23, 59, 59), "t", "d"),
    ]
    indices = [lines(p)[0]["create"]["_index"] for p in encoder.encode(records)]  # type: ignore[index]
    assert indices == ["logstash-2026.11.22", "logstash-2026.11.23", "logstash-2026.11.22",
                       "logstash-1999.12.31"]


def test_prefix_separator_and_format_are_configurable_and_lower_cased() -> None:
    config = ElasticsearchConfig(logstash_prefix="K8s", logstash_prefix_separator="_",
                                 logstash_dateformat="%Y.%m")
    encoder = BulkEncoder(config)
    assert encoder.index_name(ns(2026, 2, 3)) == "k8s_2026.02"


def test_an_hourly_format_is_not_cached_per_day() -> None:
    encoder = BulkEncoder(ElasticsearchConfig(logstash_dateformat="%Y.%m.%d.%H"))
    first, second = encoder.encode([Record({}, ns(2026, 1, 1, 1), "t"),
                                    Record({}, ns(2026, 1, 1, 2), "t")])
    assert lines(first)[0]["create"]["_index"] == "logstash-2026.01.01.01"  # type: ignore[index]
    assert lines(second)[0]["create"]["_index"] == "logstash-2026.01.01.02"  # type: ignore[index]


def test_a_fixed_index_is_used_without_logstash_format() -> None:
    config = ElasticsearchConfig(logstash_format=False, index="Cluster-Logs",
                                 write_operation="index")
    encoder = BulkEncoder(config)
    action, _ = lines(encoder.encode([Record({}, ns(2026, 1, 1), "t", "i")])[0])
    assert action == {"index": {"_index": "cluster-logs", "_id": "i"}}
    assert encoder.index_name(0) == "cluster-logs"


def test_a_fixed_index_is_required_without_logstash_format() -> None:
    with pytest.raises(ValueError, match="index is required"):
        BulkEncoder(ElasticsearchConfig(logstash_format=False))


def test_timestamp_has_nanoseconds_and_matches_the_shared_formatter() -> None:
    time_ns = ns(2026, 11, 22, 1, 2, 3) + 456_789_012
    _, source = lines(BulkEncoder(ElasticsearchConfig()).encode([Record({}, time_ns, "t")])[0])
    assert source == {"@timestamp": "2026-11-22T01:02:03.456789012Z"}
    assert source["@timestamp"] == format_rfc3339_nanos(time_ns)


def test_an_existing_timestamp_is_kept() -> None:
    body = {"@timestamp": "2020-01-01T00:00:00Z", "log": "x"}
    _, source = lines(BulkEncoder(ElasticsearchConfig()).encode(
        [Record(body, ns(2026, 1, 1), "t")])[0])
    assert source == body


def test_the_record_body_is_not_modified() -> None:
    body = {"log": "x", "time": "2026-01-01T00:00:00.000000000Z", "tag": "kube.a"}
    BulkEncoder(ElasticsearchConfig()).encode([Record(body, ns(2026, 1, 1), "kube.a")])
    assert body == {"log": "x", "time": "2026-01-01T00:00:00.000000000Z", "tag": "kube.a"}


def test_id_key_takes_the_id_from_the_record() -> None:
    encoder = BulkEncoder(ElasticsearchConfig(id_key="request_id"))
    with_key, without_key = encoder.encode([
        Record({"request_id": 42}, ns(2026, 1, 1), "t", "origin-id"),
        Record({}, ns(2026, 1, 1), "t", "origin-id")])
    assert lines(with_key)[0]["create"]["_id"] == "42"  # type: ignore[index]
    assert lines(without_key)[0]["create"]["_id"] == "origin-id"  # type: ignore[index]


def test_values_orjson_refuses_are_still_shipped() -> None:
    body: dict[Any, Any] = {"big": 2**70, 3: "non-str key", "when": datetime(2026, 1, 1),
                            "log": "x"}
    (payload,) = BulkEncoder(ElasticsearchConfig()).encode([Record(body, ns(2026, 1, 1), "t")])
    source = json.loads(payload.split(b"\n")[1])
    assert source["log"] == "x"
    assert source["big"] == 2**70
    assert source["3"] == "non-str key"
    assert source["when"] == "2026-01-01 00:00:00"


def test_special_characters_stay_on_one_line() -> None:
    body = {"log": 'line with "quotes"\nand a newline\r\tand unicode é ✓'}
    (payload,) = BulkEncoder(ElasticsearchConfig()).encode([Record(body, ns(2026, 1, 1), "t")])
    assert payload.count(b"\n") == 2
    assert lines(payload)[1]["log"] == body["log"]


def test_bodies_never_exceed_the_limit_and_keep_order() -> None:
    payloads = [bytes([65 + i]) * 10 for i in range(7)]
    spans = body_spans(payloads, 25)
    assert spans == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert all(sum(map(len, payloads[s:e])) <= 25 for s, e in spans)


def test_a_payload_over_the_limit_travels_alone() -> None:
    payloads = [b"a" * 5, b"b" * 50, b"c" * 5]
    assert body_spans(payloads, 20) == [(0, 1), (1, 2), (2, 3)]


def test_everything_fits_in_one_body_when_small() -> None:
    assert body_spans([b"x\n"] * 3, 1000) == [(0, 3)]
    assert body_spans([], 1000) == []


def test_a_joined_body_is_gzipped_when_asked() -> None:
    payloads = [b"a" * 100] * 4
    assert join_body(payloads) == b"a" * 400
    assert gzip.decompress(join_body(payloads, compress=True)) == b"a" * 400


def test_a_payload_decodes_back_for_the_dead_letter_store() -> None:
    record = Record({"log": "x"}, ns(2026, 11, 22), "t", "id-1")
    (payload,) = BulkEncoder(ElasticsearchConfig()).encode([record])
    assert decode_payload(payload) == {
        "index": "logstash-2026.11.22", "_id": "id-1", "op": "create",
        "record": {"@timestamp": "2026-11-22T00:00:00.000000000Z", "log": "x"}}


def test_an_undecodable_payload_is_described_raw() -> None:
    assert decode_payload(b"garbage") == {"index": None, "_id": None, "raw": "garbage"}


def _expected(record: Record, index: str) -> bytes:
    """The payload spelled out with plain ``orjson.dumps``, for comparison with the fast path."""
    action = {"create": {"_index": index, "_id": record.doc_id}}
    source = {"@timestamp": format_rfc3339_nanos(record.time_ns), **record.body}
    return orjson.dumps(action) + b"\n" + orjson.dumps(source) + b"\n"


def test_a_shared_kubernetes_map_is_encoded_as_if_serialized_per_record() -> None:
    shared = {"namespace_name": "shop", "labels": {"app": "catalog"}, "pod_name": "p-1"}
    other = {"namespace_name": "istio-system", "labels": {}}
    records = [Record({"log": f"line {i}", "kubernetes": shared if i % 3 else other,
                       "docker": {"container_id": "c1"}}, ns(2026, 11, 22, 1, 2, i) + i, "t",
                      f"id-{i}") for i in range(7)]
    bodies_before = [dict(r.body) for r in records]
    payloads = BulkEncoder(ElasticsearchConfig()).encode(records)
    assert payloads == [_expected(r, "logstash-2026.11.22") for r in records]
    # The map is swapped for its serialized form only during the call.
    assert [r.body for r in records] == bodies_before
    assert all(type(r.body["kubernetes"]) is dict for r in records)


def test_a_map_changed_between_batches_is_serialized_again() -> None:
    shared: dict[str, Any] = {"namespace_name": "shop"}
    encoder = BulkEncoder(ElasticsearchConfig())
    record = Record({"log": "x", "kubernetes": shared}, ns(2026, 1, 1), "t", "a")
    (first,) = encoder.encode([record])
    shared["pod_name"] = "later"
    (second,) = encoder.encode([record])
    assert lines(first)[1]["kubernetes"] == {"namespace_name": "shop"}
    assert lines(second)[1]["kubernetes"] == {"namespace_name": "shop", "pod_name": "later"}


def test_a_kubernetes_map_orjson_refuses_takes_the_fallback_path() -> None:
    odd = {"labels": {1: "numeric key"}, "big": 2**70}
    record = Record({"log": "x", "kubernetes": odd}, ns(2026, 1, 1), "t", "a")
    (payload,) = BulkEncoder(ElasticsearchConfig()).encode([record])
    source = json.loads(payload.split(b"\n")[1])
    assert source["kubernetes"] == {"labels": {"1": "numeric key"}, "big": 2**70}
    assert record.body["kubernetes"] is odd


def test_payloads_with_and_without_ids_timestamps_and_bodies_mix_in_one_batch() -> None:
    t = ns(2026, 3, 4, 5, 6, 7) + 123
    records = [
        Record({"log": "a"}, t, "t", "id-a"),
        Record({"log": "b"}, t, "t"),
        Record({}, t, "t", "id-c"),
        Record({"log": "d", "@timestamp": "2020-01-01T00:00:00Z"}, t, "t", "id-d"),
        Record({"log": "e"}, t + 1_000_000_000, "t", "id-e"),
    ]
    out = [lines(p) for p in BulkEncoder(ElasticsearchConfig()).encode(records)]
    assert [a["create"].get("_id") for a, _ in out] == [  # type: ignore[attr-defined]
        "id-a", None, "id-c", "id-d", "id-e"]
    assert [s["@timestamp"] for _, s in out] == [
        "2026-03-04T05:06:07.000000123Z", "2026-03-04T05:06:07.000000123Z",
        "2026-03-04T05:06:07.000000123Z", "2020-01-01T00:00:00Z",
        "2026-03-04T05:06:08.000000123Z"]
    assert out[2][1] == {"@timestamp": "2026-03-04T05:06:07.000000123Z"}
