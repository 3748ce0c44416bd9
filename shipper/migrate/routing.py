"""Tag routing: Fluentd's first-match ``<match>`` order against shipper's "every output whose
pattern matches".

Fluentd hands a record to the FIRST ``<match>`` whose pattern matches its tag (``@type copy``
to send it to several), and a ``<filter>`` only sees records that no earlier ``<match>`` took.
shipper sends a record to EVERY output whose ``match`` accepts its tag and applies every
filter. The configs are the same whenever earlier patterns never overlap later ones, which is
the usual Kubernetes layout (``<match fluent.**>`` then ``<match **>``); when they may overlap,
the conversion warns, naming both sections.

Overlap is decided on sample tags built from each pattern (``*`` -> one part, ``**`` -> zero,
one or two parts, ``{a,b}`` -> each alternative), which is exact for the patterns configs use.
"""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass, field

from shipper.migrate.files import expand_braces
from shipper.migrate.model import Section
from shipper.migrate.reader import Conversion
from shipper.tagmatch import collapse_globstars, compile_tag_pattern

MAX_SAMPLES = 256


def pattern_of(section: Section, conv: Conversion) -> str:
    """The shipper ``match`` pattern of a ``<filter>``/``<match>`` section."""
    value = section.arg
    text = value.assumed().strip() or "**"
    if value.literal is None:
        names = ", ".join(value.env_names) or "embedded Ruby"
        conv.findings.note(section.where, f"the pattern of {section.title()} depends on "
                                          f"{names}; converted as {text!r}, its value when "
                                          "the variables are unset")
    parts = []
    for token in text.split():
        if token in conv.fixed_tags:
            token += ".**"
        parts.append(token)
    return " ".join(parts)


def _samples(pattern: str) -> list[str]:
    tags: list[str] = []
    for single in collapse_globstars(pattern).split():
        options: list[list[str]] = []
        for part in single.split("."):
            if part == "**":
                options.append(["", "x", "x.y"])
            else:
                options.append([p.replace("*", "x") for p in expand_braces(part)])
        for combo in itertools.islice(itertools.product(*options), MAX_SAMPLES):
            tags.append(".".join(p for p in combo if p))
    return tags


def overlap(first: str, second: str) -> bool:
    """True when some tag is likely matched by both patterns."""
    try:
        a, b = compile_tag_pattern(first), compile_tag_pattern(second)
    except ValueError:
        return False
    return any(b.match(t) for t in _samples(first)) or any(a.match(t) for t in _samples(second))


class _Node:
    """One level of a trie over tag parts; ``ends`` lists what stops here."""

    __slots__ = ("children", "ends")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.ends: list[int] = []  # the order of each <match> ending here, ascending

    def insert(self, parts: list[str], end: int) -> None:
        node = self
        for part in parts:
            node = node.children.setdefault(part, _Node())
        node.ends.append(end)


def _kind(part: str) -> str:
    """A pattern part as the trie keys it: ``**``, ``*`` (any one part) or itself.

    Braces left unexpanded (more alternatives than ``expand_braces`` expands) may hold dots,
    so such a part may stand for any number of parts: ``**`` (the matcher decides later).
    """
    if "**" in part or "{" in part or "}" in part:
        return "**"
    return "*" if "*" in part else part


def _tag_parts(tag: str) -> list[str]:
    return tag.split(".") if tag else []


def _single_patterns(pattern: str) -> list[list[str]]:
    """Each space-separated pattern with its ``{a,b}`` expanded, as trie keys."""
    out = []
    for single in collapse_globstars(pattern).split():
        for alternative in expand_braces(single):
            out.append([_kind(p) for p in alternative.split(".")])
    return out


def _patterns_matching(node: _Node, parts: list[str], i: int, out: dict[int, _Node],
                       seen: set[tuple[int, int]]) -> None:
    """Collect the trie nodes whose patterns may match the tag ``parts`` (a superset).

    ``seen`` holds the (node, position) states already walked: several ``**`` in a pattern
    reach the same state by many paths, and walking each path again is exponential.
    """
    state = (id(node), i)
    if state in seen:
        return
    seen.add(state)
    if i == len(parts):
        if node.ends:
            out[id(node)] = node
    else:
        for key in (parts[i], "*"):
            child = node.children.get(key)
            if child is not None:
                _patterns_matching(child, parts, i + 1, out, seen)
    globstar = node.children.get("**")
    if globstar is not None:
        for j in range(i, len(parts) + 1):
            _patterns_matching(globstar, parts, j, out, seen)


def _literals(keys: list[str]) -> list[str]:
    """The parts every tag a pattern matches must contain as whole parts."""
    return [k for k in keys if k and k not in ("*", "**")]


@dataclass
class Scope:
    """The ``<match>`` sections seen so far in one label (or the top level).

    Finding the first earlier ``<match>`` that overlaps a new pattern is the same question as
    ``overlap`` asks, answered from two indexes instead of comparing every pair: a trie of the
    earlier patterns (which of them match a sample tag of the new pattern) and, for the other
    direction, the earlier matches listed under each part of their sample tags (a tag the
    new pattern matches holds every literal part of it, so only the matches listed under its
    rarest literal part need a look). Candidates are confirmed with the real matcher, earliest
    first, so the answer is the pairwise one and the work stays about linear in the config.
    """

    matches: list[tuple[str, Section]] = field(default_factory=list)
    _regexes: list[re.Pattern[str] | None] = field(default_factory=list)
    _patterns: _Node = field(default_factory=_Node)
    _sample_tags: list[list[str]] = field(default_factory=list)
    _by_part: dict[str, list[int]] = field(default_factory=dict)

    def _matches_a_sample_of(self, regex: re.Pattern[str], order: int) -> bool:
        return any(regex.match(tag) for tag in self._sample_tags[order])

    def first_overlap(self, pattern: str) -> Section | None:
        """The earliest ``<match>`` of this scope that may take records ``pattern`` matches."""
        try:
            regex = compile_tag_pattern(pattern)
        except ValueError:
            return None
        samples = _samples(pattern)
        best = len(self.matches)
        # Earlier patterns that match a sample tag of the new one.
        nodes: dict[int, _Node] = {}
        for tag in samples:
            _patterns_matching(self._patterns, _tag_parts(tag), 0, nodes, set())
        # Each node lists its orders ascending: merge lazily, so the common case (an early
        # pattern overlaps) stops at once instead of listing every candidate.
        for order in heapq.merge(*(node.ends for node in nodes.values())):
            earlier = self._regexes[order]
            if earlier is not None and any(earlier.match(tag) for tag in samples):
                best = order
                break
        # Earlier patterns one of whose sample tags the new pattern matches.
        orders: set[int] = set()
        for keys in _single_patterns(pattern):
            literals = _literals(keys)
            if not literals:
                orders = set(range(best))
                break
            rarest = min(literals, key=lambda part: len(self._by_part.get(part, ())))
            orders.update(o for o in self._by_part.get(rarest, ()) if o < best)
        for order in sorted(orders):
            if order >= best:
                break
            if self._regexes[order] is not None and self._matches_a_sample_of(regex, order):
                best = order
                break
        return self.matches[best][1] if best < len(self.matches) else None

    def check_output(self, pattern: str, section: Section, conv: Conversion) -> None:
        """Warn when an earlier ``<match>`` may take records this one now also receives."""
        where = self.first_overlap(pattern)
        if where is not None:
            conv.findings.warn(section.where, f"{section.title()} comes after "
                               f"{where.title()} ({where.where}); Fluentd gives a record "
                               "only to the first match, shipper to every output whose "
                               "pattern matches, so records matching both now also reach "
                               "this output")

    def check_filter(self, pattern: str, section: Section, conv: Conversion) -> None:
        """Warn when a filter follows a ``<match>`` that took its records in Fluentd."""
        where = self.first_overlap(pattern)
        if where is not None:
            conv.findings.warn(section.where, f"{section.title()} comes after "
                               f"{where.title()} ({where.where}); in Fluentd the records "
                               "that match took never reached this filter, in shipper "
                               "every filter sees every record whose tag it matches")

    def add(self, pattern: str, section: Section) -> None:
        order = len(self.matches)
        self.matches.append((pattern, section))
        tags = _samples(pattern)
        self._sample_tags.append(tags)
        try:
            self._regexes.append(compile_tag_pattern(pattern))
        except ValueError:
            self._regexes.append(None)
            return
        for keys in _single_patterns(pattern):
            self._patterns.insert(keys, order)
        for part in {part for tag in tags for part in _tag_parts(tag)}:
            self._by_part.setdefault(part, []).append(order)
