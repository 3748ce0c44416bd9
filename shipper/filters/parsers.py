"""Named parsers for a record's ``log`` text: one registry, looked up by name.

A parser turns the text of one log line into a mapping of fields, or returns None when the
text is not in its format (a plain line from the same container, a stack-trace line...). It
never raises for bad input: the callers (``json_merge`` and the Kubernetes filter's
``shipper.io/parser`` annotation) ship the record unparsed instead. Both find parsers here by
name, so adding a format (``envoy`` for access logs) is one ``register`` call in its own module,
and every place that accepts a parser name accepts it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Parser = Callable[[str], dict[str, Any] | None]

_PARSERS: dict[str, Parser] = {}


def register(name: str, parser: Parser, *, replace: bool = False) -> None:
    """Make ``parser`` available as ``name``; refuses to shadow an existing one by accident."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"parser name must be letters, digits, '-' or '_', got {name!r}")
    if name in _PARSERS and not replace and _PARSERS[name] is not parser:
        raise ValueError(f"a parser named {name!r} is already registered")
    _PARSERS[name] = parser


def get(name: str) -> Parser | None:
    """The parser registered as ``name``, or None."""
    return _PARSERS.get(name)


def available() -> list[str]:
    """Registered parser names, sorted (for error messages and docs)."""
    return sorted(_PARSERS)


def check_name(name: str) -> str | None:
    """Config check: ``name`` must be a registered parser."""
    if name not in _PARSERS:
        return f"unknown parser {name!r}; available: {', '.join(available())}"
    return None


def parse_json(text: str) -> dict[str, Any] | None:
    """A JSON object (``{...}``, surrounding whitespace allowed); anything else is None.

    The first and last characters are checked before decoding: most lines of a mixed
    container are not JSON, and a failed decode costs far more than two comparisons.
    """
    if not text:
        return None
    if text[0] != "{" or text[-1] != "}":
        text = text.strip()
        if not text or text[0] != "{" or text[-1] != "}":
            return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


register("json", parse_json)
