"""Strict conversion of a located YAML tree into frozen config dataclasses, driven by type hints.

The dataclasses *are* the schema: field names are the keys, type hints say what a value may be,
defaults make a key optional and ``metadata`` adds the rest. Nothing else needs to be written to
add a setting, and ``docgen`` renders the same information as the reference docs.

Field metadata understood here (all optional):

- ``"doc"``: one sentence for the reference docs (see ``docgen``).
- ``"check"``: ``callable(value) -> str | None``; extra validation of the converted value, the
  returned string is the problem message (see ``shipper.config.checks``).
- ``"secret"``: the value (and everything under it) is never shown in a message or a dump.
  Also give such a field ``repr=False`` so it cannot leak through a log of the dataclass.
- ``"by_type"``: on a ``dict[str, Any]`` field, each value is a mapping whose ``type:`` key
  picks the dataclass from the registry of that name (``"source"``, ``"output"``). The
  ``type`` key is passed on only if the chosen dataclass declares a ``type`` field.
- ``"internal"``: not a config key; set by the program (``AgentConfig.config_file``).

Supported types: ``str``, ``int`` (a YAML bool is not an int), ``float`` (an int is accepted),
``bool`` (only ``true``/``false``), ``Literal[...]``, ``Enum`` subclasses (by value),
``X | None``, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, nested dataclasses, ``Any``
(plain data), and the unit types ``Bytes`` and ``Seconds`` from ``shipper.config.types``. An
unsupported type hint is a programming error and raises ``TypeError``.

Values are checked against the YAML type the operator wrote: ``port: "8080"`` is a string, not
an int. The exception is a string that contained ``${VAR}`` references: after substitution its
text is read again *for the target type* (``port: ${PORT}`` gives an int, ``tls: ${TLS}`` a bool,
and an empty result gives None for an optional field), because the environment only has text.

``null`` (or an empty value) for a dataclass, list or mapping means "empty": ``buffer:`` with
everything commented out gets the defaults.

Rules that involve several fields live on the dataclass, in either of two forms: a
``validate(self) -> list[str]`` method, or ``__post_init__`` raising ``ValueError`` (several
messages joined by ``"; "``). A message written ``"<field>: <text>"`` is reported on that key's
path and line; any other message on the mapping that holds the dataclass.

Every problem is collected (the conversion goes on past the first one) with its file, line and
dotted key path; the caller raises ``ConfigError`` with all of them.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from shipper.config.interpolate import SYNTAX_HINT, interpolate
from shipper.config.types import BYTES_UNIT, SECONDS_UNIT
from shipper.config.units import (
    DURATION_HINT,
    SIZE_HINT,
    UnitError,
    check_bytes,
    check_seconds,
    parse_bytes,
    parse_seconds,
)
from shipper.config.yamltree import (
    Map,
    Node,
    Scalar,
    Seq,
    join_index,
    join_key,
    parse_core_bool,
    parse_core_float,
    parse_core_int,
    parse_core_null,
)
from shipper.errors import ConfigProblem

DOC: Final = "doc"
CHECK: Final = "check"
SECRET: Final = "secret"
BY_TYPE: Final = "by_type"
INTERNAL: Final = "internal"
TYPE_KEY: Final = "type"

T = TypeVar("T")
Registries = Mapping[str, Mapping[str, type]]


class _Invalid:
    """Marks a value that could not be converted (its problem is already reported)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()


@dataclass(frozen=True, slots=True)
class _Read:
    """A scalar value after interpolation; ``from_env`` means it must be read for the target."""

    value: Any
    from_env: bool


def convert(
    cls: type[T],
    tree: Node | None,
    *,
    file: str,
    environ: Mapping[str, str],
    registries: Registries | None = None,
    line: int = 1,
) -> tuple[T | None, list[ConfigProblem]]:
    """Convert ``tree`` into an instance of the dataclass ``cls``.

    Returns the instance (None if there was any problem) and the problems, sorted by line.
    ``line`` is where problems about the mapping as a whole (a missing key) are reported.
    """
    converter = _Converter(file, environ, registries or {})
    value = converter.structure(tree, cls, "", line, secret=False)
    problems = sorted(converter.problems, key=lambda p: (p.line or 0))
    if problems or isinstance(value, _Invalid):
        return None, problems
    return cast(T, value), []


def is_required(f: dataclasses.Field[Any]) -> bool:
    """True if the field has no default, so its key must be present."""
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def config_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of ``cls`` that are config keys (in declaration order)."""
    return [f for f in dataclasses.fields(cls) if f.init and not f.metadata.get(INTERNAL)]


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of a dataclass, with ``Annotated`` extras kept."""
    return get_type_hints(cls, include_extras=True)


def unit_of(tp: Any) -> str | None:
    """``BYTES_UNIT`` or ``SECONDS_UNIT`` if ``tp`` is ``Bytes`` or ``Seconds``, else None."""
    if get_origin(tp) is not None and hasattr(tp, "__metadata__"):
        for extra in tp.__metadata__:
            if extra in (BYTES_UNIT, SECONDS_UNIT):
                return cast(str, extra)
    return None


def strip_annotated(tp: Any) -> Any:
    """The type under ``Annotated[...]`` (or ``tp`` itself)."""
    return tp.__origin__ if hasattr(tp, "__metadata__") else tp


def optional_inner(tp: Any) -> Any | None:
    """For ``X | None`` return ``X``; None if ``tp`` is not optional.

    Other unions are refused: a value that may be one of several types makes both the error
    messages and the docs vague, so the schema must say what it wants.
    """
    if get_origin(tp) not in (Union, types.UnionType):
        return None
    members = [arg for arg in get_args(tp) if arg is not type(None)]
    if len(members) != 1:
        raise TypeError(f"unsupported config type {tp!r}: only X | None unions are supported")
    return members[0]


def suggestion(word: str, choices: list[str]) -> str:
    """``did you mean 'x'? `` for the closest choice, or nothing if none is close."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def show_literal(value: object) -> str:
    """Render an allowed value the way it is written in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def describe(node: Node, *, secret: bool = False) -> str:
    """Say what a value is for an error message, without the value itself when secret."""
    if isinstance(node, Seq):
        return "a list"
    if isinstance(node, Map):
        return "a mapping"
    return describe_value(node.value, secret=secret)


def describe_value(value: object, *, secret: bool = False) -> str:
    """Say what a scalar value is, as YAML would write it; secrets only by kind."""
    if value is None:
        return "null"
    if secret:
        kind = ("a boolean" if isinstance(value, bool) else
                "a number" if isinstance(value, int | float) else "a string")
        return f"{kind} (secret, not shown)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _reread(text: str, tp: type) -> bool | int | float | None:
    """Read substituted text as YAML would have read it, but only as the target type."""
    if tp is bool:
        return parse_core_bool(text)
    as_int = parse_core_int(text)
    if tp is int or as_int is not None:
        return as_int
    return parse_core_float(text)


def _field_message(message: str, fields: Mapping[str, Any]) -> tuple[str, str] | None:
    """Split ``"<field>: <text>"`` when ``<field>`` is one of ``fields``."""
    key, sep, text = message.partition(": ")
    return (key, text) if sep and key in fields else None


class _Converter:
    """One conversion run: holds the context and the problems found so far."""

    def __init__(self, file: str, environ: Mapping[str, str], registries: Registries) -> None:
        self.file = file
        self.environ = environ
        self.registries = registries
        self.problems: list[ConfigProblem] = []

    def report(self, path: str, line: int, message: str) -> _Invalid:
        self.problems.append(ConfigProblem(self.file, line, path, message))
        return INVALID

    @staticmethod
    def line_of(node: Node, owner_line: int) -> int:
        """Scalars are reported on their own line, collections on the line of their key."""
        return node.line if isinstance(node, Scalar) else owner_line

    # -- dispatch ------------------------------------------------------------------------------

    def convert(self, node: Node, tp: Any, path: str, owner_line: int, *, secret: bool) -> Any:
        """Convert ``node`` to type ``tp``; ``owner_line`` is the line of the key holding it."""
        unit = unit_of(tp)
        if unit == BYTES_UNIT:
            return self.size(node, path, owner_line, secret=secret)
        if unit == SECONDS_UNIT:
            return self.duration(node, path, owner_line, secret=secret)
        tp = strip_annotated(tp)
        inner = optional_inner(tp)
        if inner is not None:
            return self.optional(node, inner, path, owner_line, secret=secret)
        origin = get_origin(tp)
        if tp is Any:
            return self.plain(node, path, owner_line, secret=secret)
        if origin is Literal:
            return self.choice(node, list(get_args(tp)), path, owner_line, secret=secret)
        if origin in (list, tuple):
            return self.sequence(node, tp, path, owner_line, secret=secret)
        if origin is dict:
            key_type, value_type = get_args(tp)
            if key_type is not str:
                raise TypeError(f"unsupported config type {tp!r}: mapping keys must be str")
            return self.mapping(node, value_type, path, owner_line, secret=secret)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.structure(node, tp, path, owner_line, secret=secret)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            read = self.choice(node, [m.value for m in tp], path, owner_line, secret=secret)
            return read if isinstance(read, _Invalid) else tp(read)
        if tp in (str, int, float, bool):
            return self.simple(node, tp, path, owner_line, secret=secret)
        raise TypeError(f"unsupported config type {tp!r} at {path or '<root>'}")

    # -- scalars -------------------------------------------------------------------------------

    def read(self, node: Node, path: str, owner_line: int, expected: str,
             *, secret: bool) -> _Read | _Invalid:
        """Read a scalar, substituting ``${VAR}`` references in strings."""
        if not isinstance(node, Scalar):
            return self.report(path, owner_line, f"expected {expected}, got {describe(node)}")
        if not isinstance(node.value, str):
            return _Read(node.value, from_env=False)
        result = interpolate(node.value, self.environ)
        for name in result.missing:
            self.report(path, node.line,
                        f"environment variable {name} is not set and has no default")
        for token in result.malformed:
            self.report(path, node.line, f"invalid reference {token!r}; {SYNTAX_HINT}")
        if not result.ok:
            return INVALID
        return _Read(result.text, from_env=result.substituted)

    def wrong(self, read: _Read, node: Node, path: str, owner_line: int, expected: str,
              *, secret: bool) -> _Invalid:
        """Report a value of the wrong kind."""
        message = f"expected {expected}, got {describe_value(read.value, secret=secret)}"
        if read.from_env:
            message += " (after substituting environment variables)"
        elif expected == "a string" and read.value is not None:
            message += "; put it in quotes to make it a string"
        return self.report(path, self.line_of(node, owner_line), message)

    def simple(self, node: Node, tp: type, path: str, owner_line: int, *, secret: bool) -> Any:
        expected = {str: "a string", int: "an integer", float: "a number",
                    bool: "true or false"}[tp]
        read = self.read(node, path, owner_line, expected, secret=secret)
        if isinstance(read, _Invalid):
            return read
        value = read.value
        if read.from_env and tp is not str:
            reread = _reread(value.strip(), tp)
            value = value if reread is None else reread
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if tp is float and isinstance(value, float) and not math.isfinite(value):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a finite number, got {describe_value(value)}")
        if type(value) is not tp:
            return self.wrong(read, node, path, owner_line, expected, secret=secret)
        return value

    def optional(self, node: Node, inner: Any, path: str, owner_line: int,
                 *, secret: bool) -> Any:
        if isinstance(node, Scalar):
            if node.value is None:
                return None
            if isinstance(node.value, str) and "$" in node.value:
                read = self.read(node, path, owner_line, "a value", secret=secret)
                if isinstance(read, _Invalid):
                    return read
                if read.from_env and parse_core_null(read.value.strip()):
                    return None
        return self.convert(node, inner, path, owner_line, secret=secret)

    def choice(self, node: Node, allowed: list[Any], path: str, owner_line: int,
               *, secret: bool) -> Any:
        """One of a fixed set of values (``Literal`` or ``Enum``)."""
        shown = ", ".join(show_literal(a) for a in allowed)
        read = self.read(node, path, owner_line, f"one of: {shown}", secret=secret)
        if isinstance(read, _Invalid):
            return read
        for candidate in allowed:
            if read.from_env:
                if read.value.strip() == show_literal(candidate):
                    return candidate
            elif type(read.value) is type(candidate) and read.value == candidate:
                return candidate
        hint = suggestion(read.value, [show_literal(a) for a in allowed]) if (
            isinstance(read.value, str) and not secret) else ""
        return self.report(path, self.line_of(node, owner_line),
                           f"invalid value {describe_value(read.value, secret=secret)}; "
                           f"{hint}expected one of: {shown}")

    def size(self, node: Node, path: str, owner_line: int, *, secret: bool) -> Any:
        expected = "a size in bytes (an integer or a string like 2MiB)"
        read = self.read(node, path, owner_line, expected, secret=secret)
        if isinstance(read, _Invalid):
            return read
        value = read.value
        if isinstance(value, bool) or not isinstance(value, int | str):
            return self.wrong(read, node, path, owner_line, expected, secret=secret)
        try:
            return parse_bytes(value) if isinstance(value, str) else check_bytes(value)
        except UnitError as exc:
            message = f"invalid size; {SIZE_HINT}" if secret else str(exc)
            return self.report(path, self.line_of(node, owner_line), message)

    def duration(self, node: Node, path: str, owner_line: int, *, secret: bool) -> Any:
        expected = "a duration (seconds or a string like 5s, 250ms, 1h30m)"
        read = self.read(node, path, owner_line, expected, secret=secret)
        if isinstance(read, _Invalid):
            return read
        value = read.value
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return self.wrong(read, node, path, owner_line, expected, secret=secret)
        try:
            return parse_seconds(value) if isinstance(value, str) else check_seconds(value)
        except UnitError as exc:
            message = f"invalid duration; {DURATION_HINT}" if secret else str(exc)
            return self.report(path, self.line_of(node, owner_line), message)

    def plain(self, node: Node, path: str, owner_line: int, *, secret: bool) -> Any:
        """Plain data for an ``Any`` field, strings still interpolated."""
        if isinstance(node, Seq):
            items = [self.plain(item, join_index(path, i), item.line, secret=secret)
                     for i, item in enumerate(node.items)]
            return INVALID if any(isinstance(i, _Invalid) for i in items) else items
        if isinstance(node, Map):
            values = {e.key: self.plain(e.value, join_key(path, e.key), e.key_line, secret=secret)
                      for e in node.entries}
            return INVALID if any(isinstance(v, _Invalid) for v in values.values()) else values
        read = self.read(node, path, owner_line, "a value", secret=secret)
        return read if isinstance(read, _Invalid) else read.value

    # -- collections ---------------------------------------------------------------------------

    def sequence(self, node: Node, tp: Any, path: str, owner_line: int, *, secret: bool) -> Any:
        args = get_args(tp)
        is_tuple = get_origin(tp) is tuple
        if is_tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError(f"unsupported config type {tp!r}: use tuple[T, ...]")
        item_type = args[0] if args else Any
        if isinstance(node, Scalar) and node.value is None:
            return () if is_tuple else []
        if not isinstance(node, Seq):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a list, got {describe(node, secret=secret)}")
        items = [self.convert(item, item_type, join_index(path, i), item.line, secret=secret)
                 for i, item in enumerate(node.items)]
        if any(isinstance(item, _Invalid) for item in items):
            return INVALID
        return tuple(items) if is_tuple else items

    def mapping(self, node: Node, value_type: Any, path: str, owner_line: int,
                *, secret: bool) -> Any:
        if isinstance(node, Scalar) and node.value is None:
            return {}
        if not isinstance(node, Map):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a mapping, got {describe(node, secret=secret)}")
        values = {e.key: self.convert(e.value, value_type, join_key(path, e.key), e.key_line,
                                      secret=secret)
                  for e in node.entries}
        if any(isinstance(v, _Invalid) for v in values.values()):
            return INVALID
        return values

    def by_type(self, node: Node, kind: str, path: str, owner_line: int,
                *, secret: bool) -> Any:
        """A mapping of names to components whose dataclass is chosen by their ``type:``."""
        if isinstance(node, Scalar) and node.value is None:
            return {}
        if not isinstance(node, Map):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a mapping of names to {kind}s, "
                               f"got {describe(node, secret=secret)}")
        registry = self.registries.get(kind, {})
        values = {e.key: self.component(e.value, kind, registry, join_key(path, e.key),
                                         e.key_line, secret=secret)
                  for e in node.entries}
        if any(isinstance(v, _Invalid) for v in values.values()):
            return INVALID
        return values

    def component(self, node: Node, kind: str, registry: Mapping[str, type], path: str,
                  owner_line: int, *, secret: bool) -> Any:
        if not isinstance(node, Map):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a mapping with a {TYPE_KEY} key, "
                               f"got {describe(node, secret=secret)}")
        known = sorted(registry)
        expected = f"expected one of: {', '.join(known) if known else '(none available)'}"
        type_path = join_key(path, TYPE_KEY)
        entry = node.get(TYPE_KEY)
        if entry is None:
            return self.report(type_path, owner_line, f"required key is missing; {expected}")
        read = self.read(entry.value, type_path, entry.key_line, "a string", secret=False)
        if isinstance(read, _Invalid):
            return read
        cls = registry.get(read.value) if isinstance(read.value, str) else None
        if cls is None:
            hint = suggestion(read.value, known) if isinstance(read.value, str) else ""
            if read.value is None and "null" in registry:
                # Plain `null` is YAML's empty value; Fluentd users write `type: null`.
                hint = 'for the null type write it quoted, type: "null"; '
            return self.report(type_path, self.line_of(entry.value, entry.key_line),
                               f"unknown {kind} type {describe_value(read.value)}; "
                               f"{hint}{expected}")
        return self.structure(node, cls, path, owner_line, secret=secret, type_key=TYPE_KEY)

    def structure(self, node: Node | None, cls: type, path: str, owner_line: int,
                  *, secret: bool, type_key: str | None = None) -> Any:
        """A dataclass from a mapping: unknown keys, missing keys and checks are reported."""
        if node is None or (isinstance(node, Scalar) and node.value is None):
            node = Map((), owner_line)
        if not isinstance(node, Map):
            return self.report(path, self.line_of(node, owner_line),
                               f"expected a mapping, got {describe(node, secret=secret)}")
        fields = {f.name: f for f in config_fields(cls)}
        hints = field_types(cls)
        allowed = sorted(set(fields) | ({type_key} if type_key else set()))
        values: dict[str, Any] = {}
        valid = True
        for entry in node.entries:
            child_path = join_key(path, entry.key)
            f = fields.get(entry.key)
            if f is None:
                if entry.key != type_key:
                    self.report(child_path, entry.key_line,
                                f"unknown key; {suggestion(entry.key, allowed)}"
                                f"expected one of: {', '.join(allowed)}")
                    valid = False
                continue
            value = self.field_value(entry.value, f, hints[f.name], child_path, entry.key_line,
                                     secret=secret or bool(f.metadata.get(SECRET)))
            if isinstance(value, _Invalid):
                valid = False
            values[f.name] = value
        for name, f in fields.items():
            if name not in values and is_required(f):
                self.report(join_key(path, name), owner_line, "required key is missing")
                valid = False
        if not valid:
            return INVALID
        try:
            instance = cls(**values)
        except ValueError as exc:
            parts = str(exc).split("; ")
            if all(_field_message(part, fields) for part in parts):
                for part in parts:
                    self.cross_field(part, node, fields, path, owner_line)
            else:
                self.report(path, owner_line, str(exc))
            return INVALID
        validate = getattr(instance, "validate", None)
        messages = [str(m) for m in validate()] if callable(validate) else []
        for message in messages:
            self.cross_field(message, node, fields, path, owner_line)
        return INVALID if messages else instance

    def cross_field(self, message: str, node: Map, fields: Mapping[str, Any], path: str,
                    owner_line: int) -> None:
        """Report a rule that spans fields on the key it names (``"index: required when..."``),
        or on the mapping when it names none."""
        located = _field_message(message, fields)
        if located is None:
            self.report(path, owner_line, message)
            return
        key, text = located
        entry = node.get(key)
        line = owner_line if entry is None else self.line_of(entry.value, entry.key_line)
        self.report(join_key(path, key), line, text)

    def field_value(self, node: Node, f: dataclasses.Field[Any], tp: Any, path: str,
                    key_line: int, *, secret: bool) -> Any:
        """One field's value, then its ``check`` if it has one."""
        kind = f.metadata.get(BY_TYPE)
        if kind is not None:
            value = self.by_type(node, kind, path, key_line, secret=secret)
        else:
            value = self.convert(node, tp, path, key_line, secret=secret)
        check: Callable[[Any], str | None] | None = f.metadata.get(CHECK)
        if check is not None and not isinstance(value, _Invalid):
            message = check(value)
            if message is not None:
                return self.report(path, self.line_of(node, key_line), message)
        return value
