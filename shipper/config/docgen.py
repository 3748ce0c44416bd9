"""Render the config reference (docs/CONFIG.md) from the config dataclasses themselves.

The dataclasses are the schema the loader enforces, so generating the reference from them
keeps the two from drifting: a key cannot be accepted without being documented here, with the
same name, type and default. Each dataclass becomes a Markdown table (key, type, default,
description, from ``metadata["doc"]``); nested dataclasses get their own table under a heading
that is their key path. ``missing_docs`` lists the fields without a doc, for a test that keeps
every field documented.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args, get_origin

from shipper.config.model import AgentConfig
from shipper.config.schema import (
    BY_TYPE,
    DOC,
    SECRET,
    config_fields,
    field_types,
    is_required,
    optional_inner,
    show_literal,
    strip_annotated,
    unit_of,
)
from shipper.config.types import BYTES_UNIT, SECONDS_UNIT
from shipper.config.units import format_bytes, format_seconds

CONVENTIONS = """\
Conventions that hold for every key:

- Unknown keys are errors, and so are values of the wrong type; every problem is reported with
  its file, line and key path before anything starts.
- A **size** is a byte count or a string with a unit: `512KiB`, `2MiB`, `1GiB` (powers of
  1024) or `100k`, `10MB`, `1GB` (powers of 1000); units are case-insensitive.
- A **duration** is a number of seconds or a string such as `250ms`, `5s`, `2m`, `1h`, `1h30m`.
- `${NAME}` in a string is replaced by the environment variable `NAME` (an error if it is not
  set); `${NAME:-default}` falls back to `default` when it is unset or empty; `$${` is a
  literal `${`. After substitution the text is read as the key's type, so `port: ${PORT}` works.
- A boolean is `true` or `false`; `yes`, `no`, `on` and `off` are strings.
"""


def render_config_docs(types: dict[str, type], *, title: str = "Configuration reference") -> str:
    """Render Markdown tables for each named dataclass and, recursively, its nested ones.

    ``types`` maps a section name (``shipper.yaml``, ``output type: elasticsearch``...) to a
    config dataclass; sections keep the order of the mapping.
    """
    lines = [f"# {title}", "", CONVENTIONS]
    for name, cls in types.items():
        lines.extend(_section(name, cls, level=2))
    return "\n".join(lines).rstrip() + "\n"


def render_agent_docs(source_types: Mapping[str, type], output_types: Mapping[str, type], *,
                      filter_types: Mapping[str, type] | None = None,
                      title: str = "Configuration reference") -> str:
    """The whole reference: the top-level keys, then each source type and each output type.

    Takes the same registries as ``load_config``, so every type the agent accepts is documented.
    """
    lines = [f"# {title}", "", CONVENTIONS]
    lines.extend(_section("shipper.yaml", AgentConfig, level=2))
    for key, registry in (("sources", source_types), ("filters", filter_types or {}),
                          ("outputs", output_types)):
        for type_name in sorted(registry):
            lines.extend(_section(f"{key}.<name>", registry[type_name], level=2,
                                  heading=f"`{key}.<name>` with `type: {type_name}`"))
    return "\n".join(lines).rstrip() + "\n"


def missing_docs(types: dict[str, type]) -> list[str]:
    """Key paths of every field (nested ones too) that has no ``doc`` metadata."""
    missing: list[str] = []
    for name, cls in types.items():
        for path, nested in _walk(name, cls):
            missing.extend(f"{path}.{f.name}" for f in config_fields(nested)
                           if not f.metadata.get(DOC))
    return missing


def type_label(tp: Any, f: dataclasses.Field[Any] | None = None) -> str:
    """How a type reads in the reference (``size``, ``list of string``, ``one of a, b``)."""
    if f is not None and f.metadata.get(BY_TYPE):
        return f"map of name to {f.metadata[BY_TYPE]}"
    unit = unit_of(tp)
    if unit == BYTES_UNIT:
        return "size"
    if unit == SECONDS_UNIT:
        return "duration"
    tp = strip_annotated(tp)
    inner = optional_inner(tp)
    if inner is not None:
        return f"{type_label(inner)} or null"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f"`{show_literal(a)}`" for a in get_args(tp))
    if origin in (list, tuple):
        return f"list of {type_label(get_args(tp)[0])}"
    if origin is dict:
        return f"map of string to {type_label(get_args(tp)[1])}"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "mapping"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(f"`{show_literal(m.value)}`" for m in tp)
    labels = {str: "string", int: "integer", float: "number", bool: "boolean", Any: "any"}
    if tp in labels:
        return labels[tp]
    raise TypeError(f"unsupported config type {tp!r}")


def default_label(f: dataclasses.Field[Any], tp: Any) -> str:
    """How a field's default reads in the reference; ``required`` when it has none."""
    if is_required(f):
        return "**required**"
    factory = f.default_factory
    value: Any = factory() if callable(factory) else f.default
    if value is None:
        return "`null`"
    if f.metadata.get(SECRET):
        return "(secret)"
    if dataclasses.is_dataclass(value):
        return "see below"
    unit = unit_of(tp)
    if unit == BYTES_UNIT:
        return f"`{format_bytes(value)}`"
    if unit == SECONDS_UNIT:
        return f"`{format_seconds(value)}`"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, str):
        return f"`{json.dumps(value)}`"
    if isinstance(value, bool):
        return f"`{show_literal(value)}`"
    if isinstance(value, list | tuple | dict):
        return f"`{json.dumps(value, default=str)}`"
    return f"`{value}`"


def _section(path: str, cls: type, level: int, heading: str | None = None) -> list[str]:
    lines = [f"{'#' * level} {heading or f'`{path}`'}", ""]
    summary = _summary(cls)
    if summary:
        lines += [summary, ""]
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    hints = field_types(cls)
    for f in config_fields(cls):
        doc = str(f.metadata.get(DOC, ""))
        if f.metadata.get(SECRET):
            doc = (doc + " Secret: never shown in messages or dumps.").strip()
        cells = [f"`{f.name}`", type_label(hints[f.name], f), default_label(f, hints[f.name]), doc]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    examples = getattr(cls, "__config_examples__", "")
    if examples:
        # A component may carry worked examples (Markdown) next to its fields, so the
        # reference shows them and they cannot drift away from the code.
        lines += [examples.strip(), ""]
    for f in config_fields(cls):
        for suffix, nested in _nested(hints[f.name]):
            lines.extend(_section(f"{path}.{f.name}{suffix}", nested, level + 1))
    return lines


def _walk(path: str, cls: type) -> Iterator[tuple[str, type]]:
    yield path, cls
    hints = field_types(cls)
    for f in config_fields(cls):
        for suffix, nested in _nested(hints[f.name]):
            yield from _walk(f"{path}.{f.name}{suffix}", nested)


def _nested(tp: Any) -> list[tuple[str, type]]:
    """Dataclasses reachable from a field type, with the key path suffix that reaches them."""
    tp = strip_annotated(tp)
    inner = optional_inner(tp)
    if inner is not None:
        return _nested(inner)
    origin = get_origin(tp)
    if origin in (list, tuple):
        return [(f"[]{suffix}", cls) for suffix, cls in _nested(get_args(tp)[0])]
    if origin is dict:
        return [(f".<name>{suffix}", cls) for suffix, cls in _nested(get_args(tp)[1])]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return [("", tp)]
    return []


def _summary(cls: type) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(f"{cls.__name__}("):  # the signature dataclasses put in for no docstring
        return ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
