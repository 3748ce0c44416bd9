"""Classifying canned ``_bulk`` responses (spec §1.3-§1.5)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import orjson

from outputs.elasticsearch.response import (
    classify,
    credentials_rejected,
    merge_outcomes,
    needs_split,
    parse_retry_after,
)
from shipper.protocols import ItemError, Outcome, Status

D, R, X = Status.DELIVERED, Status.RETRY, Status.REJECTED


def item(status: int, op: str = "create", error: object = None) -> dict[str, object]:
    inner: dict[str, object] = {"_index": "logstash-2026.11.22", "_id": "x", "status": status}
    if error is not None:
        inner["error"] = error
    return {op: inner}


def bulk(*items: dict[str, object], errors: bool = True) -> bytes:
    return orjson.dumps({"took": 3, "errors": errors, "items": list(items)})


MIXED = bulk(
    item(201),
    item(409, error={"type": "version_conflict_engine_exception",
                     "reason": "[x]: version conflict, document already exists"}),
    item(429, error={"type": "es_rejected_execution_exception", "reason": "queue full"}),
    item(400, error={"type": "document_parsing_exception",
                     "reason": "failed to parse field [log] of type [text]",
                     "caused_by": {"type": "illegal_argument_exception",
                                   "reason": "Expected text but found START_OBJECT"}}),
    item(503, error={"type": "unavailable_shards_exception", "reason": "primary not active"}),
    item(404, error={"type": "index_not_found_exception", "reason": "no such index"}),
    item(200, op="index"),
)


def test_mixed_items_are_classified_one_by_one() -> None:
    outcome = classify(200, MIXED, 7)
    assert outcome.statuses == [D, D, R, X, R, X, D]
    assert outcome.duplicates == 1
    assert outcome.http_status == 200
    assert set(outcome.errors) == {2, 3, 4, 5}


def test_rejected_items_carry_the_server_type_and_reason() -> None:
    outcome = classify(200, MIXED, 7)
    parsing = outcome.errors[3]
    assert parsing.status == 400
    assert parsing.type == "document_parsing_exception"
    assert "failed to parse field [log]" in parsing.reason
    assert "START_OBJECT" in parsing.reason
    assert outcome.errors[5] == ItemError(404, "index_not_found_exception", "no such index")


def test_retried_items_carry_their_error_too() -> None:
    outcome = classify(200, MIXED, 7)
    assert outcome.errors[2].type == "es_rejected_execution_exception"
    assert outcome.errors[4].status == 503


def test_a_conflict_on_index_is_not_a_duplicate() -> None:
    outcome = classify(200, bulk(item(409, op="index", error={"type": "version_conflict",
                                                             "reason": "seq_no"})), 1)
    assert outcome.statuses == [X]
    assert outcome.duplicates == 0


def test_an_error_given_as_a_plain_string_is_kept_as_the_reason() -> None:
    outcome = classify(200, bulk(item(400, error="MapperParsingException[failed to parse]")), 1)
    assert outcome.statuses == [X]
    assert outcome.errors[0] == ItemError(400, "error", "MapperParsingException[failed to parse]")


def test_an_error_without_details_still_names_the_status() -> None:
    outcome = classify(200, bulk(item(400)), 1)
    assert outcome.errors[0].type == "unknown"
    assert "400" in outcome.errors[0].reason


def test_all_success_takes_the_fast_path() -> None:
    outcome = classify(200, bulk(item(201), item(201), errors=False), 2)
    assert outcome == Outcome([D, D], http_status=200)


def test_an_item_count_mismatch_retries_the_whole_batch() -> None:
    outcome = classify(200, bulk(item(201), item(201), errors=False), 3)
    assert outcome.statuses == [R, R, R]
    assert outcome.errors[0].type == "submit_mismatch"


def test_an_unreadable_success_body_is_retried() -> None:
    for body in (b"<html>proxy</html>", b"", b'{"took": 1}', b"[]"):
        outcome = classify(200, body, 2)
        assert outcome.statuses == [R, R], body
        assert outcome.errors[1].type == "invalid_response"


def test_an_unreadable_item_is_retried_alone() -> None:
    body = orjson.dumps({"errors": True, "items": [item(201), {"weird": 1, "shape": 2}]})
    outcome = classify(200, body, 2)
    assert outcome.statuses == [D, R]
    assert outcome.errors[1].type == "invalid_item"


def test_a_whole_request_429_retries_everything_after_the_delay_asked() -> None:
    body = orjson.dumps({"error": {"type": "es_rejected_execution_exception",
                                   "reason": "rejected execution of coordinating operation"},
                         "status": 429})
    outcome = classify(429, body, 3, {"Retry-After": "7"})
    assert outcome.statuses == [R, R, R]
    assert outcome.retry_after == 7.0
    assert outcome.http_status == 429
    assert outcome.errors[2].type == "es_rejected_execution_exception"


def test_retry_after_can_be_an_http_date() -> None:
    now = datetime(2026, 11, 22, 1, 0, 0, tzinfo=UTC)
    later = format_datetime(datetime(2026, 11, 22, 1, 0, 30, tzinfo=UTC), usegmt=True)
    outcome = classify(503, b"", 1, {"retry-after": later}, now=now.timestamp())
    assert outcome.retry_after == 30.0
    assert outcome.statuses == [R]


def test_retry_after_that_cannot_be_read_is_ignored() -> None:
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_a_whole_request_5xx_retries_everything_with_the_body_as_reason() -> None:
    outcome = classify(502, b"Bad Gateway", 2)
    assert outcome.statuses == [R, R]
    assert outcome.retry_after is None
    assert outcome.errors[0] == ItemError(502, "http_502", "Bad Gateway")


def test_a_408_is_retried() -> None:
    assert classify(408, b"", 1).statuses == [R]


def test_a_413_asks_for_a_split() -> None:
    outcome = classify(413, b"", 4)
    assert needs_split(outcome)
    assert outcome.statuses == [R, R, R, R]


def test_a_413_on_a_single_document_rejects_it() -> None:
    outcome = classify(413, b"", 1)
    assert not needs_split(outcome)
    assert outcome.statuses == [X]
    assert outcome.errors[0].type == "payload_too_large"


def test_rejected_credentials_keep_the_data_and_say_so() -> None:
    body = orjson.dumps({"error": {"type": "security_exception",
                                   "reason": "unable to authenticate user [elastic]"},
                         "status": 401})
    for status in (401, 403):
        outcome = classify(status, body, 2)
        assert outcome.statuses == [R, R]
        assert outcome.http_status == status
        assert credentials_rejected(outcome)
        assert outcome.errors[0].type == "security_exception"


def test_other_whole_request_4xx_reject_the_batch() -> None:
    body = orjson.dumps({"error": {"type": "illegal_argument_exception",
                                   "reason": "Action/metadata line [1] contains an unknown "
                                             "parameter [_type]"}, "status": 400})
    outcome = classify(400, body, 2)
    assert outcome.statuses == [X, X]
    assert outcome.errors[1].type == "illegal_argument_exception"
    assert classify(406, b'{"error":"Content-Type header is not supported"}', 1).errors[0] \
        == ItemError(406, "error", "Content-Type header is not supported")


def test_merging_sub_requests_renumbers_errors_and_keeps_the_longest_delay() -> None:
    first = Outcome([D, X], {1: ItemError(400, "a", "b")}, None, 1, 200)
    second = Outcome.all(2, R, ItemError(429, "c", "d"), retry_after=5.0, http_status=429)
    third = Outcome([D], {}, 2.0, 0, 200)
    merged = merge_outcomes([first, second, third])
    assert merged.statuses == [D, X, R, R, D]
    assert set(merged.errors) == {1, 2, 3}
    assert merged.retry_after == 5.0
    assert merged.duplicates == 1
    assert merged.http_status == 429


def test_merging_prefers_credential_then_connection_failures_for_health() -> None:
    ok = Outcome([D], http_status=200)
    down = Outcome.all(1, R, ItemError(0, "connection_error", "refused"))
    denied = Outcome.all(1, R, ItemError(401, "security_exception", "no"), http_status=401)
    assert merge_outcomes([ok, down, denied]).http_status == 401
    assert merge_outcomes([ok, down]).http_status is None
    assert merge_outcomes([ok, ok]).http_status == 200


def test_an_all_ok_response_with_a_missing_item_is_still_a_mismatch() -> None:
    body = b'{"errors":false,"items":[{"create":{"status":201}}]}'
    outcome = classify(200, body, 2)
    assert outcome.statuses == [Status.RETRY, Status.RETRY]
    assert outcome.errors[0].type == "submit_mismatch"


def test_a_filtered_all_ok_response_is_delivered() -> None:
    body = b'{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}'
    assert classify(200, body, 2).statuses == [Status.DELIVERED, Status.DELIVERED]
