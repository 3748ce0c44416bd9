"""Encoding records into Logz.io lines, truncation with flags, and body building."""

from __future__ import annotations

import gzip
from typing import Any

import orjson

from outputs.logzio.config import LogzioConfig
from outputs.logzio.request import (
    LineEncoder,
    body_size,
    check_line,
    decode_payload,
    fit_line,
    group_bodies,
    join_body,
)
from shipper.record import Record

T0 = 1_795_305_600 * 1_000_000_000 + 123_456_789  # 2026-11-22T00:00:00.123456789Z


def encode_one(body: dict[str, Any], **settings: Any) -> tuple[bytes, dict[str, Any]]:
    encoder = LineEncoder(LogzioConfig(token="t", **settings))
    (payload,) = encoder.encode([Record(body, T0, "kube.var.log.containers.web")])
    return payload, orjson.loads(payload)


def test_a_record_gets_the_logzio_k8s_fields() -> None:
    payload, line = encode_one({"log": "GET /health", "stream": "stdout",
                                "kubernetes": {"pod_name": "web-1"}})
    assert line == {"message": "GET /health", "stream": "stdout",
                    "kubernetes": {"pod_name": "web-1"}, "type": "k8s",
                    "fluentd_tags": "kube.var.log.containers.web",
                    "@timestamp": "2026-11-22T00:00:00.123Z"}
    assert b"\n" not in payload


def test_fields_the_record_already_has_win() -> None:
    _, line = encode_one({"log": "raw", "message": "parsed", "type": "envoy",
                          "fluentd_tags": "mine", "@timestamp": "2020-01-01T00:00:00Z"})
    assert line["message"] == "parsed"
    assert line["log"] == "raw"  # nothing is lost when both exist
    assert (line["type"], line["fluentd_tags"], line["@timestamp"]) == \
        ("envoy", "mine", "2020-01-01T00:00:00Z")


def test_configured_type_and_no_tag() -> None:
    _, line = encode_one({"log": "x"}, log_type="istio", tag_key=None)
    assert line["type"] == "istio"
    assert "fluentd_tags" not in line


def test_the_record_body_is_not_modified() -> None:
    body = {"log": "x" * 2000, "stream": "stdout"}
    encode_one(body, max_line_bytes=1024)
    assert body == {"log": "x" * 2000, "stream": "stdout"}


def test_an_oversized_message_is_truncated_and_flagged_with_its_original_length() -> None:
    payload, line = encode_one({"log": "é" * 3000, "stream": "stdout"}, max_line_bytes=2048)
    assert len(payload) <= 2048
    assert line["shipper"] == {"flags": ["truncated"], "original_bytes": 6000}
    assert line["message"] == "é" * len(line["message"])  # cut on a character boundary
    assert len(payload) > 1900  # nothing cut beyond what was needed (within the margin)


def test_truncation_keeps_existing_flags_and_the_larger_original_length() -> None:
    body = {"log": "a" * 5000, "shipper": {"flags": ["invalid_utf8", "truncated"],
                                           "original_bytes": 90000}}
    _, line = encode_one(body, max_line_bytes=1500)
    assert line["shipper"] == {"flags": ["invalid_utf8", "truncated"], "original_bytes": 90000}


def test_escapes_are_accounted_for_when_cutting() -> None:
    payload, _ = encode_one({"log": '"\x01\\' * 3000}, max_line_bytes=4096)
    assert len(payload) <= 4096


def test_a_record_that_cannot_fit_keeps_its_whole_line_for_the_dead_letter_store() -> None:
    labels = {f"label-{i}": "v" * 50 for i in range(100)}
    body = {"log": "short", "kubernetes": {"labels": labels}}
    payload, line = encode_one(body, max_line_bytes=2048)
    assert len(payload) > 2048
    assert line["message"] == "short"
    assert "shipper" not in line
    error = check_line(payload, 2048)
    assert error is not None and error.type == "line_too_large"
    assert decode_payload(payload)["record"]["kubernetes"]["labels"] == labels


def test_fit_line_cuts_log_when_message_is_not_text() -> None:
    doc = {"message": {"structured": True}, "log": "z" * 5000}
    line = fit_line(doc, 1200)
    assert line is not None and len(line) <= 1200
    assert orjson.loads(line)["message"] == {"structured": True}
    assert doc["log"] == "z" * 5000


def test_encoder_counts_truncations() -> None:
    encoder = LineEncoder(LogzioConfig(token="t", max_line_bytes=1024))
    records = [Record({"log": "y" * n}, T0, "t") for n in (10, 5000, 20, 7000)]
    encoder.encode(records)
    assert encoder.truncated == 2


def test_unserializable_values_still_make_one_json_object() -> None:
    payload, line = encode_one({"log": "x", 3: "three", "obj": object()})
    assert line["3"] == "three"
    assert line["obj"].startswith("<object")
    assert check_line(payload, 500_000) is None


def test_check_line_guards_framing() -> None:
    assert check_line(b'{"message":"ok"}', 100) is None
    assert check_line(b"   ", 100).type == "empty_line"
    assert check_line(b'{"a":1}\n{"b":2}', 100).type == "malformed_line"
    assert check_line(b"[1,2]", 100).type == "malformed_line"


def test_bodies_stay_within_the_limit_counting_separators() -> None:
    sizes = [10, 10, 10, 10, 10]
    assert group_bodies(sizes, 32) == [(0, 3), (3, 5)]  # 10+1+10+1+10 = 32
    assert group_bodies(sizes, 31) == [(0, 2), (2, 4), (4, 5)]
    assert group_bodies([50, 5], 20) == [(0, 1), (1, 2)]  # an oversized one stands alone
    assert group_bodies([], 10) == []
    payloads = [b"x" * n for n in (7, 3, 12, 1, 9, 30)]
    for start, end in group_bodies([len(p) for p in payloads], 30):
        assert body_size(payloads[start:end]) <= 30


def test_body_has_no_trailing_newline_and_gzips_on_request() -> None:
    payloads = [b'{"a":1}', b'{"b":2}']
    assert join_body(payloads) == b'{"a":1}\n{"b":2}'
    assert body_size(payloads) == len(join_body(payloads))
    assert gzip.decompress(join_body(payloads, compress=True)) == b'{"a":1}\n{"b":2}'


def test_decode_payload_keeps_undecodable_bytes() -> None:
    assert decode_payload(b"not json")["raw"] == "not json"
