"""Write the converted configuration as YAML that reads like a hand-written file.

A general YAML dumper would sort or reflow keys and could not place comments, so this small
writer does it: a header listing what the operator must review (warnings, moved secrets, the
environment variables the file reads, notes), each component preceded by the Fluentd section
it came from, block mappings in the mappers' key order, short scalar lists in flow style, and
trailing comments on values that were derived (``Commented``).

Strings are written plain only when YAML reads them back as the same string under both the
1.1 and 1.2 rules (``yes``, ``1_000``, ``12:30`` and friends are quoted); ``${VAR}`` references
and regular expressions are quoted, the latter in single quotes so backslashes stay readable.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import Any

import yaml

from shipper.config.yamltree import (
    parse_core_bool,
    parse_core_float,
    parse_core_int,
    parse_core_null,
)
from shipper.migrate.document import KINDS, Commented, Component, Document
from shipper.migrate.findings import Findings

WIDTH = 100
FLOW_LIST_WIDTH = 72
_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./@%+*-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def scalar(value: Any) -> str:
    """One YAML scalar."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and _reads_back(text):
        return text
    if "'" not in text and not _CONTROL.search(text) and "\\" in text:
        return f"'{text}'"
    return json.dumps(text, ensure_ascii=False)


def _reads_back(text: str) -> bool:
    """True when ``text`` written plain is a string for PyYAML (1.1) and shipper (1.2 core)."""
    if (parse_core_null(text) or parse_core_bool(text) is not None
            or parse_core_int(text) is not None or parse_core_float(text) is not None):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def _comment_lines(text: str, indent: str, first: str = "", rest: str = "") -> list[str]:
    width = max(40, WIDTH - len(indent))
    wrapped = textwrap.wrap(text, width=width, initial_indent=first, subsequent_indent=rest,
                            break_long_words=False, break_on_hyphens=False) or [first]
    return [f"{indent}# {line}".rstrip() for line in wrapped]


def _is_flow_list(value: list[Any]) -> bool:
    if not all(not isinstance(v, dict | list | Commented) for v in value):
        return False
    return len(", ".join(scalar(v) for v in value)) <= FLOW_LIST_WIDTH


def _value_lines(key: str, value: Any, indent: str) -> list[str]:
    comment = ""
    if isinstance(value, Commented):
        comment, value = f"  # {value.comment}", value.value
    head = f"{indent}{key}:"
    if isinstance(value, dict):
        if not value:
            return [f"{head} {{}}{comment}"]
        return [head + comment, *_mapping_lines(value, indent + "  ")]
    if isinstance(value, list):
        if not value:
            return [f"{head} []{comment}"]
        if _is_flow_list(value):
            return [f"{head} [{', '.join(scalar(v) for v in value)}]{comment}"]
        lines = [head + comment]
        for item in value:
            lines.extend(_item_lines(item, indent + "  "))
        return lines
    return [f"{head} {scalar(value)}{comment}"]


def _item_lines(item: Any, indent: str) -> list[str]:
    if isinstance(item, Commented):
        return [f"{indent}- {scalar(item.value)}  # {item.comment}"]
    if isinstance(item, dict) and item:
        lines = _mapping_lines(item, indent + "  ")
        return [f"{indent}- {lines[0].lstrip()}", *lines[1:]]
    return [f"{indent}- {scalar(item)}"]


def _mapping_lines(mapping: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for key, value in mapping.items():
        lines.extend(_value_lines(scalar(key), value, indent))
    return lines


def _component_lines(component: Component) -> list[str]:
    lines = _comment_lines(f"from {component.origin}", "  ")
    for comment in component.comments:
        lines += _comment_lines(comment, "  ")
    lines += _value_lines(scalar(component.name), component.body, "  ")
    return lines


def _header(source: str, findings: Findings, env_used: dict[str, str]) -> list[str]:
    lines = [f"# shipper configuration converted from {source} by `shipper migrate-fluentd`.",
             "# Review the notes below, then: shipper check -c <this file>"]
    moved = {s.env: s for s in findings.secrets}
    if findings.secrets:
        lines += ["#", "# Secrets that were written in the Fluentd file now come from the "
                       "environment;", "# set these variables (from a Kubernetes Secret):"]
        for secret in findings.secrets:
            lines += _comment_lines(f"{secret.env}: {secret.what} ({secret.where})", "",
                                    "  ", "    ")
    others = {name: where for name, where in env_used.items() if name not in moved}
    if others:
        lines += ["#", "# Environment variables the configuration reads (as Fluentd did):"]
        for name, where in others.items():
            lines += _comment_lines(f"{name} (first used at {where})", "", "  ", "    ")
    for title, items in (("Warnings", findings.warnings), ("Notes", findings.notes)):
        if items:
            lines += ["#", f"# {title} ({len(items)}):"]
            for finding in items:
                lines += _comment_lines(f"{finding.where}: {finding.message}", "", "  ",
                                        "    ")
    return lines


def render(document: Document, findings: Findings, env_used: dict[str, str],
           source: str) -> str:
    """The YAML text of ``document`` with its header."""
    lines = _header(source, findings, env_used)
    top = dict(document.top)
    for key in ("state_dir", "log_level"):
        if key in top:
            lines += ["", *_value_lines(key, top.pop(key), "")]
    for kind in KINDS:
        section: dict[str, Component] = document.section(kind)
        if not section:
            continue
        lines += ["", f"{kind}:"]
        for index, component in enumerate(section.values()):
            if index:
                lines.append("")
            lines += _component_lines(component)
    for key, value in top.items():
        lines += ["", *_value_lines(key, value, "")]
    return "\n".join(lines) + "\n"
