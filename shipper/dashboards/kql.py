"""The subset of Kibana Query Language our saved objects use, translated to Elasticsearch DSL.

The saved objects store their queries as KQL text, exactly what Kibana shows in its search
bar. ``shipper dashboards check`` must run the same queries against Elasticsearch without
Kibana, so this module parses that text and builds the query Kibana itself would send:

* ``field : "text"`` -> ``match_phrase``; ``field : word`` -> ``match``; ``field : *`` ->
  ``exists``;
* ``field >= 5`` (``>``, ``<``, ``<=``) -> ``range``;
* ``and`` -> ``bool.filter``; ``or`` -> ``bool.should`` with ``minimum_should_match: 1``;
  ``not`` -> ``bool.must_not``; parentheses group; the empty query matches everything.

Free text without a field, wildcards inside values and value lists (``f : (a or b)``) are not
part of the subset and raise ``KqlError``: a dashboard we generate never uses them, and a check
that silently ran a different query than Kibana would prove nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shipper.errors import DashboardsError


class KqlError(DashboardsError):
    """The query is not valid KQL, or uses more of it than this module supports."""


_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|[:<>()])|(?P<word>[^\s:<>()"]+))')
_KEYWORDS = {"and", "or", "not"}
_RANGE = {">=": "gte", ">": "gt", "<=": "lte", "<": "lt"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "str", "op", "word", "kw"
    text: str


def _tokens(query: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos, end = 0, len(query.rstrip())
    while pos < end:
        m = _TOKEN.match(query, pos)
        if m is None or m.end() == pos:
            raise KqlError(f"cannot read {query[pos:]!r} in KQL {query!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "word" and text.lower() in _KEYWORDS:
            out.append(_Tok("kw", text.lower()))
        else:
            out.append(_Tok(kind, text))
    return out


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.toks = _tokens(query)
        self.i = 0
        self.fields: list[str] = []

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise KqlError(f"KQL {self.query!r} ends too early")
        self.i += 1
        return tok

    def parse(self) -> dict[str, Any]:
        if not self.toks:
            return {"match_all": {}}
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:
            raise KqlError(f"unexpected {extra.text!r} in KQL {self.query!r}")
        return node

    def or_expr(self) -> dict[str, Any]:
        parts = [self.and_expr()]
        while (tok := self.peek()) is not None and tok == _Tok("kw", "or"):
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return {"bool": {"should": parts, "minimum_should_match": 1}}

    def and_expr(self) -> dict[str, Any]:
        parts = [self.not_expr()]
        while (tok := self.peek()) is not None and tok == _Tok("kw", "and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else {"bool": {"filter": parts}}

    def not_expr(self) -> dict[str, Any]:
        if self.peek() == _Tok("kw", "not"):
            self.take()
            return {"bool": {"must_not": [self.not_expr()]}}
        return self.primary()

    def primary(self) -> dict[str, Any]:
        tok = self.take()
        if tok == _Tok("op", "("):
            node = self.or_expr()
            if self.take() != _Tok("op", ")"):
                raise KqlError(f"missing ')' in KQL {self.query!r}")
            return node
        if tok.kind != "word":
            raise KqlError(f"expected a field name, got {tok.text!r} in KQL {self.query!r}")
        field = tok.text
        op = self.peek()
        if op is None or op.kind != "op" or op.text not in (":", *_RANGE):
            raise KqlError(f"free text ({field!r}) is not supported; write field : value "
                           f"in KQL {self.query!r}")
        self.take()
        self.fields.append(field)
        value = self.take()
        if op.text in _RANGE:
            return {"range": {field: {_RANGE[op.text]: _number(value, self.query)}}}
        if value.kind == "str":
            return {"match_phrase": {field: _unquote(value.text)}}
        if value.kind != "word":
            raise KqlError(f"expected a value after {field} : in KQL {self.query!r}")
        if value.text == "*":
            return {"exists": {"field": field}}
        if "*" in value.text:
            raise KqlError(f"wildcards in values are not supported in KQL {self.query!r}")
        return {"match": {field: value.text}}


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _number(tok: _Tok, query: str) -> int | float:
    try:
        return int(tok.text)
    except ValueError:
        try:
            return float(tok.text)
        except ValueError:
            raise KqlError(f"a range needs a number, got {tok.text!r} in KQL {query!r}") \
                from None


def to_dsl(query: str) -> dict[str, Any]:
    """The Elasticsearch query for a KQL string (see the module docstring for the subset)."""
    return _Parser(query).parse()


def fields(query: str) -> list[str]:
    """The fields a KQL string refers to, in order of appearance (duplicates kept once)."""
    parser = _Parser(query)
    parser.parse()
    return list(dict.fromkeys(parser.fields))
