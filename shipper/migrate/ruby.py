"""Translate the embedded Ruby of Fluentd values (``"#{...}"``) into environment references.

Fluentd evaluates ``#{...}`` inside double-quoted values as Ruby. Kubernetes configurations use
a small, regular subset of it to read the pod's environment, and that subset has an exact
equivalent in shipper's ``${NAME}`` / ``${NAME:-default}`` references:

- ``ENV['X']``, ``ENV["X"]``, ``ENV.fetch('X')``;
- ``ENV['X'] || 'default'``, ``ENV.fetch('X', 'default')``;
- ``ENV['X'] || use_default`` / ``use_nil`` (leave the parameter unset);
- literals (``'text'``, ``true``, ``42``) and ``+`` concatenation of all of these.

Anything else (``Socket.gethostname``, method calls, a fallback that is itself a lookup) is
returned as a ``Ruby`` piece, which the mapper reports instead of guessing. Nothing here runs
Ruby or reads the environment.
"""

from __future__ import annotations

import re

from shipper.migrate.model import Env, Piece, Ruby, Text

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\#]|\\.|\#(?!\{))*")
    | (?P<env>ENV\s*\[\s*(?P<env_key>'[^']*'|"[^"]*")\s*\])
    | (?P<fetch>ENV\.fetch\s*\(\s*(?P<fetch_key>'[^']*'|"[^"]*")
                 (?:\s*,\s*(?P<fetch_default>'(?:[^'\\]|\\.)*'|"(?:[^"\\#]|\\.)*"))?\s*\))
    | (?P<op>\|\||\+|\(|\))
    | (?P<word>use_default|use_nil|nil|true|false)\b
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<conv>\.(?:to_s|to_i|to_f|strip)\b)
    )""", re.VERBOSE)

_KINDS = ("str", "env", "fetch", "op", "word", "num", "conv")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


class _Unsupported(Exception):
    """The code is outside the subset; it becomes one ``Ruby`` piece."""


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "'":
        return body.replace("\\\\", "\\").replace("\\'", "'")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _tokens(code: str) -> list[tuple[str, str, re.Match[str]]]:
    out = []
    pos = 0
    code = code.rstrip()
    while pos < len(code):
        match = _TOKEN.match(code, pos)
        if match is None or match.end() == pos:
            raise _Unsupported(code)
        kind = next(k for k in _KINDS if match.group(k) is not None)
        out.append((kind, match.group(kind), match))
        pos = match.end()
    return out


class _Parser:
    """Recursive descent over ``expr := concat ('||' concat)*``, ``concat := atom ('+' atom)*``."""

    def __init__(self, code: str) -> None:
        self.tokens = _tokens(code)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        if self.pos < len(self.tokens):
            kind, text, _ = self.tokens[self.pos]
            return kind, text
        return None

    def take(self) -> tuple[str, str, re.Match[str]]:
        if self.pos >= len(self.tokens):
            raise _Unsupported("unexpected end")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expr(self) -> list[list[Piece | str]]:
        """Alternatives of ``||``; each is a list of pieces or the markers of keywords."""
        alternatives = [self.concat()]
        while self.peek() == ("op", "||"):
            self.take()
            alternatives.append(self.concat())
        return alternatives

    def concat(self) -> list[Piece | str]:
        pieces = self.atom()
        while self.peek() == ("op", "+"):
            self.take()
            pieces = pieces + self.atom()
        return pieces

    def atom(self) -> list[Piece | str]:
        kind, text, match = self.take()
        result: list[Piece | str]
        if kind == "str":
            result = [Text(_unquote(text))]
        elif kind == "env":
            result = [Env(_unquote(match.group("env_key")))]
        elif kind == "fetch":
            name = _unquote(match.group("fetch_key"))
            default = match.group("fetch_default")
            result = [Env(name) if default is None else Env(name, "text", _unquote(default))]
        elif kind == "num":
            result = [Text(text)]
        elif kind == "word":
            result = [Text(text)] if text in ("true", "false") else [text]
        elif (kind, text) == ("op", "("):
            inner = self.expr()
            if self.take()[1] != ")":
                raise _Unsupported("unbalanced parentheses")
            result = list(_combine(inner))
        else:
            raise _Unsupported(text)
        while self.peek() is not None and self.peek()[0] == "conv":  # type: ignore[index]
            self.take()
        return result


def translate(code: str) -> tuple[Piece, ...]:
    """Pieces equivalent to the Ruby ``code`` of one ``#{...}``, or one ``Ruby`` piece."""
    try:
        parser = _Parser(code)
        alternatives = parser.expr()
        if parser.peek() is not None:
            raise _Unsupported(code)
        return _combine(alternatives)
    except _Unsupported:
        return (Ruby(code.strip()),)


def _combine(alternatives: list[list[Piece | str]]) -> tuple[Piece, ...]:
    first = alternatives[0]
    if len(alternatives) == 1:
        if any(isinstance(p, str) and p != "nil" for p in first):
            raise _Unsupported("use_default outside a fallback")
        return tuple(p for p in first if not isinstance(p, str))
    if len(alternatives) > 2 or len(first) != 1 or not isinstance(first[0], Env):
        raise _Unsupported("only ENV[...] || fallback is translated")
    env = first[0]
    if env.fallback != "none":  # ENV.fetch('X', 'd') || ... : the fallback never applies
        return (env,)
    fallback = alternatives[1]
    if fallback in (["use_default"],):
        return (Env(env.name, "default"),)
    if fallback in (["use_nil"], ["nil"]):
        return (Env(env.name, "nil"),)
    if len(fallback) == 1 and isinstance(fallback[0], Text):
        return (Env(env.name, "text", fallback[0].text),)
    raise _Unsupported("the fallback is not a literal")
