"""Fluentd ``<match>`` tag patterns: ``*`` is one tag part, ``**`` zero or more parts,
``{a,b}`` alternatives, several patterns separated by spaces (any may match)."""

from __future__ import annotations

import re
from functools import lru_cache


def _token_to_regex(token: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(token):
        ch = token[i]
        if ch == "*":
            out.append(r"[^.]*")
            i += 1
        elif ch == "{":
            close = token.find("}", i)
            if close < 0:
                raise ValueError(f"unclosed '{{' in tag pattern {token!r}")
            alts = token[i + 1:close].split(",")
            out.append("(?:" + "|".join(_token_to_regex(a) for a in alts) + ")")
            i = close + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return "".join(out)


def _pattern_to_regex(pattern: str) -> str:
    tokens = pattern.split(".")
    pieces: list[str] = []
    for idx, tok in enumerate(tokens):
        if tok == "**":
            if len(tokens) == 1:
                pieces.append(".*")
            elif idx == 0:
                pieces.append(r"(?:.*\.)?")  # zero or more leading parts, dot included
            else:
                pieces.append(r"(?:\..*)?")  # zero or more trailing parts, dot included
            continue
        leading_globstar = idx == 1 and tokens[0] == "**"
        sep = "" if idx == 0 or leading_globstar else r"\."
        pieces.append(sep + _token_to_regex(tok))
    return "".join(pieces)


def collapse_globstars(patterns: str) -> str:
    """Each run of ``**`` parts as one ``**``: zero or more parts twice is zero or more parts.

    Fluentd matches ``**.**.z0`` like ``**.z0`` (``a.z0`` included); compiling the run as
    written both missed such tags and made the regex backtrack exponentially.
    """
    out = []
    for single in patterns.split():
        parts: list[str] = []
        for part in single.split("."):
            if part == "**" and parts and parts[-1] == "**":
                continue
            parts.append(part)
        out.append(".".join(parts))
    return " ".join(out)


@lru_cache(maxsize=256)
def compile_tag_pattern(patterns: str) -> re.Pattern[str]:
    """Compile a space-separated list of Fluentd tag patterns into one anchored regex."""
    parts = collapse_globstars(patterns).split()
    if not parts:
        raise ValueError("empty tag pattern")
    return re.compile("^(?:" + "|".join(_pattern_to_regex(p) for p in parts) + ")$")


def matches_everything(patterns: str) -> bool:
    return "**" in patterns.split()
