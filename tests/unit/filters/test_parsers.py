"""The parser registry: names map to functions; other issues add formats by registering."""

from __future__ import annotations

import pytest

from shipper.filters import parsers


def test_json_is_built_in_and_returns_only_objects() -> None:
    parse = parsers.get("json")
    assert parse is not None
    assert parse('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert parse("[1]") is None
    assert parse("{not json}") is None
    assert parse("") is None


def test_a_new_parser_is_found_by_name_and_listed() -> None:
    def upper(text: str) -> dict[str, object] | None:
        return {"upper": text.upper()}

    parsers.register("upper_for_test", upper, replace=True)
    assert parsers.get("upper_for_test") is upper
    assert "upper_for_test" in parsers.available()
    assert parsers.check_name("upper_for_test") is None


def test_names_cannot_be_shadowed_by_accident_or_malformed() -> None:
    with pytest.raises(ValueError, match="already registered"):
        parsers.register("json", lambda text: None)
    with pytest.raises(ValueError, match="letters"):
        parsers.register("bad name", lambda text: None)
    assert parsers.check_name("nope") is not None
    assert "json" in (parsers.check_name("nope") or "")
