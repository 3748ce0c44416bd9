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


@dataclass
class Scope:
    """The ``<match>`` sections seen so far in one label (or the top level)."""

    matches: list[tuple[str, Section]] = field(default_factory=list)

    def check_output(self, pattern: str, section: Section, conv: Conversion) -> None:
        """Warn when an earlier ``<match>`` may take records this one now also receives."""
        for earlier, where in self.matches:
            if overlap(earlier, pattern):
                conv.findings.warn(section.where, f"{section.title()} comes after "
                                   f"{where.title()} ({where.where}); Fluentd gives a record "
                                   "only to the first match, shipper to every output whose "
                                   "pattern matches, so records matching both now also reach "
                                   "this output")
                return

    def check_filter(self, pattern: str, section: Section, conv: Conversion) -> None:
        """Warn when a filter follows a ``<match>`` that took its records in Fluentd."""
        for earlier, where in self.matches:
            if overlap(earlier, pattern):
                conv.findings.warn(section.where, f"{section.title()} comes after "
                                   f"{where.title()} ({where.where}); in Fluentd the records "
                                   "that match took never reached this filter, in shipper "
                                   "every filter sees every record whose tag it matches")
                return

    def add(self, pattern: str, section: Section) -> None:
        self.matches.append((pattern, section))
