"""Classifying listener answers, with canned bodies (spec §2.4)."""

from __future__ import annotations

import orjson
import pytest

from outputs.logzio.response import (
    LineCounts,
    allocate,
    classify,
    combine,
    needs_split,
    parse_line_counts,
    parse_retry_after,
)
from shipper.protocols import ItemError, Outcome, Status

D, R, X = Status.DELIVERED, Status.RETRY, Status.REJECTED
TOKEN = "tokSECRETvalue1234567890abcdefgh"


def line(message: str, size: int = 0) -> bytes:
    doc = {"message": message, "type": "k8s"}
    if size:
        doc["pad"] = "p" * size
    return orjson.dumps(doc)


def counts_body(successful: int, malformed: int = 0, oversized: int = 0, empty: int = 0,
                ) -> bytes:
    return orjson.dumps({"malformedLines": malformed, "successfulLines": successful,
                         "oversizedLines": oversized, "emptyLogLines": empty})


def test_200_delivers_every_line() -> None:
    outcome = classify(200, b"", [line("a"), line("b")])
    assert outcome.statuses == [D, D]
    assert outcome.http_status == 200


def test_400_marks_exactly_the_refused_count_rejected_and_resends_nothing() -> None:
    payloads = [line("a"), line("big", 5000), line("b"), line("bigger", 9000), line("c")]
    outcome = classify(400, counts_body(successful=3, oversized=2), payloads)
    assert outcome.statuses == [D, X, D, X, D]  # the two largest lines are the suspects
    assert R not in outcome.statuses
    assert outcome.errors[1].type == "logzio_oversized"
    assert "refused 2 of 5 lines" in outcome.errors[1].reason
    assert "successfulLines=3" in outcome.errors[3].reason
    assert outcome.http_status == 400


def test_400_suspects_empty_messages_and_non_objects_first() -> None:
    payloads = [line("big", 8000), line(""), b"[1,2]", line("ok"), line("   ")]
    outcome = classify(400, counts_body(successful=2, malformed=1, empty=2), payloads)
    assert outcome.statuses == [D, X, X, D, X]
    assert outcome.errors[1].type == "logzio_empty"
    assert outcome.errors[4].type == "logzio_empty"
    assert outcome.errors[2].type == "logzio_malformed"
    assert "not a JSON object" in outcome.errors[2].reason


def test_400_counts_that_do_not_add_up_leave_the_rest_unaccounted() -> None:
    payloads = [line("a", 10), line("b", 300), line("c", 20), line("d", 40)]
    outcome = classify(400, counts_body(successful=1, malformed=1), payloads)
    assert outcome.statuses.count(D) == 1
    assert outcome.statuses.count(X) == 3
    kinds = sorted(e.type for e in outcome.errors.values())
    assert kinds == ["logzio_malformed", "logzio_unaccounted", "logzio_unaccounted"]
    assert outcome.statuses[0] == D  # the smallest line is the one assumed stored


def test_400_without_successful_lines_derives_it_from_the_refusals() -> None:
    body = orjson.dumps({"oversizedLines": 1})
    outcome = classify(400, body, [line("a"), line("b", 900)])
    assert outcome.statuses == [D, X]


def test_400_without_counts_rejects_everything_rather_than_risk_duplicates() -> None:
    outcome = classify(400, b"<html>Bad Request</html>", [line("a"), line("b")])
    assert outcome.statuses == [X, X]
    assert outcome.errors[0].type == "bad_request"
    assert "Bad Request" in outcome.errors[0].reason


@pytest.mark.parametrize(("body", "kind", "reason"), [
    (b"Logging token is missing", "token_missing", "Logging token is missing"),
    (b"Logging token is not valid", "token_invalid", "Logging token is not valid"),
    (b"", "unauthorized", "HTTP 401"),
])
def test_401_keeps_the_data_and_waits_at_least_the_backoff_cap(body: bytes, kind: str,
                                                                 reason: str) -> None:
    outcome = classify(401, body, [line("a"), line("b")], credentials_retry_after=30.0)
    assert outcome.statuses == [R, R]
    assert outcome.http_status == 401
    assert outcome.retry_after == 30.0
    assert (outcome.errors[0].type, outcome.errors[0].reason) == (kind, reason)


def test_403_is_a_credentials_problem_too() -> None:
    outcome = classify(403, b"Forbidden", [line("a")], credentials_retry_after=5.0)
    assert outcome.statuses == [R]
    assert (outcome.http_status, outcome.errors[0].type) == (403, "forbidden")


def test_413_asks_for_a_split_or_rejects_a_single_line() -> None:
    many = classify(413, b"", [line("a"), line("b")])
    assert many.statuses == [R, R] and needs_split(many)
    one = classify(413, b"", [line("a")])
    assert one.statuses == [X] and not needs_split(one)
    assert one.errors[0].type == "payload_too_large"


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 302, 404])
def test_other_answers_are_retried(status: int) -> None:
    outcome = classify(status, b"busy", [line("a")], {"Retry-After": "7"})
    assert outcome.statuses == [R]
    assert outcome.retry_after == 7.0
    assert outcome.errors[0].type == f"http_{status}"


def test_a_token_echoed_by_a_proxy_is_redacted() -> None:
    body = f"bad gateway for /?token={TOKEN}&type=k8s (token {TOKEN})".encode()
    outcome = classify(502, body, [line("a")], secrets=[TOKEN])
    assert TOKEN not in repr(outcome)
    assert "token=<hidden>" in outcome.errors[0].reason
    bad = classify(400, body, [line("a")], secrets=[TOKEN])
    assert TOKEN not in repr(bad)


def test_parse_line_counts() -> None:
    assert parse_line_counts(counts_body(3, 1, 2, 4)) == LineCounts(3, 1, 2, 4)
    assert parse_line_counts(b'{"error": "x"}') is None
    assert parse_line_counts(b'{"successfulLines": -1}') is None
    assert parse_line_counts(b'{"successfulLines": "3"}') is None
    assert parse_line_counts(b"") is None
    assert parse_line_counts(b"[]") is None


def test_allocate_never_picks_more_than_the_refused_count() -> None:
    payloads = [line(str(i), i * 10) for i in range(10)]
    chosen = allocate(payloads, LineCounts(7, 5, 5, 5))
    assert len(chosen) == 3
    assert allocate(payloads, LineCounts(10, 0, 0, 0)) == []


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Sun, 22 Nov 2026 00:00:10 GMT", now=1_795_305_600.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


def test_combine_puts_statuses_back_in_payload_order() -> None:
    first = Outcome([D, R], {1: ItemError(503, "http_503", "busy")}, 2.0, 0, 503)
    second = Outcome([D], {}, None, 0, 200)
    rejected = {1: ItemError(413, "line_too_large", "big")}
    outcome = combine(4, [([0, 2], first), ([3], second)], rejected)
    assert outcome.statuses == [D, X, R, D]
    assert outcome.errors[2].type == "http_503"
    assert outcome.errors[1].type == "line_too_large"
    assert outcome.retry_after == 2.0
    assert outcome.http_status == 503


def test_combine_prefers_credentials_then_connection_failures_for_health() -> None:
    ok = Outcome([D], http_status=200)
    down = Outcome([R], {0: ItemError(0, "connection_error", "refused")})
    denied = Outcome([R], {0: ItemError(401, "token_invalid", "no")}, http_status=401)
    assert combine(2, [([0], ok), ([1], down)]).http_status is None
    assert combine(3, [([0], ok), ([1], down), ([2], denied)]).http_status == 401
    assert combine(1, [([0], ok)]).http_status == 200


def test_combine_keeps_unmentioned_payloads_for_retry() -> None:
    assert combine(2, [([0], Outcome([D], http_status=200))]).statuses == [D, R]
