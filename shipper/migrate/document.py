"""The shipper configuration being written: named components with their origin and comments.

Components keep the order the Fluentd file gave them (filters run in that order), and their
keys the order the mappers chose (``type`` and ``match`` first, ``buffer`` last), so the YAML
reads like a hand-written file. A value may carry a trailing comment (``Commented``) that
explains how it was derived, e.g. a total computed from ``queue_limit_length``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["sources", "filters", "outputs"]
KINDS: tuple[Kind, ...] = ("sources", "filters", "outputs")


@dataclass(frozen=True, slots=True)
class Commented:
    """A value written with a trailing ``# comment``."""

    value: Any
    comment: str


@dataclass
class Component:
    """One source, filter or output of the shipper config."""

    name: str
    body: dict[str, Any]
    origin: str  # "fluent.conf:12 <match **> @type elasticsearch"
    comments: list[str] = field(default_factory=list)


@dataclass
class Document:
    """The whole shipper configuration, plus the header comments."""

    sources: dict[str, Component] = field(default_factory=dict)
    filters: dict[str, Component] = field(default_factory=dict)
    outputs: dict[str, Component] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)
    _suffixes: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)

    def section(self, kind: Kind) -> dict[str, Component]:
        return {"sources": self.sources, "filters": self.filters, "outputs": self.outputs}[kind]

    def add(self, kind: Kind, wanted: str, body: dict[str, Any], origin: str,
            comments: list[str] | None = None) -> Component:
        """Add a component under a unique, readable name derived from ``wanted``."""
        section = self.section(kind)
        base = component_name(wanted)
        name, n = base, self._suffixes.get((kind, base), 2)
        while name in section:  # starts at the last suffix given: linear in components
            name, n = f"{base}_{n}", n + 1
        self._suffixes[(kind, base)] = n
        component = Component(name, body, origin, list(comments or []))
        section[name] = component
        return component

    def plain(self) -> dict[str, Any]:
        """The configuration as plain data (comments dropped), for validation in tests."""
        def strip(value: Any) -> Any:
            if isinstance(value, Commented):
                return strip(value.value)
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items()}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value

        out: dict[str, Any] = {}
        for key in ("state_dir", "log_level"):
            if key in self.top:
                out[key] = strip(self.top[key])
        for kind in KINDS:
            section = self.section(kind)
            if section:
                out[kind] = {name: strip(c.body) for name, c in section.items()}
        for key, value in self.top.items():
            if key not in out:
                out[key] = strip(value)
        return out


def component_name(wanted: str) -> str:
    """``in_tail_container_logs``, ``out-es``, ``fluentd-containers.log`` -> snake_case."""
    name = re.sub(r"[^a-z0-9]+", "_", wanted.lower()).strip("_")
    return name or "component"
