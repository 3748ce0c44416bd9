"""Where the parser reads Fluentd files from: the disk, or the entries of a ConfigMap.

``@include`` paths are relative to the including file and may be globs (Ruby ``Dir.glob``:
``*``, ``?``, ``[...]``, ``{a,b}``), matched in sorted order like Fluentd. A ConfigMap's
entries are mounted as files of one directory, so they are served from memory under the
directory of the ConfigMap file, and each keeps the line where its text starts in that YAML
file so every message points at the right line of the file the operator has open.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from dataclasses import dataclass
from typing import Protocol

MAX_BRACE_ALTERNATIVES = 256
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class SourceText:
    """One file's text; ``first_line`` is the line of ``display`` where the text starts."""

    text: str
    display: str
    first_line: int = 1


class Files(Protocol):
    """Reads files and expands globs for the parser."""

    def read(self, path: str) -> SourceText:
        """The file's text; raises OSError when it cannot be read."""

    def exists(self, path: str) -> bool:
        """True when ``path`` names a readable file."""

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern``, sorted."""


def expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d`` -> ``[abd, acd]``, as Ruby's ``Dir.glob`` does (bounded)."""
    results = [pattern]
    while any(_BRACES.search(p) for p in results):
        expanded: list[str] = []
        for p in results:
            match = _BRACES.search(p)
            if match is None:
                expanded.append(p)
                continue
            for alternative in match.group(1).split(","):
                expanded.append(p[:match.start()] + alternative + p[match.end():])
        if len(expanded) > MAX_BRACE_ALTERNATIVES:
            break
        results = expanded
    return results


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[{")


class DiskFiles:
    """Files of the local file system."""

    def read(self, path: str) -> SourceText:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return SourceText(fh.read(), path)

    def exists(self, path: str) -> bool:
        return os.path.isfile(path)

    def glob(self, pattern: str) -> list[str]:
        found: set[str] = set()
        for p in expand_braces(pattern):
            found.update(m for m in glob.glob(p) if os.path.isfile(m))
        return sorted(found)


class MemoryFiles:
    """Named texts that behave like the files of one directory (a mounted ConfigMap).

    An absolute include outside that directory (``@include /etc/fluent/config.d/*.conf``,
    where the ConfigMap is mounted in the pod) is matched by file name against the entries.
    """

    def __init__(self, directory: str, entries: dict[str, SourceText]) -> None:
        self.directory = directory
        self.entries = {os.path.normpath(os.path.join(directory, name)): text
                        for name, text in entries.items()}

    def _key(self, path: str) -> str | None:
        path = os.path.normpath(path)
        if path in self.entries:
            return path
        by_name = os.path.normpath(os.path.join(self.directory, os.path.basename(path)))
        return by_name if by_name in self.entries else None

    def read(self, path: str) -> SourceText:
        key = self._key(path)
        if key is None:
            raise FileNotFoundError(path)
        return self.entries[key]

    def exists(self, path: str) -> bool:
        return self._key(path) is not None

    def glob(self, pattern: str) -> list[str]:
        patterns = expand_braces(os.path.normpath(pattern))
        found = {k for k in self.entries for p in patterns if fnmatch.fnmatchcase(k, p)}
        if not found:
            names = [os.path.basename(p) for p in patterns]
            found = {k for k in self.entries for n in names
                     if fnmatch.fnmatchcase(os.path.basename(k), n)}
        return sorted(found)
