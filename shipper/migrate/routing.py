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

import itertools
import re
from dataclasses import dataclass, field

from shipper.migrate.files import expand_braces
from shipper.migrate.model import Section
from shipper.migrate.reader import Conversion
from shipper.tagmatch import compile_tag_pattern

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
    for single in pattern.split():
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
        self.ends: list[tuple[int, str]] = []  # (order of the <match>, sample tag or "")

    def insert(self, parts: list[str], end: tuple[int, str]) -> None:
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
    for single in pattern.split():
        for alternative in expand_braces(single):
            out.append([_kind(p) for p in alternative.split(".")])
    return out


def _patterns_matching(node: _Node, parts: list[str], i: int, out: list[tuple[int, str]]) -> None:
    """Collect the patterns of the trie that may match the tag ``parts`` (a superset)."""
    if i == len(parts):
        out.extend(node.ends)
    else:
        for key in (parts[i], "*"):
            child = node.children.get(key)
            if child is not None:
                _patterns_matching(child, parts, i + 1, out)
    globstar = node.children.get("**")
    if globstar is not None:
        for j in range(i, len(parts) + 1):
            _patterns_matching(globstar, parts, j, out)


def _tags_matched(node: _Node, keys: list[str], i: int, out: list[tuple[int, str]]) -> None:
    """Collect the sample tags of the trie the pattern ``keys`` may match (a superset)."""
    if i == len(keys):
        out.extend(node.ends)
        return
    key = keys[i]
    if key == "**":
        _tags_matched(node, keys, i + 1, out)  # zero parts
        for child in node.children.values():
            _tags_matched(child, keys, i, out)  # one more part
    elif key == "*":
        for child in node.children.values():
            _tags_matched(child, keys, i + 1, out)
    else:
        exact = node.children.get(key)
        if exact is not None:
            _tags_matched(exact, keys, i + 1, out)


@dataclass
class Scope:
    """The ``<match>`` sections seen so far in one label (or the top level).

    Finding the first earlier ``<match>`` that overlaps a new pattern is the same question as
    ``overlap`` asks, but answered from two tries (the earlier patterns; their sample tags)
    so a config with thousands of sections is checked in about linear time instead of
    comparing every pair. Candidates from the tries are confirmed with the real matcher.
    """

    matches: list[tuple[str, Section]] = field(default_factory=list)
    _regexes: list[re.Pattern[str] | None] = field(default_factory=list)
    _patterns: _Node = field(default_factory=_Node)
    _samples: _Node = field(default_factory=_Node)

    def first_overlap(self, pattern: str) -> Section | None:
        """The earliest ``<match>`` of this scope that may take records ``pattern`` matches."""
        try:
            regex = compile_tag_pattern(pattern)
        except ValueError:
            return None
        candidates: list[tuple[int, str]] = []
        samples = _samples(pattern)
        for tag in samples:
            _patterns_matching(self._patterns, _tag_parts(tag), 0, candidates)
        for keys in _single_patterns(pattern):
            _tags_matched(self._samples, keys, 0, candidates)
        for order, sample in sorted(set(candidates)):
            earlier = self._regexes[order]
            if earlier is None:
                continue
            if sample and regex.match(sample):
                return self.matches[order][1]
            if any(earlier.match(tag) for tag in samples):
                return self.matches[order][1]
        return None

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
        try:
            self._regexes.append(compile_tag_pattern(pattern))
        except ValueError:
            self._regexes.append(None)
            return
        for keys in _single_patterns(pattern):
            self._patterns.insert(keys, (order, ""))
        for tag in _samples(pattern):
            self._samples.insert(_tag_parts(tag), (order, tag))
