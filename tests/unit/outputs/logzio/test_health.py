"""Readiness and the listener's line accounting."""

from __future__ import annotations

from outputs.logzio.health import Health
from outputs.logzio.response import LineCounts
from shipper.protocols import ItemError, Outcome, Status


def test_a_rejected_token_makes_the_output_not_ready_until_a_request_is_accepted() -> None:
    health = Health(started=True, _clock=lambda: 42.0)
    assert health.ready
    denied = Outcome.all(2, Status.RETRY, ItemError(401, "token_invalid",
                                                    "Logging token is not valid"),
                         http_status=401)
    health.observe(denied)
    assert not health.ready
    assert health.credentials_problem == "Logging token is not valid"
    assert health.last_error == "401 token_invalid: Logging token is not valid"
    health.observe(Outcome.all(2, Status.DELIVERED, http_status=200))
    assert health.ready
    assert health.last_success == 42.0
    assert health.snapshot()["credentials_problem"] is None


def test_a_connection_failure_does_not_clear_a_credentials_problem() -> None:
    health = Health(started=True)
    health.observe(Outcome.all(1, Status.RETRY, ItemError(403, "forbidden", "no"),
                               http_status=403))
    health.observe(Outcome.all(1, Status.RETRY, ItemError(0, "connection_error", "down")))
    assert health.credentials_rejected
    assert health.last_http_status is None


def test_not_ready_before_start() -> None:
    assert not Health().ready


def test_lines_add_up_what_the_listener_said() -> None:
    health = Health()
    health.count_lines(10)
    health.count_lines(6, LineCounts(3, 1, 1, 1))
    health.count_lines(4, LineCounts(None, 0, 2, 0))
    assert health.lines == {"successful": 15, "malformed": 1, "oversized": 3, "empty": 1}
    assert health.snapshot()["lines"] == health.lines
