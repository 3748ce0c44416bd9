"""${VAR} references are replaced from the environment mapping, with defaults and escapes."""

from __future__ import annotations

import pytest

from shipper.config.interpolate import Interpolated, interpolate

ENV = {"HOST": "es.logging", "PORT": "9200", "EMPTY": "", "TRICKY": "${HOST}"}


@pytest.mark.parametrize(("text", "expected"), [
    ("${HOST}", "es.logging"),
    ("https://${HOST}:${PORT}/", "https://es.logging:9200/"),
    ("${MISSING:-fallback}", "fallback"),
    ("${HOST:-fallback}", "es.logging"),
    ("${EMPTY:-fallback}", "fallback"),
    ("${MISSING:-}", ""),
    ("${MISSING:-a:b/c}", "a:b/c"),
    ("${EMPTY}", ""),
    ("${TRICKY}", "${HOST}"),
])
def test_references_are_replaced_anywhere_in_the_string(text: str, expected: str) -> None:
    result = interpolate(text, ENV)
    assert result == Interpolated(expected, substituted=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("plain text", "plain text"),
    ("cost: $5", "cost: $5"),
    ("$HOST", "$HOST"),
    ("$${HOST}", "${HOST}"),
    ("a $${literal} and $${another}", "a ${literal} and ${another}"),
    ("$$HOST", "$$HOST"),
])
def test_text_without_references_is_kept_and_double_dollar_brace_is_a_literal(
        text: str, expected: str) -> None:
    assert interpolate(text, ENV) == Interpolated(expected)


def test_an_escape_and_a_reference_can_share_a_string() -> None:
    assert interpolate("$${HOST} is ${HOST}", ENV) == Interpolated(
        "${HOST} is es.logging", substituted=True)


def test_every_unset_variable_without_a_default_is_reported() -> None:
    result = interpolate("${A}-${HOST}-${B}", ENV)
    assert result.missing == ("A", "B")
    assert not result.ok


@pytest.mark.parametrize(("text", "bad"), [
    ("${}", "${}"),
    ("${1ABC}", "${1ABC}"),
    ("${HOST-default}", "${HOST-default}"),
    ("x ${HOST", "${HOST"),
    ("${A B}", "${A B}"),
])
def test_a_malformed_reference_is_reported_not_left_in_place(text: str, bad: str) -> None:
    result = interpolate(text, ENV)
    assert result.malformed == (bad,)
    assert not result.ok
