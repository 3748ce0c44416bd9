"""Built-in multiline presets: small state machines that recognise stack traces.

A start pattern (``MultilineConfig.start_pattern``) says which lines OPEN an event, so every
other line is appended to whatever came before. That suits a file where every record starts
with a date; it does not suit a container whose ordinary lines have no common prefix and
whose traces must be kept apart from them. A preset works the other way round: it says which
lines CONTINUE an event, depending on what came before (the state). A line that continues
nothing opens a new event, so ordinary lines stay one record each and a trace is one record.

Each preset is:

* ``opening``: ``(regex, state)`` pairs tried on a line that opens an event; the first that
  matches gives the event's state, else ``logged`` for a line naming an error or warning
  level (when the preset has that state), else ``line`` (an ordinary line).
* ``states``: per state, ``(regex, next state)`` pairs; the first that matches the next line
  of the same stream appends it and moves the event to the next state. A state without
  rules (or a line matching none) ends the event.

Every state's rules are compiled into one alternation, so a line costs one ``match`` call.
The examples in docs/MULTILINE.md are the test cases of ``tests/unit/sources/tail``.

Known limit, shared with every line-by-line joiner: a blank line is kept when a state allows
one (Python's chained exceptions, Go's goroutine list, Node's uncaught-error banner), so one
blank line written right after such a trace ends up at the end of it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LINE = "line"  # the state of an event opened by an ordinary line
LOGGED = "logged"  # opened by a line that names an error level: its exception may follow

# A log line at error/warning level ("ERROR Request failed", "E, [...] ERROR -- :",
# "fail: Shop.Api[0]") opens an event in state ``logged``: the runtime's trace printed right
# after it belongs to it. Any other line followed by a trace stays apart (an uncaught
# exception of another thread). The level is looked for in the first 100 characters, where
# every log format puts it; cheap substring tests first, as most lines have none.
_LEVEL_SPAN = 100
_LEVEL = re.compile(r"(?i)\b(?:error|fatal|critical|crit|severe|exception|warn|warning|fail)\b"
                    r"|^[EFW], \[")


def _logged(text: str) -> bool:
    low = text[:_LEVEL_SPAN].lower()
    if not ("err" in low or "fat" in low or "crit" in low or "sev" in low or "exc" in low
            or "warn" in low or "fail" in low or low[1:4] == ", ["):
        return False
    return _LEVEL.search(text, 0, _LEVEL_SPAN) is not None


class Preset:
    """One compiled state machine."""

    __slots__ = ("_logged", "_opening", "_states", "name")

    def __init__(self, name: str, opening: Sequence[tuple[str, str]],
                 states: dict[str, Sequence[tuple[str, str]]]) -> None:
        self.name = name
        self._logged = LOGGED in states  # a line at error level opens ``logged``
        self._opening = _compile(opening)
        self._states: dict[str, re.Pattern[str] | None] = {
            state: _compile(rules) for state, rules in states.items()}
        targets = {target for rules in states.values() for _, target in rules}
        targets.update(target for _, target in opening)
        missing = targets - set(self._states)
        if missing:
            raise ValueError(f"preset {name}: undefined states {sorted(missing)}")

    def open(self, text: str) -> str:
        """The state of an event opened by ``text``."""
        if self._opening is not None:
            match = self._opening.match(text)
            if match is not None:
                return _target(match)
        if self._logged and _logged(text):
            return LOGGED
        return LINE

    def step(self, state: str, text: str) -> str | None:
        """The next state when ``text`` continues an event in ``state``, else None."""
        pattern = self._states.get(state)
        if pattern is None:
            return None
        match = pattern.match(text)
        return None if match is None else _target(match)


def _compile(rules: Sequence[tuple[str, str]]) -> re.Pattern[str] | None:
    """One alternation whose group names carry the target states (``t<index>__<state>``)."""
    if not rules:
        return None
    parts = [f"(?P<t{i}__{target}>{pattern})" for i, (pattern, target) in enumerate(rules)]
    return re.compile("|".join(parts))


def _target(match: re.Match[str]) -> str:
    group = match.lastgroup
    assert group is not None
    return group.split("__", 1)[1]


# -- the presets ---------------------------------------------------------------------------
# Patterns are matched at the start of the line (``re.match``); the rules name the line
# shapes each runtime prints, no more, so an ordinary line is never swallowed by a trace.

_JAVA_NAME = r"(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b"
_JAVA_TRACE = [
    (r"\s+at \S", "trace"),                                  # \tat a.B.c(B.java:10)
    (r"\s*\.\.\. \d+ (?:more|common frames omitted)", "trace"),
    (r"\s*Caused by: ", "trace"),
    (r"\s*Suppressed: ", "trace"),
    (r"\s*\[CIRCULAR REFERENCE", "trace"),
]
JAVA = Preset("java", [
    (r'Exception in thread "', "trace"),
    (_JAVA_NAME + r"(?::|$)", "trace"),
], {
    LINE: [],
    # "ERROR Request failed" directly followed by the exception it logged.
    LOGGED: [(_JAVA_NAME + r"(?::|$)", "trace"), (r"\s+at \S", "trace")],
    "trace": _JAVA_TRACE,
})

_PY_TRACEBACK = r"Traceback \(most recent call last\):$"
PYTHON = Preset("python", [
    (_PY_TRACEBACK, "frames"),
    (r"\s*\+ Exception Group Traceback", "frames"),
], {
    LINE: [],
    LOGGED: [(_PY_TRACEBACK, "frames")],        # logging.exception: the message, then this
    # File/code/caret lines are indented; exception groups draw with "|" and "+".
    "frames": [(r"[ \t]", "frames"), (r"[A-Za-z_][\w.]*(?::|$)", "exception")],
    "exception": [(r"$", "gap")],
    "gap": [(r"(?:During handling of the above exception, another exception occurred"
             r"|The above exception was the direct cause of the following exception):$",
             "chain")],
    "chain": [(r"$", "chained")],
    "chained": [(_PY_TRACEBACK, "frames")],
})

_GO_GOROUTINE = r"goroutine \d+(?: [^\[]*)?\[[^\]]*\]:$"
GO = Preset("go", [
    (r"(?:panic|fatal error): ", "panic"),
    (r"(?:SIGQUIT|SIGABRT|SIGSEGV|SIGBUS|SIGILL|SIGFPE|SIGTRAP): ", "panic"),
    (_GO_GOROUTINE, "stack"),
], {
    LINE: [],
    "panic": [(r"\s+(?:panic: |\S)", "panic"),            # "\tpanic: x [recovered]"
              (r"\[signal ", "panic"), (r"(?:PC|pc|sigcode|addr)=", "panic"),
              (r"$", "gap")],
    "gap": [(_GO_GOROUTINE, "stack")],
    "stack": [(r"\t", "stack"),                             # \t/app/main.go:8 +0x1d
              (r"created by ", "stack"),
              (r"\.\.\.\d* ?(?:additional )?frames elided\.\.\.", "stack"),
              (r"\S+\(.*\)$", "stack"),                     # main.main() / pkg.(*T).M(...)
              (r"exit status \d+$", "end"),
              (r"$", "gap")],
    "end": [],
})

_RUBY_FRAME = r"\S+:\d+:in [`']"
RUBY = Preset("ruby", [
    (_RUBY_FRAME + r".*\([A-Z][\w:]*\)$", "trace"),        # t.rb:2:in `foo': boom (Error)
    (r"[A-Z][\w:]*(?:Error|Exception) \(.*\):$", "trace"),  # Rails: "RuntimeError (boom):"
], {
    LINE: [],
    LOGGED: [(r"\s*(?:from )?" + _RUBY_FRAME, "trace")],
    "trace": [(r"\s*from \S+:\d+", "trace"),
              (r"\s*\.\.\. \d+ levels\.\.\.$", "trace"),
              (_RUBY_FRAME, "trace")],                       # a cause's header, bare frames
})

_NET_NAME = r"(?:Unhandled exception\. )?(?:[A-Za-z_]\w*\.)+\w*Exception\b(?::|$| \()"
DOTNET = Preset("dotnet", [
    (_NET_NAME, "trace"),
], {
    LINE: [],
    # ILogger's console format indents the message and the exception under "fail: ...".
    LOGGED: [(r"\s*" + _NET_NAME, "trace"), (r"\s+at \S", "trace"), (r"\s+\S", LOGGED)],
    "trace": [(r"\s+at \S", "trace"),
              (r"\s*---> ", "trace"),
              (r"\s*--- End of ", "trace"),
              (r"\s*<---$", "trace")],
})

_NODE_HEADER = r"(?:Uncaught )?(?:[A-Z][\w$]*)?(?:Error|Exception)\b(?: \[[\w-]+\])?(?::|$)"
_NODE_STACK = [
    (r"\s+at \S", "stack"),                                   # V8: "    at f (/a.js:1:2)"
    (r"\s+\.\.\. \d+ lines matching cause stack trace \.\.\.$", "stack"),
    (r"\s*\[(?:cause|errors)\]: ", "stack"),                  # util.inspect of a cause
    (r"\s+[\w$]+: \S", "stack"),                              # inspected props: code: 'E'
    (r"\s*[\]}],?$", "stack"),
    (r"$", "blank"),
]
NODE = Preset("node", [
    (_NODE_HEADER, "header"),
    (r"(?:/|[A-Za-z]:\\|file://|node:)\S*:\d+$", "banner"),  # uncaught: "/app/a.js:3"
], {
    LINE: [],
    LOGGED: [(r"\s+at \S", "stack"), (_NODE_HEADER, "header")],
    "header": [(r"\s+at \S", "stack")],
    "banner": [(r".", "code")],                               # the offending source line
    "code": [(r"\s*\^+\s*$", "caret")],
    "caret": [(r"$", "caret_gap")],
    "caret_gap": [(_NODE_HEADER, "header")],
    "stack": _NODE_STACK,
    "blank": [(r"Node\.js v\d", "end")],
    "end": [],
})

PRESETS: dict[str, Preset] = {p.name: p for p in (JAVA, PYTHON, GO, RUBY, DOTNET, NODE)}
#: An annotation value that turns joining off for a pod or container.
NONE = "none"
