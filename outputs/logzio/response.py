"""Classifying a listener answer into an Outcome (spec §2.4). Pure: no I/O, no clock unless
one is passed for ``Retry-After`` dates.

- 2xx: every line delivered.
- 400: the listener stored the valid lines and only counts the others
  (``{"malformedLines", "successfulLines", "oversizedLines", "emptyLogLines"}``). Resending
  would duplicate the stored lines, so nothing is retried. The body does not say which lines
  were refused, and resending subsets to find out would store the valid lines again, so no
  line is ever presented as a culprit on a guess (``bad_request_outcome``): when the counts
  settle every line (all stored, or all refused) the statuses say so; otherwise every line of
  the request is REJECTED into the dead-letter store with type ``logzio_unidentified`` and a
  reason that says how many of them the listener stored. The listener's counts themselves are
  exported exactly by the output (``shipper_logzio_lines_total``).
  A 400 without readable counts rejects every line (kept in the dead-letter store, never
  resent: some lines may have been stored).
- 401/403 (``Logging token is missing`` / ``Logging token is not valid``): RETRY everything,
  waiting at least ``credentials_retry_after`` (the backoff cap): the data stays buffered and
  ``http_status`` lets delivery mark the output not ready. fluent-plugin-logzio drops here.
- 413: nothing was stored; ``needs_split`` asks the caller to halve the request. A single
  line that is too large on its own is REJECTED.
- 408, 429, 5xx, anything else (3xx are not followed: the token would go to another host):
  RETRY, honouring ``Retry-After``.

Texts from the network are passed through ``redact`` before they enter an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from outputs.logzio.token import redact
from shipper.protocols import ItemError, Outcome, Status
from shipper.retry import parse_retry_after

PAYLOAD_TOO_LARGE = 413
BAD_REQUEST = 400
CREDENTIAL_STATUSES = frozenset({401, 403})
TOKEN_MISSING = "Logging token is missing"
TOKEN_INVALID = "Logging token is not valid"
_PREVIEW = 200

# Listener count keys -> our kind names (also the ``kind`` label of the lines metric).
COUNT_KEYS: dict[str, str] = {
    "successfulLines": "successful",
    "malformedLines": "malformed",
    "oversizedLines": "oversized",
    "emptyLogLines": "empty",
}


@dataclass(frozen=True, slots=True)
class LineCounts:
    """The counts of a 400 answer; a key the listener left out is None."""

    successful: int | None
    malformed: int
    oversized: int
    empty: int

    @property
    def refused(self) -> int:
        return self.malformed + self.oversized + self.empty

    def accepted_of(self, n_sent: int) -> int:
        """Lines stored, of ``n_sent``: ``successfulLines``, or what the refusals leave."""
        accepted = self.successful if self.successful is not None else n_sent - self.refused
        return min(max(accepted, 0), n_sent)

    def __str__(self) -> str:
        return (f"successfulLines={self.successful}, malformedLines={self.malformed}, "
                f"oversizedLines={self.oversized}, emptyLogLines={self.empty}")


def parse_line_counts(body: bytes) -> LineCounts | None:
    """The counts of a 400 body, or None when it has none we can read."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, Mapping) or not any(k in parsed for k in COUNT_KEYS):
        return None
    values: dict[str, int | None] = {}
    for key, kind in COUNT_KEYS.items():
        raw = parsed.get(key)
        if raw is None:
            values[kind] = None
        elif isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
            values[kind] = raw
        else:
            return None
    return LineCounts(values["successful"], values["malformed"] or 0,
                      values["oversized"] or 0, values["empty"] or 0)




def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _preview(body: bytes, secrets: Iterable[str]) -> str:
    text = body[:_PREVIEW].decode("utf-8", "replace").strip()
    return redact(text, secrets)


def credentials_error(http_status: int, body: bytes, secrets: Iterable[str] = ()) -> ItemError:
    """Which of the documented 401 answers this is (or a 403), as an error."""
    text = _preview(body, secrets)
    if TOKEN_MISSING.lower() in text.lower():
        return ItemError(http_status, "token_missing", TOKEN_MISSING)
    if TOKEN_INVALID.lower() in text.lower():
        return ItemError(http_status, "token_invalid", TOKEN_INVALID)
    kind = "forbidden" if http_status == 403 else "unauthorized"
    return ItemError(http_status, kind, text or f"HTTP {http_status}")


def needs_split(outcome: Outcome) -> bool:
    """True when the listener refused the request as too large and halving it may help."""
    return outcome.http_status == PAYLOAD_TOO_LARGE and len(outcome.statuses) > 1


def classify(http_status: int, body: bytes, payloads: Sequence[bytes],
             headers: Mapping[str, str] | None = None, *, now: float | None = None,
             credentials_retry_after: float | None = None,
             secrets: Iterable[str] = ()) -> Outcome:
    """Outcome of one listener request that carried ``payloads`` (one line each)."""
    n = len(payloads)
    if 200 <= http_status < 300:
        return Outcome.all(n, Status.DELIVERED, http_status=http_status)
    if http_status == BAD_REQUEST:
        counts = parse_line_counts(body)
        if counts is None:
            error = ItemError(400, "bad_request",
                              "the listener answered 400 without line counts, so which lines "
                              f"it stored is unknown (not resent): {_preview(body, secrets)!r}")
            return Outcome.all(n, Status.REJECTED, error, http_status=400)
        return bad_request_outcome(payloads, counts)
    if http_status in CREDENTIAL_STATUSES:
        return Outcome.all(n, Status.RETRY, credentials_error(http_status, body, secrets),
                           retry_after=credentials_retry_after, http_status=http_status)
    if http_status == PAYLOAD_TOO_LARGE:
        if n == 1:
            error = ItemError(413, "payload_too_large",
                              "the line alone exceeds the listener's request size limit")
            return Outcome.all(1, Status.REJECTED, error, http_status=413)
        error = ItemError(413, "payload_too_large", "request too large; split and resend")
        return Outcome.all(n, Status.RETRY, error, http_status=413)
    text = _preview(body, secrets)
    error = ItemError(http_status, f"http_{http_status}", text or f"HTTP {http_status}")
    retry_after = parse_retry_after(_header(headers, "retry-after"), now)
    return Outcome.all(n, Status.RETRY, error, retry_after=retry_after, http_status=http_status)


UNIDENTIFIED = "logzio_unidentified"


def bad_request_outcome(payloads: Sequence[bytes], counts: LineCounts) -> Outcome:
    """Statuses for a 400 with line counts, using only what the counts prove.

    Every line stored (``successfulLines`` covers the request): DELIVERED. None stored:
    every line REJECTED, with the refusal kind when the counts name only one. Otherwise the
    listener stored some lines without saying which: every line is REJECTED with type
    ``logzio_unidentified`` (none is resent, so none is duplicated), and each dead letter
    says how many lines of its request the listener stored.
    """
    n = len(payloads)
    accepted = counts.accepted_of(n)
    if accepted >= n:
        return Outcome.all(n, Status.DELIVERED, http_status=BAD_REQUEST)
    if accepted == 0:
        kinds = [kind for kind, count in (("malformed", counts.malformed),
                                          ("oversized", counts.oversized),
                                          ("empty", counts.empty)) if count]
        kind = f"logzio_{kinds[0]}" if len(kinds) == 1 else "logzio_refused"
        error = ItemError(400, kind, f"the listener refused every line of this request "
                                     f"({n} lines; {counts})")
        return Outcome.all(n, Status.REJECTED, error, http_status=BAD_REQUEST)
    error = ItemError(
        400, UNIDENTIFIED,
        f"the listener stored {accepted} of {n} lines of this request and refused "
        f"{n - accepted} ({counts}); it does not say which were refused, so every line of "
        f"the request is in the dead-letter store: {accepted} of them are already in Logz.io "
        "and resending them would duplicate those")
    return Outcome.all(n, Status.REJECTED, error, http_status=BAD_REQUEST)


def combine(n: int, parts: Sequence[tuple[Sequence[int], Outcome]],
            rejected: Mapping[int, ItemError] | None = None) -> Outcome:
    """One Outcome for ``n`` payloads from the outcomes of requests that each carried the
    payloads at the listed indices, plus the payloads ``rejected`` before sending (every
    index appears once; an index nobody mentions stays RETRY, so a bug cannot lose data).

    ``http_status`` is the most telling one of the requests for health: rejected credentials
    first, then a connection failure (None), then any other failure, else the first success.
    """
    statuses = [Status.RETRY] * n
    errors: dict[int, ItemError] = {}
    for index, error in (rejected or {}).items():
        statuses[index] = Status.REJECTED
        errors[index] = error
    retry_after: float | None = None
    codes: list[int | None] = []
    for indices, outcome in parts:
        codes.append(outcome.http_status)
        for k, index in enumerate(indices):
            statuses[index] = outcome.statuses[k]
            found = outcome.errors.get(k)
            if found is not None:
                errors[index] = found
        if outcome.retry_after is not None:
            retry_after = outcome.retry_after if retry_after is None \
                else max(retry_after, outcome.retry_after)
    return Outcome(statuses, errors, retry_after, 0, _telling_status(codes))


def _telling_status(codes: list[int | None]) -> int | None:
    for code in codes:
        if code in CREDENTIAL_STATUSES:
            return code
    if None in codes:
        return None
    for code in codes:
        if code is not None and not 200 <= code < 300:
            return code
    return codes[0] if codes else None
