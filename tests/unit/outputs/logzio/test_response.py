"""Classifying listener answers, with canned bodies (spec §2.4)."""

from __future__ import annotations

import orjson
import pytest

from outputs.logzio.response import (
    UNIDENTIFIED,
    LineCounts,
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


def test_400_that_stored_some_lines_dead_letters_every_line_and_names_no_culprit() -> None:
    # The two largest lines look like the oversized ones, but the listener did not say so:
    # no line may be presented as refused on a guess, and none is resent (no duplicates).
    payloads = [line("a"), line("big", 5000), line("b"), line("bigger", 9000), line("c")]
    outcome = classify(400, counts_body(successful=3, oversized=2), payloads)
    assert outcome.statuses == [X] * 5
    assert outcome.http_status == 400
    assert {e.type for e in outcome.errors.values()} == {UNIDENTIFIED}
    assert sorted(outcome.errors) == [0, 1, 2, 3, 4]
    reason = outcome.errors[0].reason
    assert "stored 3 of 5 lines of this request" in reason
    assert "does not say which were refused" in reason
    assert "successfulLines=3" in reason and "oversizedLines=2" in reason


def test_400_that_stored_nothing_rejects_every_line_with_the_one_kind_counted() -> None:
    payloads = [line("a"), b"[1,2]", line("b")]
    malformed = classify(400, counts_body(successful=0, malformed=3), payloads)
    assert malformed.statuses == [X, X, X]
    assert {e.type for e in malformed.errors.values()} == {"logzio_malformed"}
    assert "refused every line" in malformed.errors[0].reason
    mixed = classify(400, counts_body(successful=0, malformed=1, empty=2), payloads)
    assert mixed.statuses == [X, X, X]
    assert {e.type for e in mixed.errors.values()} == {"logzio_refused"}


def test_400_whose_successful_count_covers_the_request_delivers_every_line() -> None:
    # e.g. the listener also counted an empty line of its own making
    outcome = classify(400, counts_body(successful=2, empty=1), [line("a"), line("b")])
    assert outcome.statuses == [D, D]
    assert outcome.errors == {}


def test_400_without_successful_lines_derives_it_from_the_refusals() -> None:
    body = orjson.dumps({"oversizedLines": 1})
    outcome = classify(400, body, [line("a"), line("b", 900)])
    assert outcome.statuses == [X, X]
    assert "stored 1 of 2 lines" in outcome.errors[1].reason


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
