"""Where the parser reads Fluentd files from: the disk, or the entries of ConfigMaps.

``@include`` paths are relative to the including file and may be globs (Ruby ``Dir.glob``:
``*``, ``?``, ``[...]``, ``{a,b}``), matched in sorted order like Fluentd. ConfigMap entries
are served from memory at the paths the pod sees them (``configmap`` lays them out), and each
keeps the line where its text starts in the manifest so every message points at the right
line of the file the operator has open. Everything read is charged to one ``Budget``.
"""

from __future__ import annotations

import errno
import glob
import os
import posixpath
import re
import stat
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from shipper.errors import FluentdSyntaxError

MAX_BRACE_ALTERNATIVES = 256
#: The most text one migration reads, includes counted each time they are read. Real
#: configurations are under 100 KB; 1 MiB (about 60,000 lines) converts in about 6 s.
MAX_INPUT_BYTES = 1024 * 1024
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class SourceText:
    """One file's text; ``first_line`` is the line of ``display`` where the text starts."""

    text: str
    display: str
    first_line: int = 1


class Files(Protocol):
    """Reads files and expands globs for the parser."""

    #: Each file read by an ``@include`` -> where it was first included (``file:line``).
    included: dict[str, str]

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


class Budget:
    """How many bytes the parser may still read, includes (and a file included twice) counted.

    Bounds the work of one migration: a nest of files that include each other several times
    would otherwise multiply, and one huge file would take minutes to check.
    """

    def __init__(self, max_bytes: int = MAX_INPUT_BYTES) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def charge(self, source: SourceText, path: str) -> None:
        self.used += len(source.text)
        if self.used > self.max_bytes:
            raise self.exceeded(source.display, source.first_line, path)

    def exceeded(self, display: str, line: int, path: str) -> FluentdSyntaxError:
        return FluentdSyntaxError(display, line, f"reading {path} makes the configuration "
                                                 f"(with its includes) larger than "
                                                 f"{self.max_bytes} bytes, the most "
                                                 "migrate-fluentd reads; nothing converted")


def decode_text(raw: bytes, display: str) -> str:
    """``raw`` as UTF-8 text; a binary file is refused without echoing its bytes."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raise FluentdSyntaxError(display, raw.count(b"\n", 0, nul) + 1,
                                 "not a text file (binary data); nothing converted")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise FluentdSyntaxError(display, line, f"not UTF-8 text (invalid byte at offset "
                                                f"{exc.start}); nothing converted") from exc


def open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading, refused (OSError) unless it is a regular file.

    Opened non-blocking first: a FIFO or device named as input would otherwise hang the
    command until something writes to it.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class DiskFiles:
    """Files of the local file system."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.included: dict[str, str] = {}

    def read(self, path: str) -> SourceText:
        remaining = max(0, self.budget.max_bytes - self.budget.used)
        with open_regular(path) as fh:
            raw = fh.read(remaining + 1)
        if len(raw) > remaining:
            raise self.budget.exceeded(path, 1, path)
        source = SourceText(decode_text(raw, path), path)
        self.budget.charge(source, path)
        return source

    def exists(self, path: str) -> bool:
        return os.path.isfile(path)

    def glob(self, pattern: str) -> list[str]:
        found: set[str] = set()
        for p in expand_braces(pattern):
            if "{" in p:  # more alternatives than are expanded: list broadly, then match
                regex = glob_regex(p)
                broad = re.sub(r"\{[^/]*\}", "*", p)
                found.update(m for m in glob.glob(broad, recursive=True)
                             if os.path.isfile(m) and regex.match(m))
                continue
            # recursive: ``**/`` is zero or more directories, as in Ruby's Dir.glob.
            found.update(m for m in glob.glob(p, recursive=True) if os.path.isfile(m))
        return sorted(found)


class MemoryFiles:
    """Texts at the paths of a pod's file system (the mounted ConfigMaps), matched exactly.

    Never by file name alone: ``/etc/fluent/config.d/x.conf`` is not ``/fluentd/etc/x.conf``.
    """

    def __init__(self, entries: dict[str, SourceText], budget: Budget | None = None) -> None:
        self.entries = {posixpath.normpath(path): text for path, text in entries.items()}
        self.budget = budget or Budget()
        self.included: dict[str, str] = {}

    def read(self, path: str) -> SourceText:
        source = self.entries.get(posixpath.normpath(path))
        if source is None:
            raise FileNotFoundError(2, "no such file in the manifest", path)
        self.budget.charge(source, path)
        return source

    def exists(self, path: str) -> bool:
        return posixpath.normpath(path) in self.entries

    def glob(self, pattern: str) -> list[str]:
        regexes = [glob_regex(p) for p in expand_braces(posixpath.normpath(pattern))]
        return sorted({k for k in self.entries for r in regexes if r.match(k)})


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as Ruby's ``Dir.glob`` reads it, as an anchored regex over ``/`` paths.

    ``*``, ``?`` and ``[...]`` stay within one path part and do not match a leading dot
    (hidden files are skipped, as Fluentd's include skips them); a ``**`` part followed by
    ``/`` is zero or more (non-hidden) directories; elsewhere ``**`` is ``*``.
    """
    parts = pattern.split("/")
    out: list[str] = []
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**" and not last:
            out.append(r"(?:[^/.][^/]*/)*")
            continue
        body = _part_regex(part)
        if part[:1] in ("*", "?", "["):
            body = r"(?!\.)" + body
        out.append(body + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start`` (nesting counted), or -1."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_alternatives(inner: str) -> list[str]:
    """``a,{b,c},d`` -> ``[a, {b,c}, d]``: commas of nested braces stay."""
    out: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in inner:
        if ch == "," and depth == 0:
            out.append("".join(current))
            current = []
            continue
        depth += (ch == "{") - (ch == "}")
        current.append(ch)
    out.append("".join(current))
    return out


def _part_regex(part: str) -> str:
    """One path part of a glob as a regex that never crosses ``/``."""
    out: list[str] = []
    i = 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "{" and _closing_brace(part, i) > 0:
            close = _closing_brace(part, i)
            alternatives = _split_alternatives(part[i + 1:close])
            out.append("(?:" + "|".join(_part_regex(a) for a in alternatives) + ")")
            i = close
        elif ch == "[":
            close = part.find("]", i + 2)
            if close < 0:
                out.append(re.escape(ch))
            else:
                inner = part[i + 1:close]
                negate = inner[:1] in ("!", "^")
                body = inner[1:] if negate else inner
                out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)
