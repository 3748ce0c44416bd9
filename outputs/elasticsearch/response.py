"""Classifying a ``_bulk`` response into an Outcome (spec §1.3-§1.5). Pure: no I/O, no clock
unless one is passed for ``Retry-After`` dates.

Per item: 2xx delivered; 409 on ``create`` delivered and counted as a duplicate (the document
was stored by an earlier attempt); 429 and 5xx retried; any other status rejected with the
server's error type and reason. Per request: 429/5xx/408 retry everything (honouring
``Retry-After``); 401/403 retry everything too, because dropping data over a credentials
mistake is worse than waiting, and ``http_status`` lets health report it; 413 asks the caller
to split the batch (``needs_split``), or rejects a single payload that is too large on its own;
any other 4xx rejects the batch. A 2xx answer that cannot be read, or whose item count differs
from what was sent, is retried: the ids make the resend idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shipper.protocols import ItemError, Outcome, Status
from shipper.retry import parse_retry_after

PAYLOAD_TOO_LARGE = 413
CREDENTIAL_STATUSES = frozenset({401, 403})
# 408 is the server (or a proxy) giving up waiting for our body: nothing was indexed.
_RETRY_REQUEST_STATUSES = frozenset({408, 429})

_DELIVERED = Status.DELIVERED
_RETRY = Status.RETRY
_REJECTED = Status.REJECTED


def needs_split(outcome: Outcome) -> bool:
    """True when the server refused the request as too large and halving it may help."""
    return outcome.http_status == PAYLOAD_TOO_LARGE and len(outcome.statuses) > 1


def credentials_rejected(outcome: Outcome) -> bool:
    return outcome.http_status in CREDENTIAL_STATUSES




def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return None


def _error_of(raw: Any, status: int) -> ItemError:
    """An ItemError from an ``error`` value, which may be an object or a plain string."""
    if isinstance(raw, Mapping):
        reason = raw.get("reason")
        caused_by = raw.get("caused_by")
        if isinstance(caused_by, Mapping) and caused_by.get("reason"):
            reason = f"{reason} (caused by: {caused_by.get('reason')})"
        return ItemError(status, str(raw.get("type") or "unknown"), str(reason or ""))
    if raw is None:
        return ItemError(status, "unknown", f"status {status} without an error")
    return ItemError(status, "error", str(raw))


def _request_error(http_status: int, body: bytes) -> ItemError:
    """The error of a whole-request failure, from the body when it is Elasticsearch's JSON."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, Mapping) and "error" in parsed:
        return _error_of(parsed["error"], http_status)
    text = body[:200].decode("utf-8", "replace").strip() if body else ""
    return ItemError(http_status, f"http_{http_status}", text or f"HTTP {http_status}")


_ALL_OK = b'"errors":false'
_STATUS_KEY = b'"status":'


def classify(http_status: int, body: bytes, n_sent: int,
             headers: Mapping[str, str] | None = None, now: float | None = None) -> Outcome:
    """Outcome of one ``_bulk`` request that carried ``n_sent`` actions."""
    if 200 <= http_status < 300:
        return _classify_items(http_status, body, n_sent)
    if http_status == PAYLOAD_TOO_LARGE:
        if n_sent == 1:
            error = ItemError(413, "payload_too_large",
                              "the document alone exceeds the server's request size limit")
            return Outcome.all(1, _REJECTED, error, http_status=413)
        error = ItemError(413, "payload_too_large", "request too large; split and resend")
        return Outcome.all(n_sent, _RETRY, error, http_status=413)
    error = _request_error(http_status, body)
    if http_status in _RETRY_REQUEST_STATUSES or http_status >= 500:
        retry_after = parse_retry_after(_header(headers, "retry-after"), now)
        return Outcome.all(n_sent, _RETRY, error, retry_after=retry_after,
                           http_status=http_status)
    if http_status in CREDENTIAL_STATUSES:
        return Outcome.all(n_sent, _RETRY, error, http_status=http_status)
    if 400 <= http_status < 500:
        return Outcome.all(n_sent, _REJECTED, error, http_status=http_status)
    # 1xx/3xx: nothing we understand was done; keep the data.
    return Outcome.all(n_sent, _RETRY, error, http_status=http_status)


def _classify_items(http_status: int, body: bytes, n_sent: int) -> Outcome:
    # Fast path for the common answer: no item failed. Parsing tens of thousands of items
    # only to find 201s costs more than building the request; counting ``"status":`` (one per
    # item when nothing failed: no error objects exist) keeps the item-count safety check.
    if _ALL_OK in body and body.count(_STATUS_KEY) == n_sent:
        return Outcome([_DELIVERED] * n_sent, http_status=http_status)
    try:
        parsed = orjson.loads(body)
        items = parsed["items"]
        n_items = len(items)
    except (orjson.JSONDecodeError, TypeError, KeyError):
        preview = body[:200].decode("utf-8", "replace")
        error = ItemError(http_status, "invalid_response",
                          f"cannot read the bulk response: {preview!r}")
        return Outcome.all(n_sent, _RETRY, error, http_status=http_status)
    if n_items != n_sent:
        error = ItemError(http_status, "submit_mismatch",
                          f"sent {n_sent} actions but the response has {n_items} items")
        return Outcome.all(n_sent, _RETRY, error, http_status=http_status)
    if parsed.get("errors") is False:
        return Outcome([_DELIVERED] * n_sent, http_status=http_status)

    statuses: list[Status] = []
    append = statuses.append
    errors: dict[int, ItemError] = {}
    duplicates = 0
    for i, item in enumerate(items):
        try:
            (op, result), = item.items()
            status = int(result["status"])
        except (AttributeError, ValueError, TypeError, KeyError):
            append(_RETRY)
            errors[i] = ItemError(0, "invalid_item", f"unreadable bulk item: {item!r:.200}")
            continue
        if 200 <= status < 300:
            append(_DELIVERED)
        elif status == 409 and op == "create":
            append(_DELIVERED)
            duplicates += 1
        elif 400 <= status < 500 and status != 429:
            append(_REJECTED)
            errors[i] = _error_of(result.get("error"), status)
        else:  # 429, 5xx, and statuses no server should send: keep the record
            append(_RETRY)
            errors[i] = _error_of(result.get("error"), status)
    return Outcome(statuses, errors, None, duplicates, http_status)


def merge_outcomes(parts: list[Outcome]) -> Outcome:
    """Concatenate the outcomes of consecutive sub-requests into one for the whole batch.

    ``http_status`` is the most telling one for health: rejected credentials first, then a
    connection failure (None), then any other failure, else the first success.
    """
    if len(parts) == 1:
        return parts[0]
    statuses: list[Status] = []
    errors: dict[int, ItemError] = {}
    duplicates = 0
    retry_after: float | None = None
    for part in parts:
        offset = len(statuses)
        statuses.extend(part.statuses)
        for i, error in part.errors.items():
            errors[offset + i] = error
        duplicates += part.duplicates
        if part.retry_after is not None:
            retry_after = part.retry_after if retry_after is None \
                else max(retry_after, part.retry_after)
    return Outcome(statuses, errors, retry_after, duplicates, _telling_status(parts))


def _telling_status(parts: list[Outcome]) -> int | None:
    codes = [p.http_status for p in parts]
    for code in codes:
        if code in CREDENTIAL_STATUSES:
            return code
    if None in codes:
        return None
    for code in codes:
        if code is not None and not 200 <= code < 300:
            return code
    return codes[0] if codes else None
