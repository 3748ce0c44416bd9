"""The parsed Fluentd configuration: values that may come from the environment, and sections.

A Fluentd value is text, but a double-quoted value may embed Ruby (``"#{ENV['HOST']}"``) that
Fluentd evaluates at start. The migration must not evaluate it on the machine that converts (the
environment there is not the pod's), so a value is kept as *pieces*: literal text and
environment lookups with their fallback. The mapper then writes shipper's ``${NAME}`` /
``${NAME:-default}`` references, and uses the fallback only where it must decide something
(which plugin a ``@type`` names, which file an ``@include`` reads).

Every parameter and section remembers the file and line it was written on, so each warning
points at the line to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# What Ruby's `ENV['X'] || <fallback>` falls back to when X is unset.
Fallback = Literal["text", "default", "nil", "none"]


@dataclass(frozen=True, slots=True)
class Text:
    """Literal text."""

    text: str


@dataclass(frozen=True, slots=True)
class Env:
    """``ENV['name']``; ``fallback`` says what applies when it is unset.

    - ``text``: ``ENV['X'] || 'default'`` (``default`` holds the text),
    - ``default`` / ``nil``: ``|| use_default`` / ``|| use_nil`` (the parameter is left unset),
    - ``none``: no fallback (Ruby interpolates an unset variable as empty text).
    """

    name: str
    fallback: Fallback = "none"
    default: str = ""


@dataclass(frozen=True, slots=True)
class Ruby:
    """Embedded Ruby the migration cannot translate; ``code`` is what was written."""

    code: str


Piece = Text | Env | Ruby


@dataclass(frozen=True, slots=True)
class Value:
    """A parameter value as pieces (see the module docstring)."""

    pieces: tuple[Piece, ...] = ()

    @staticmethod
    def of(text: str) -> Value:
        return Value((Text(text),) if text else ())

    @property
    def literal(self) -> str | None:
        """The text when no piece depends on the environment or on Ruby, else None."""
        if all(isinstance(p, Text) for p in self.pieces):
            return "".join(p.text for p in self.pieces if isinstance(p, Text))
        return None

    @property
    def env_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pieces if isinstance(p, Env))

    @property
    def untranslatable(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.pieces if isinstance(p, Ruby))

    @property
    def unset_means_absent(self) -> bool:
        """True for ``ENV['X'] || use_default`` alone: unset leaves the parameter unset."""
        return (len(self.pieces) == 1 and isinstance(self.pieces[0], Env)
                and self.pieces[0].fallback in ("default", "nil"))

    def assumed(self) -> str:
        """The text with every lookup replaced by its fallback (unset environment).

        Used only to decide *how* to convert (a plugin type, an include path, a tag), never
        as the value written, except where the target cannot take a reference.
        """
        out = []
        for p in self.pieces:
            if isinstance(p, Text):
                out.append(p.text)
            elif isinstance(p, Env) and p.fallback == "text":
                out.append(p.default)
        return "".join(out)

    def describe(self) -> str:
        """The value as written, for messages (``ENV['X'] || 'd'`` pieces spelled out)."""
        out = []
        for p in self.pieces:
            if isinstance(p, Text):
                out.append(p.text)
            elif isinstance(p, Ruby):
                out.append(f"#{{{p.code}}}")
            elif p.fallback == "text":
                out.append(f"#{{ENV['{p.name}'] || '{p.default}'}}")
            elif p.fallback in ("default", "nil"):
                out.append(f"#{{ENV['{p.name}'] || use_{p.fallback}}}")
            else:
                out.append(f"#{{ENV['{p.name}']}}")
        return "".join(out)

    def __add__(self, other: Value) -> Value:
        return Value(self.pieces + other.pieces)


@dataclass(slots=True)
class Param:
    """``key value`` inside a section."""

    key: str
    value: Value
    file: str
    line: int
    flag: bool = False  # written without a value (``retry_forever``): true for a bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class Section:
    """``<name arg> ... </name>`` (the file's top level is a section named ``ROOT``)."""

    name: str
    arg: Value
    file: str
    line: int
    params: dict[str, Param] = field(default_factory=dict)
    children: list[Section] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def plugin(self) -> str:
        """The plugin type (``@type``, or ``type`` from Fluentd v0.12), as far as known."""
        param = self.params.get("@type") or self.params.get("type")
        return param.value.assumed().strip() if param is not None else ""

    def title(self) -> str:
        """How messages name this section: ``<match kubernetes.**> @type elasticsearch``."""
        arg = self.arg.assumed()
        head = f"<{self.name} {arg}>" if arg else f"<{self.name}>"
        return f"{head} @type {self.plugin}" if self.plugin else head

    def child(self, name: str) -> Section | None:
        return next((c for c in self.children if c.name == name), None)

    def all_children(self, name: str) -> list[Section]:
        return [c for c in self.children if c.name == name]
