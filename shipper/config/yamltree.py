"""YAML text to a tree of values that remember their line, safely and strictly.

Every config problem must name the line it comes from, which plain ``yaml.safe_load`` forgets.
So the text is only *composed* (parsed into a node graph, nothing constructed) by a
``yaml.SafeLoader`` subclass, and this module builds its own small tree from the nodes: scalars,
sequences and mappings that carry 1-based line numbers, mappings whose entries also carry the
line of their key.

Decisions, each to remove a classic YAML surprise from an ops config:

- Plain scalars are resolved with the YAML 1.2 core schema, not PyYAML's YAML 1.1 default:
  ``no``, ``on``, ``yes`` stay strings (the "Norway problem"), ``010`` is ten, ``1_000`` and
  ``12:30`` are strings and dates are never constructed. Only ``true``/``false`` (three
  spellings each) are booleans and only ``~``, ``null`` and empty are null.
- Only the standard tags ``!!str !!int !!float !!bool !!null !!seq !!map`` (and the ``<<``
  merge key) are accepted; any other tag is a problem, so nothing but plain data can come out.
- A duplicate key is a problem (PyYAML keeps the last one silently).
- Keys must be strings.
- Anchors and aliases work, including ``<<: *defaults`` merges (explicit keys win, earlier merge
  sources win over later ones). An alias is built once and shared, and a document that would
  expand to more than ``MAX_VALUES`` values is refused, so an alias bomb cannot exhaust memory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import yaml

from shipper.errors import ConfigProblem

MAX_VALUES = 100_000

_TAG_PREFIX = "tag:yaml.org,2002:"
STR_TAG = _TAG_PREFIX + "str"
INT_TAG = _TAG_PREFIX + "int"
FLOAT_TAG = _TAG_PREFIX + "float"
BOOL_TAG = _TAG_PREFIX + "bool"
NULL_TAG = _TAG_PREFIX + "null"
SEQ_TAG = _TAG_PREFIX + "seq"
MAP_TAG = _TAG_PREFIX + "map"
MERGE_TAG = _TAG_PREFIX + "merge"

_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)

ScalarValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar with its value already resolved (str, int, float, bool or None)."""

    value: ScalarValue
    line: int


@dataclass(frozen=True, slots=True)
class Seq:
    """A sequence; ``line`` is where it starts."""

    items: tuple[Node, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key: value`` of a mapping, with the line of the key."""

    key: str
    key_line: int
    value: Node


@dataclass(frozen=True, slots=True)
class Map:
    """A mapping; entries keep document order (merged entries first)."""

    entries: tuple[Entry, ...]
    line: int

    def get(self, key: str) -> Entry | None:
        """Return the entry for ``key`` or None."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        return None


Node = Scalar | Seq | Map


def parse_core_null(text: str) -> bool:
    """True if ``text`` is a YAML 1.2 core null."""
    return _NULL_RE.match(text) is not None


def parse_core_bool(text: str) -> bool | None:
    """Return the YAML 1.2 core boolean ``text`` spells, or None if it is not one."""
    if _BOOL_RE.match(text) is None:
        return None
    return text.lower() == "true"


def parse_core_int(text: str) -> int | None:
    """Return the YAML 1.2 core integer ``text`` spells, or None if it is not one."""
    if _INT_RE.match(text) is None:
        return None
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def parse_core_float(text: str) -> float | None:
    """Return the YAML 1.2 core float ``text`` spells, or None if it is not one."""
    if _FLOAT_RE.match(text) is None:
        return None
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if lowered.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


def join_key(path: str, key: str) -> str:
    """Extend a dotted key path; keys that would make it ambiguous are bracketed."""
    if key and re.fullmatch(r"[A-Za-z0-9_\-/]+", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def join_index(path: str, index: int) -> str:
    """Extend a key path with a list index."""
    return f"{path}[{index}]"


def show_tag(tag: str) -> str:
    """Render a tag the way it is written in YAML (``!!python/object`` rather than the URI)."""
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag


class CoreSchemaLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that resolves plain scalars with the YAML 1.2 core schema.

    It is used only to compose nodes; construction is done by ``parse_yaml``.
    """

    # Starts empty so that none of the YAML 1.1 resolvers of SafeLoader is inherited.
    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _regexp, _first in (
    (NULL_TAG, _NULL_RE, ["~", "n", "N", ""]),
    (BOOL_TAG, _BOOL_RE, list("tTfF")),
    (INT_TAG, _INT_RE, list("-+0123456789")),
    (FLOAT_TAG, _FLOAT_RE, list("-+.0123456789")),
    (MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"]),
):
    CoreSchemaLoader.add_implicit_resolver(_tag, _regexp, _first)


def parse_yaml(text: str, file: str) -> tuple[Node | None, list[ConfigProblem]]:
    """Parse one YAML document into a located tree.

    Returns the tree (None for an empty document, or when the text cannot be parsed at all) and
    every problem found. The tree is still returned when there are problems in parts of it, so
    the caller can report schema problems too; offending values are left out of it.
    """
    try:
        loader = CoreSchemaLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(file, exc)]
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        return None, [ConfigProblem(file, line, "", f"invalid YAML: {exc.reason}")]
    except RecursionError:
        return None, [_too_deep(file)]
    if root is None:
        return None, []
    builder = _TreeBuilder(file)
    try:
        tree = builder.build(root, "")
    except RecursionError:
        return None, [_too_deep(file)]
    if builder.sizes[id(root)] > MAX_VALUES:
        return None, [ConfigProblem(
            file, tree.line, "",
            f"the document expands to more than {MAX_VALUES} values through aliases")]
    return tree, builder.problems


def _too_deep(file: str) -> ConfigProblem:
    """PyYAML recurses once per nesting level: a hostile nest of ``[`` ends its stack."""
    return ConfigProblem(file, 1, "", "invalid YAML: nested too deeply to read")


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    parts = []
    if exc.context:
        context_line = f" on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        parts.append(f"{exc.context}{context_line}")
    if exc.problem:
        parts.append(exc.problem)
    line = mark.line + 1 if mark is not None else None
    return ConfigProblem(file, line, "", "invalid YAML: " + ", ".join(parts))


class _TreeBuilder:
    """Turns composed YAML nodes into the located tree, collecting problems on the way."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[ConfigProblem] = []
        self.sizes: dict[int, int] = {}
        self._built: dict[int, Node] = {}
        self._building: set[int] = set()

    def problem(self, path: str, line: int, message: str) -> None:
        self.problems.append(ConfigProblem(self.file, line, path, message))

    def build(self, node: yaml.Node, path: str) -> Node:
        """Build ``node`` once; an alias to it reuses the result, a cycle is a problem."""
        key = id(node)
        built = self._built.get(key)
        if built is not None:
            return built
        line = node.start_mark.line + 1
        if key in self._building:
            self.problem(path, line, "an alias refers to a value that contains it")
            self.sizes[key] = 1
            return Scalar(None, line)
        self._building.add(key)
        try:
            if isinstance(node, yaml.ScalarNode):
                built = self._scalar(node, path, line)
                self.sizes[key] = 1
            elif isinstance(node, yaml.SequenceNode):
                built = self._sequence(node, path, line)
            else:
                assert isinstance(node, yaml.MappingNode)
                built = self._mapping(node, path, line)
        finally:
            self._building.discard(key)
        self._built[key] = built
        return built

    def _scalar(self, node: yaml.ScalarNode, path: str, line: int) -> Scalar:
        text: str = node.value
        tag: str = node.tag
        value: ScalarValue
        if tag == STR_TAG:
            return Scalar(text, line)
        if tag == NULL_TAG and parse_core_null(text):
            return Scalar(None, line)
        if tag == BOOL_TAG and (value := parse_core_bool(text)) is not None:
            return Scalar(value, line)
        if tag == INT_TAG and (value := parse_core_int(text)) is not None:
            return Scalar(value, line)
        if tag == FLOAT_TAG and (value := parse_core_float(text)) is not None:
            return Scalar(value, line)
        if tag == FLOAT_TAG and (value := parse_core_int(text)) is not None:
            return Scalar(float(value), line)
        if tag in (NULL_TAG, BOOL_TAG, INT_TAG, FLOAT_TAG):
            self.problem(path, line, f"cannot read {text!r} as {show_tag(tag)}")
        else:
            self.problem(path, line, f"unsupported YAML tag {show_tag(tag)!r}")
        return Scalar(None, line)

    def _sequence(self, node: yaml.SequenceNode, path: str, line: int) -> Node:
        if node.tag != SEQ_TAG:
            self.problem(path, line, f"unsupported YAML tag {show_tag(node.tag)!r}")
            self.sizes[id(node)] = 1
            return Scalar(None, line)
        items = tuple(self.build(item, join_index(path, index))
                      for index, item in enumerate(node.value))
        self.sizes[id(node)] = 1 + sum(self.sizes[id(item)] for item in node.value)
        return Seq(items, line)

    def _mapping(self, node: yaml.MappingNode, path: str, line: int) -> Node:
        if node.tag != MAP_TAG:
            self.problem(path, line, f"unsupported YAML tag {show_tag(node.tag)!r}")
            self.sizes[id(node)] = 1
            return Scalar(None, line)
        explicit: list[Entry] = []
        merged: dict[str, Entry] = {}
        first_line: dict[str, int] = {}
        size = 1
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == MERGE_TAG:
                for source in self._merge_sources(value_node, path):
                    for entry in source.entries:
                        merged.setdefault(entry.key, entry)
                size += self.sizes.get(id(value_node), 1)
                continue
            key = self._key(key_node, path, key_line)
            if key is None:
                continue
            child_path = join_key(path, key)
            if key in first_line:
                self.problem(child_path, key_line,
                             f"duplicate key; first defined on line {first_line[key]}")
                continue
            first_line[key] = key_line
            explicit.append(Entry(key, key_line, self.build(value_node, child_path)))
            size += self.sizes[id(value_node)]
        self.sizes[id(node)] = size
        inherited = tuple(entry for key, entry in merged.items() if key not in first_line)
        return Map(inherited + tuple(explicit), line)

    def _key(self, key_node: yaml.Node, path: str, key_line: int) -> str | None:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == STR_TAG:
            return str(key_node.value)
        shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
        self.problem(path, key_line, f"keys must be strings, got {shown}")
        return None

    def _merge_sources(self, value_node: yaml.Node, path: str) -> list[Map]:
        """The mappings a ``<<`` key merges, in precedence order."""
        line = value_node.start_mark.line + 1
        candidates = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        sources: list[Map] = []
        for candidate in candidates:
            built = self.build(candidate, path) if isinstance(candidate, yaml.MappingNode) else None
            if not isinstance(built, Map):
                self.problem(path, line, "'<<' merges only a mapping or a list of mappings")
                return []
            sources.append(built)
        if isinstance(value_node, yaml.SequenceNode):
            self.sizes[id(value_node)] = 1 + sum(self.sizes[id(c)] for c in candidates)
        return sources
