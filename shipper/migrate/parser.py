"""A reader for Fluentd's configuration syntax (v1, and what v0.12 files use), with lines.

It follows Fluentd's own parser (``config/v1_parser.rb``, ``literal_parser.rb``) where that
decides what a file means, and is more lenient where Fluentd only refuses:

- ``<name arg>`` ... ``</name>`` sections nest; the argument may be quoted (``<match "...">``).
- ``key value``: a value runs to the end of the line; whitespace followed by ``#`` starts a
  comment, a ``#`` inside a word does not (``a#b``). A key alone on its line is a flag
  (``retry_forever``): an empty value, true for a boolean.
- ``"double"`` quoted values know ``\\n``-style escapes and embedded Ruby (``#{...}``, see
  ``ruby``); ``'single'`` quoted ones only ``\\'`` and ``\\\\``; both may span lines.
- A value starting with ``[`` or ``{`` is JSON and may span lines, with ``#`` comments.
- ``@include`` (and the old ``include`` at the top) splices files in at that place; relative
  paths are relative to the including file, globs are read in sorted order.
- A key written twice keeps its last value, as in Fluentd (and says so).

Problems that make the file unreadable raise ``FluentdSyntaxError`` (``file:line: message``),
as does an ``@include`` of a file that does not exist (Fluentd refuses it too); an include
glob that matches nothing is a warning, because Fluentd starts without those files.
"""

from __future__ import annotations

import bisect
import json
import os
import re

from shipper.errors import FluentdSyntaxError
from shipper.migrate.files import DiskFiles, Files, MemoryFiles, SourceText, is_glob
from shipper.migrate.findings import Findings
from shipper.migrate.model import Param, Piece, Section, Text, Value
from shipper.migrate.ruby import translate

MAX_INCLUDE_DEPTH = 32
MAX_JSON_CHARS = 1_000_000
_NAME = re.compile(r"[A-Za-z0-9_]+")
_LINE_END = re.compile(r"[ \t]*(?:#[^\n]*)?(?:\r?\n|\Z)")
_WORD = re.compile(r"[^ \t\n]+")
_COMMENT_START = re.compile(r"[ \t]+#")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "r": "\r", "n": "\n", "t": "\t", "f": "\f",
            "b": "\b"}


def parse_file(path: str, findings: Findings, files: Files | None = None) -> Section:
    """Parse ``path`` and everything it includes into one ``ROOT`` section."""
    files = files or DiskFiles()
    root = Section("ROOT", Value(), path, 1)
    _include_one(path, root, findings, files, stack=())
    return root


def parse_text(source: SourceText, path: str, into: Section, findings: Findings,
               files: Files, stack: tuple[str, ...] = ()) -> None:
    """Parse one file's text into ``into`` (used for the root and for each include)."""
    _Reader(source, path, findings, files, stack).body(into, root=True)


def _include_one(path: str, into: Section, findings: Findings, files: Files,
                 stack: tuple[str, ...]) -> None:
    try:
        source = files.read(path)
    except OSError as exc:
        raise FluentdSyntaxError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    parse_text(source, path, into, findings, files, (*stack, os.path.normpath(path)))


class _Reader:
    """Parses one file; ``pos`` walks ``text``, lines are computed from it on demand."""

    def __init__(self, source: SourceText, path: str, findings: Findings, files: Files,
                 stack: tuple[str, ...]) -> None:
        self.text = source.text.replace("\r\n", "\n")
        if self.text.startswith("\ufeff"):
            self.text = self.text[1:]
        self.display = source.display
        self.first_line = source.first_line
        self.path = path
        self.findings = findings
        self.files = files
        self.stack = stack
        self.pos = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]

    # -- positions and errors -------------------------------------------------------------

    def line_at(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos) - 1 + self.first_line

    def where(self, pos: int) -> str:
        return f"{self.display}:{self.line_at(pos)}"

    def fail(self, message: str, pos: int | None = None) -> FluentdSyntaxError:
        return FluentdSyntaxError(self.display, self.line_at(self.pos if pos is None else pos),
                                  message)

    def eof(self) -> bool:
        return self.pos >= len(self.text)

    def spacing(self) -> bool:
        """Skip blanks, newlines and comment lines; True if a newline was crossed."""
        start = self.pos
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r\n":
                self.pos += 1
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                break
        return "\n" in text[start:self.pos] or (self.eof() and self.pos > start)

    def blanks(self) -> None:
        """Skip spaces and tabs on the current line."""
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def line_end(self, what: str) -> None:
        match = _LINE_END.match(self.text, self.pos)
        if match is None:
            raise self.fail(f"expected the end of the line after {what}")
        self.pos = match.end()

    # -- sections -------------------------------------------------------------------------

    def body(self, section: Section, root: bool) -> None:
        """Parameters and subsections up to ``</name>`` (or the end of a top-level file)."""
        while True:
            self.spacing()
            if self.eof():
                if root:
                    return
                raise self.fail(f"the file ends inside {section.title()} opened at line "
                                f"{section.line}; expected </{section.name}>")
            if self.text.startswith("</", self.pos):
                start = self.pos
                self.pos += 2
                name = self.name()
                self.blanks()
                if not self.text.startswith(">", self.pos):
                    raise self.fail("expected '>' to close the end tag")
                self.pos += 1
                if root or name != section.name:
                    expected = "nothing" if root else f"</{section.name}>"
                    raise self.fail(f"unmatched end tag </{name}>; expected {expected}", start)
                self.line_end(f"</{name}>")
                return
            if self.text.startswith("<", self.pos):
                section.children.append(self.section())
                continue
            self.statement(section, root)

    def name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a section name after '<'")
        self.pos = match.end()
        return match.group(0)

    def section(self) -> Section:
        start = self.pos
        self.pos += 1
        name = self.name()
        self.blanks()
        if self.text.startswith(('"', "'"), self.pos):
            arg = self.quoted()
            self.blanks()
        else:
            close = self.text.find(">", self.pos)
            newline = self.text.find("\n", self.pos)
            if close < 0 or (0 <= newline < close):
                raise self.fail(f"expected '>' to close <{name}")
            arg = Value.of(self.text[self.pos:close].strip())
            self.pos = close
        if not self.text.startswith(">", self.pos):
            raise self.fail(f"expected '>' to close <{name}")
        self.pos += 1
        self.line_end(f"<{name}>")
        section = Section(name, arg, self.display, self.line_at(start))
        self.body(section, root=False)
        return section

    # -- parameters -----------------------------------------------------------------------

    def statement(self, section: Section, root: bool) -> None:
        start = self.pos
        if self.text.startswith(('"', "'"), self.pos):
            key = self.quoted().assumed()
        else:
            match = _WORD.match(self.text, self.pos)
            assert match is not None  # spacing() stopped on a non-blank character
            key = match.group(0)
            self.pos = match.end()
        if key == "@include" or (root and key == "include"):
            self.include(section, start)
            return
        if self.spacing() or self.eof():
            self.add(section, Param(key, Value(), self.display, self.line_at(start), flag=True))
            return
        value = self.value(key)
        self.line_end(f"the value of {key}")
        self.add(section, Param(key, value, self.display, self.line_at(start)))

    def add(self, section: Section, param: Param) -> None:
        old = section.params.get(param.key)
        if old is not None:
            self.findings.note(param.where, f"{param.key} is also set at {old.where} in "
                                            f"{section.title()}; the last value applies, as in "
                                            "Fluentd")
        section.params[param.key] = param

    def value(self, key: str) -> Value:
        self.blanks()
        if self.text.startswith(("[", "{"), self.pos):
            return self.json(key)
        if self.text.startswith(('"', "'"), self.pos):
            return self.quoted()
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        line = self.text[self.pos:end]
        comment = _COMMENT_START.search(line)
        if comment is not None:
            line = line[:comment.start()]
        self.pos += len(line)
        return Value.of(line.rstrip())

    def quoted(self) -> Value:
        """A single- or double-quoted string starting at ``pos``; may span lines."""
        start = self.pos
        quote = self.text[self.pos]
        self.pos += 1
        pieces: list[Piece] = []
        chars: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                kind = "double" if quote == '"' else "single"
                raise self.fail(f"the file ends inside a {kind}-quoted string", start)
            ch = text[self.pos]
            if ch == quote:
                self.pos += 1
                break
            if ch == "\\" and self.pos + 1 < len(text):
                nxt = text[self.pos + 1]
                if quote == '"':
                    chars.append(_ESCAPES.get(nxt, nxt if not nxt.isalnum() else "\\" + nxt))
                else:
                    chars.append(nxt if nxt in "'\\" else "\\" + nxt)
                self.pos += 2
                continue
            if quote == '"' and text.startswith("#{", self.pos):
                code = self.ruby_code()
                if chars:
                    pieces.append(Text("".join(chars)))
                    chars = []
                pieces.extend(translate(code))
                continue
            chars.append(ch)
            self.pos += 1
        if chars:
            pieces.append(Text("".join(chars)))
        return Value(tuple(pieces))

    def ruby_code(self) -> str:
        """The code of ``#{...}`` at ``pos`` (braces and Ruby strings inside are balanced)."""
        start = self.pos
        self.pos += 2
        depth = 1
        quote: str | None = None
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if quote is not None:
                if ch == "\\":
                    self.pos += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    self.pos += 1
                    return text[start + 2:self.pos - 1]
            self.pos += 1
        raise self.fail("the file ends inside embedded Ruby code #{...}", start)

    def json(self, key: str) -> Value:
        """A JSON array or hash starting at ``pos``; may span lines, ``#`` comments allowed."""
        start = self.pos
        kept: list[str] = []
        depth = 0
        in_string = escaped = False
        text = self.text
        while self.pos < len(text) and self.pos - start < MAX_JSON_CHARS:
            ch = text[self.pos]
            self.pos += 1
            if in_string:
                kept.append(ch)
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
                continue
            if ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
                continue
            kept.append(ch)
            if ch == '"':
                in_string = True
            elif ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
                if depth == 0:
                    try:
                        parsed = json.loads("".join(kept))
                    except ValueError as exc:
                        raise self.fail(f"the value of {key} is not valid JSON: {exc}",
                                        start) from exc
                    return Value.of(json.dumps(parsed, separators=(",", ":")))
        kind = "array" if text[start] == "[" else "hash"
        raise self.fail(f"the JSON {kind} of {key} is not closed", start)

    # -- includes -------------------------------------------------------------------------

    def include(self, section: Section, start: int) -> None:
        self.blanks()
        value = self.value("@include")
        self.line_end("@include")
        where = self.where(start)
        target = value.assumed().strip()
        if value.literal is None:
            names = ", ".join(value.env_names) or "embedded Ruby"
            self.findings.note(where, f"@include depends on {names}; read as {target!r}, its "
                                      "value when the variables are unset")
        if "://" in target and not target.startswith("file://"):
            self.findings.warn(where, f"@include of a URL ({target}) is not fetched; convert "
                                      "that file separately")
            return
        target = target.removeprefix("file://")
        if not os.path.isabs(target):
            target = os.path.join(os.path.dirname(self.path), target)
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise self.fail(f"@include nested more than {MAX_INCLUDE_DEPTH} levels deep", start)
        if is_glob(target):
            paths = self.files.glob(target)
            if not paths:
                self.findings.warn(where, f"@include {value.assumed().strip()} matches no file "
                                          f"({os.path.dirname(target)} is empty or not in "
                                          "what was given): whatever the running Fluentd "
                                          "finds there is not converted")
            looping = [p for p in paths if os.path.normpath(p) in self.stack]
            if looping:  # a glob over the directory of the including file: not itself again
                paths = [p for p in paths if p not in looping]
                self.findings.note(where, f"@include {value.assumed().strip()} also matches "
                                          "the file including it, which is not read twice")
        elif self.files.exists(target):
            paths = [target]
        elif isinstance(self.files, MemoryFiles):
            raise self.fail(f"@include {value.assumed().strip()}: {target} is in no ConfigMap "
                            "of this file (Fluentd refuses to start without it); if the image "
                            "provides it, convert that configuration directory instead", start)
        else:
            raise self.fail(f"@include {value.assumed().strip()}: no such file ({target}); "
                            "Fluentd refuses to start without it", start)
        for path in paths:
            if os.path.normpath(path) in self.stack:
                raise self.fail(f"@include loop: {path} includes itself", start)
            first = self.files.included.setdefault(os.path.normpath(path), where)
            if first != where:
                self.findings.warn(where, f"@include reads {path} a second time (first at "
                                          f"{first}); Fluentd reads it twice too, so its "
                                          "sections are converted twice (two tail sources on "
                                          "the same files ship each line twice, and Fluentd "
                                          "refuses two tails with one pos_file): include it "
                                          "once")
            _include_one(path, section, self.findings, self.files, self.stack)
