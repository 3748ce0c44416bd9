"""Reading one Fluentd section for conversion: typed values, references, leftovers.

``SectionReader`` is how every mapper reads parameters. Each read marks the parameter as
used; at the end ``finish`` reports every parameter nobody read as a warning (or as a note,
for the ones a mapper declared unnecessary), so no setting is ever dropped silently.

Values become what shipper's loader reads:

- literal text is converted now (``2M`` is Fluentd's 2 MiB -> ``2MiB``, ``5s`` -> ``5s``,
  ``yes`` -> ``true``);
- an environment lookup becomes ``${NAME}`` / ``${NAME:-default}`` with the default
  converted the same way; ``ENV['X'] || use_default`` becomes ``${X:-<shipper default>}``
  (or ``${X:-}``, empty, for an optional key, which the loader reads as unset);
- embedded Ruby that has no such equivalent is reported and the key left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipper.config.units import format_bytes, format_seconds
from shipper.migrate.document import Document
from shipper.migrate.findings import Findings, is_secret_key
from shipper.migrate.model import Env, Param, Ruby, Section, Text, Value

_FLUENT_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$", re.IGNORECASE)
_FLUENT_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_ENV_NAME = re.compile(r"[^A-Z0-9_]+")
def _may_hold_a_secret(code: str) -> bool:
    """Embedded Ruby with a string in it (a fallback, a file read) may spell a credential."""
    return any(quote in code for quote in ("'", '"', "%q", "%Q", "<<")) or bool(
        _CREDENTIAL_TEXT.search(code))


#: Text that reads like a credential whatever the key is called.
_CREDENTIAL_TEXT = re.compile(r"bearer|basic\s|authorization|passw|secret|token|api[-_]?key",
                              re.IGNORECASE)


def fluent_size(text: str) -> int | None:
    """Fluentd's size: ``k``/``m``/``g``/``t`` are powers of 1024 (``2M`` = 2 MiB)."""
    match = _FLUENT_SIZE.match(text)
    if match is None:
        return None
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


def fluent_seconds(text: str) -> float | None:
    """Fluentd's time value: a number with an optional s/m/h/d unit."""
    match = _FLUENT_TIME.match(text)
    if match is None:
        return None
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def fluent_bool(text: str) -> bool | None:
    """Fluentd's boolean: true/yes, false/no; an empty value (a flag) is true."""
    lowered = text.strip().lower()
    if lowered in ("", "true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    return None


def size_text(text: str) -> str | None:
    size = fluent_size(text)
    return None if size is None else format_bytes(size)


def seconds_text(text: str) -> str | None:
    seconds = fluent_seconds(text)
    return None if seconds is None else format_seconds(seconds)


def bool_text(text: str) -> str | None:
    value = fluent_bool(text)
    return None if value is None else ("true" if value else "false")


@dataclass
class Conversion:
    """State shared by all mappers of one migration."""

    findings: Findings
    document: Document = field(default_factory=Document)
    env_used: dict[str, str] = field(default_factory=dict)  # name -> first place it is used
    secret_envs: set[str] = field(default_factory=set)
    # Fluentd in_tail tags without '*' (every record gets exactly that tag) -> shipper's
    # tag_prefix, which always appends the path: patterns naming the tag are widened.
    fixed_tags: dict[str, str] = field(default_factory=dict)
    logzio_type: str | None = None  # set by a record_transformer that only sets Logz.io's type

    def secret_env(self, wanted: str) -> str:
        """A fresh environment variable name for a moved secret (``ES_PASSWORD``...)."""
        base = _ENV_NAME.sub("_", wanted.upper()).strip("_")
        name, n = base, 2
        while name in self.secret_envs:
            name, n = f"{base}_{n}", n + 1
        self.secret_envs.add(name)
        return name


class SectionReader:
    """Reads the parameters of one section; see the module docstring."""

    def __init__(self, section: Section, conv: Conversion, ignore: tuple[str, ...] = ()) -> None:
        self.section = section
        self.conv = conv
        self.findings = conv.findings
        self.used: set[str] = {"@type", "type", "@id", "@log_level", "log_level", *ignore}

    def has(self, *keys: str) -> bool:
        return any(k in self.section.params for k in keys)

    def param(self, *keys: str) -> Param | None:
        """The first of ``keys`` that is set (aliases: v1 name first, then v0.12 names)."""
        for key in keys:
            self.used.add(key)
        return next((self.section.params[k] for k in keys if k in self.section.params), None)

    def skip(self, keys: tuple[str, ...] | list[str], why: str = "") -> None:
        """Mark ``keys`` as handled; with ``why``, say so in a note for each one set."""
        for key in keys:
            param = self.section.params.get(key)
            if param is not None and key not in self.used and why:
                self.findings.note(param.where, f"{key}: {why}")
            self.used.add(key)

    def warn(self, param: Param | Section, message: str) -> None:
        self.findings.warn(param.where, message)

    def note(self, param: Param | Section, message: str) -> None:
        self.findings.note(param.where, message)

    # -- rendering ------------------------------------------------------------------------

    def render(self, param: Param, convert: Callable[[str], str | None] = lambda s: s,
               optional: bool = False, default: str | None = None) -> str | None:
        """``param``'s value as shipper text with ``${...}`` references; None if it cannot be.

        ``convert`` turns Fluentd text (a literal, or a lookup's default) into shipper text.
        ``default`` is what ``use_default`` falls back to for a key that cannot be empty.
        """
        out: list[str] = []
        for piece in param.value.pieces:
            if isinstance(piece, Text):
                out.append(piece.text.replace("${", "$${"))
            elif isinstance(piece, Ruby):
                code = ("(value hidden)" if is_secret_key(param.key)
                        or _may_hold_a_secret(piece.code) else f"#{{{piece.code}}}")
                self.warn(param, f"{param.key}: embedded Ruby {code} has no "
                                 "equivalent; the key is left out, set it by hand")
                return None
            else:
                rendered = self._env(param, piece, convert, optional, default)
                if rendered is None:
                    return None
                out.append(rendered)
        if param.value.literal is not None:
            converted = convert(param.value.literal)
            if converted is None:
                self.warn(param, f"{param.key}: {self.shown(param)} is not a valid value; "
                                 "the key is left out")
                return None
            return converted.replace("${", "$${")
        return "".join(out)

    def _env(self, param: Param, env: Env, convert: Callable[[str], str | None],
             optional: bool, default: str | None) -> str | None:
        self.conv.env_used.setdefault(env.name, param.where)
        if env.fallback == "text":
            value = convert(env.default)
            if value is None or "}" in value:
                self.warn(param, f"{param.key}: the default of ENV['{env.name}'] cannot be "
                                 "converted; the key is left out")
                return None
            return f"${{{env.name}:-{value}}}"
        if env.fallback in ("default", "nil") or optional:
            if optional or default is None:
                return f"${{{env.name}:-}}"
            return f"${{{env.name}:-{default}}}"
        return f"${{{env.name}}}"

    def shown(self, param: Param) -> str:
        """The value for a message: never a credential, never a URL's query or user info.

        Hidden too: headers (an Authorization header is a credential under another name),
        embedded Ruby (it may read or hold one) and text that reads like a credential.
        """
        if (is_secret_key(param.key) or "header" in param.key.lower()
                or any(isinstance(piece, Ruby) and _may_hold_a_secret(piece.code)
                       for piece in param.value.pieces)
                or _CREDENTIAL_TEXT.search(param.value.describe())):
            return "(value hidden)"
        text = param.value.describe()
        if "://" in text:  # a URL may carry a token in its query or a password before @
            text = re.sub(r"\?.*$", "?...", text)
            text = re.sub(r"//[^/@\s]*@", "//...@", text)
        return repr(text if len(text) <= 80 else text[:77] + "...")

    def secret(self, key: str, env: str, what: str) -> str | None:
        """A credential: a literal moves to a new ``${ENV}`` reference (listed), a lookup
        stays one. ``env`` is the wanted variable name, ``what`` names it in the list."""
        param = self.param(key)
        if param is None:
            return None
        return self.secret_value(param, param.value, env, what)

    def secret_value(self, param: Param, value: Value, env: str, what: str) -> str | None:
        """Like ``secret`` for a value found inside another one (a URL's token)."""
        literal = value.literal
        if literal is None:
            pieces = []
            for piece in value.pieces:  # ENV['X'] || 'hunter2': the fallback is a secret too
                if isinstance(piece, Env) and piece.fallback == "text" and piece.default:
                    self.conv.findings.secret(piece.name, param.where,
                                              f"{what} (its default was written in the file)")
                    piece = Env(piece.name)
                pieces.append(piece)
            return self.render(Param(param.key, Value(tuple(pieces)), param.file, param.line))
        if not literal:
            return None
        name = self.conv.secret_env(env)
        self.conv.findings.secret(name, param.where, what)
        self.conv.env_used.setdefault(name, param.where)
        return f"${{{name}}}"

    # -- typed reads ----------------------------------------------------------------------

    def text(self, *keys: str, optional: bool = False, default: str | None = None) -> Any:
        param = self.param(*keys)
        return None if param is None else self.render(param, optional=optional, default=default)

    def size(self, *keys: str, default: int | None = None) -> Any:
        param = self.param(*keys)
        if param is None:
            return None
        rendered = self.render(param, size_text,
                               default=None if default is None else format_bytes(default))
        if rendered is not None:
            for name in param.value.env_names:
                self.env_size(param, name)
        return rendered

    def env_size(self, param: Param, name: str) -> None:
        """A size set by the environment keeps Fluentd's units there: say it must change.

        The default in the file is converted (``8M`` -> ``8MiB``), but a value the DaemonSet
        sets is read at start by shipper, whose ``M`` is decimal: Fluentd's ``2M`` (2 MiB)
        would become 2,000,000 bytes.
        """
        self.warn(param, f"{param.key}: ENV['{name}'] holds a size in Fluentd's units, where "
                         f"k/m/g are 1024-based; shipper reads 2M as 2,000,000 bytes, so set "
                         f"{name} as 2MiB (or a byte count) where the pod defines it")

    def seconds(self, *keys: str, default: float | None = None) -> Any:
        param = self.param(*keys)
        if param is None:
            return None
        return self.render(param, seconds_text,
                           default=None if default is None else format_seconds(default))

    def boolean(self, *keys: str, default: bool | None = None) -> Any:
        """True/False for a literal (a flag is true), a ``${...}`` text for a lookup."""
        param = self.param(*keys)
        if param is None:
            return None
        if param.flag:
            return True
        rendered = self.render(param, bool_text,
                               default=None if default is None else str(default).lower())
        if rendered in ("true", "false"):
            return rendered == "true"
        return rendered

    def integer(self, *keys: str, default: int | None = None) -> Any:
        param = self.param(*keys)
        if param is None:
            return None
        rendered = self.render(param, lambda s: s.strip() if s.strip().isdigit() else None,
                               default=None if default is None else str(default))
        return int(rendered) if rendered is not None and rendered.isdigit() else rendered

    def strings(self, *keys: str) -> list[str] | None:
        """A list: a JSON array, or comma-separated text (Fluentd's ``:array`` type)."""
        param = self.param(*keys)
        if param is None:
            return None
        literal = param.value.literal
        if literal is None:
            if param.value.unset_means_absent:
                env = param.value.pieces[0]
                assert isinstance(env, Env)
                self.warn(param, f"{param.key} comes from ENV['{env.name}'] (unset: none), "
                                 "which shipper does not read for a list: if the pod sets "
                                 "it, write its items in the file, or they are not applied")
                return None
            rendered = self.render(param)
            return None if rendered is None else [rendered]
        literal = literal.strip()
        if literal.startswith("["):
            try:
                items = json.loads(literal)
            except ValueError:
                items = None
            if isinstance(items, list):
                return [str(i) for i in items]
        return [item.strip() for item in literal.split(",") if item.strip()]

    def literal(self, *keys: str) -> str | None:
        """The value as the converter assumes it (fallbacks applied); for decisions only."""
        param = self.param(*keys)
        return None if param is None else param.value.assumed().strip()

    def finish(self, where: str) -> None:
        """Report every parameter no mapper read (``where`` names the converted component)."""
        for key, param in self.section.params.items():
            if key not in self.used:
                value = "" if param.flag else f" {self.shown(param)}"
                self.warn(param, f"{key}{value} in {self.section.title()} has no equivalent "
                                 f"in {where}; it is not converted")
