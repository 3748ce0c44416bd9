"""Settings of a ``tail`` source (the container log files of the node).

Defaults follow what the Fluentd Kubernetes daemonset ships (``read_from_head: true``,
``rotate_wait 5s``) and the kubelet's file layout (spec "Container log files on Kubernetes
nodes" §2). Field checks and ``validate`` reject values that cannot work, so a bad file fails
at load with the key path and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from shipper.config import checks
from shipper.config.types import Bytes, Seconds
from shipper.sources.tail.presets import PRESETS

KIB = 1024
MIB = 1024 * KIB


def _check_regex(pattern: str) -> str | None:
    if not pattern:
        return "must not be empty"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression: {exc}"
    return None


def _check_preset(name: str) -> str | None:
    if name and name not in PRESETS:
        return f"unknown preset {name!r}; one of {', '.join(sorted(PRESETS))}"
    return None


def _check_globs(patterns: list[str]) -> str | None:
    if any(not p for p in patterns):
        return "patterns must not be empty strings"
    return None


@dataclass(frozen=True)
class MultilineConfig:
    """Joins the lines of one event (a stack trace) into one record, per file and stream."""

    files: list[str] = field(default_factory=lambda: ["*"], metadata={
        "doc": "Glob patterns (full path or file name, like exclude) of the files this rule "
               "applies to; the first rule that matches a file is used.",
        "check": _check_globs})
    start_pattern: str = field(default="", metadata={
        "doc": "Regular expression (Python syntax, searched from the start of the message) "
               "that marks the FIRST line of an event; every following line that does not "
               "match is appended to it with a newline.",
        "check": _check_regex})
    preset: str = field(default="", metadata={
        "doc": "Instead of start_pattern: a built-in stack-trace recogniser (java, python, "
               "go, ruby, dotnet, node; see docs/MULTILINE.md). Lines that continue a trace "
               "are joined to it; every other line stays its own record.",
        "check": _check_preset})
    max_lines: int = field(default=500, metadata={
        "doc": "An event is shipped when it has this many lines; the next line starts a new "
               "one.",
        "check": checks.positive})
    max_bytes: Bytes = field(default=MIB, metadata={
        "doc": "An event is shipped before a line would make it longer than this.",
        "check": checks.positive})
    flush_timeout_secs: Seconds = field(default=2.0, metadata={
        "doc": "Ship a pending event when its file had no new line for this long.",
        "check": checks.positive})


@dataclass(frozen=True)
class TailConfig:
    """Which files to follow, how to read them and how often to persist progress."""

    __config_examples__: ClassVar[str] = r"""
Example: the node's containers, Java and Python stack traces joined into one record, a
smaller open-file cap for a node with a low `ulimit -n`:

```yaml
sources:
  containers:
    type: tail
    include: ["/var/log/containers/*.log"]
    exclude: ["*_kube-system_*"]   # by path or file name; *.gz, *.tmp, *.zip always skipped
    exclude_own_pod: true          # POD_NAME / POD_NAMESPACE from the downward API
    max_open_files: 500
    multiline:
      - files: ["*_payments_*"]    # Java: an event starts with a date
        start_pattern: '\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}'
      - files: ["*_ml-*"]          # Python tracebacks, chained causes included
        preset: python
```

Rotation, truncation, deletion and restarts are handled without settings; what is
guaranteed and which metrics reveal loss is described in docs/OPERATIONS.md ("Tailing").
"""

    type: Literal["tail"] = field(default="tail", metadata={"doc": "Source type."})
    include: list[str] = field(default_factory=lambda: ["/var/log/containers/*.log"], metadata={
        "doc": "Glob patterns of files to follow. Symlinks are followed to the real file.",
        "check": checks.at_least_one("glob")})
    exclude: list[str] = field(default_factory=list, metadata={
        "doc": "Glob patterns (matched against the full path or the file name) of files to "
               "skip. *.gz, *.tmp and *.zip are always skipped (kubelet's compressed and "
               "temporary rotations).",
        "check": _check_globs})
    exclude_own_pod: bool = field(default=True, metadata={
        "doc": "Skip the log files of the pod this agent runs in (its name from the POD_NAME "
               "environment variable, else the host name; its namespace from POD_NAMESPACE "
               "when set), so the agent never ships its own logs into a loop."})
    read_from_head: bool = field(default=True, metadata={
        "doc": "Read a file without a saved position from its beginning (true) or from its "
               "end (false). Saved positions always win; a new generation of a file already "
               "followed (rotation, container restart) is always read from its beginning."})
    max_line_bytes: Bytes = field(default=MIB, metadata={
        "doc": "Longest log message kept. Longer messages (after joining partial lines) are "
               "cut at a UTF-8 boundary and flagged 'truncated', never dropped.",
        "check": checks.positive})
    read_chunk_bytes: Bytes = field(default=MIB, metadata={
        "doc": "Bytes read from a file at once; lines are split and decoded per chunk.",
        "check": checks.positive})
    max_open_files: int = field(default=1000, metadata={
        "doc": "Most files held open at once (keep it below the agent's ulimit -n). With more "
               "files, idle ones are closed and reopened when they grow, and busy ones take "
               "turns, so every file keeps making progress.",
        "check": checks.positive})
    refresh_interval_secs: Seconds = field(default=5.0, metadata={
        "doc": "Rescan the include globs this often. File events (inotify) find new files "
               "sooner; without them (unavailable or out of watches) the globs are rescanned "
               "at least every 2 seconds.",
        "check": checks.positive})
    rotate_wait_secs: Seconds = field(default=5.0, metadata={
        "doc": "After a rotation or deletion, keep the old file open this long for late "
               "writes once it has been read to the end (Fluentd rotate_wait).",
        "check": checks.non_negative})
    deleted_file_timeout_secs: Seconds = field(default=300.0, metadata={
        "doc": "A file deleted before it was read to its end (outputs blocked) is kept open "
               "and read for at most this long, then closed to free its disk space; the "
               "bytes it still held are counted in shipper_lost_bytes_total.",
        "check": checks.positive})
    partial_flush_secs: Seconds = field(default=5.0, metadata={
        "doc": "Ship an unfinished partial message (container exited mid-line) after the file "
               "has been idle this long.",
        "check": checks.non_negative})
    checkpoint_interval_secs: Seconds = field(default=1.0, metadata={
        "doc": "Write acknowledged positions to disk at most this often (and on stop).",
        "check": checks.positive})
    tag_prefix: str = field(default="kube", metadata={
        "doc": "Tag = prefix + '.' + file path with '/' replaced by '.' (Fluentd in_tail)."})
    max_batch_records: int = field(default=2000, metadata={
        "doc": "Most records per emitted batch.",
        "check": checks.positive})
    multiline: list[MultilineConfig] = field(default_factory=list, metadata={
        "doc": "Rules joining multi-line events (stack traces); none by default. Each file "
               "uses the first rule whose files pattern matches it."})

    def validate(self) -> list[str]:
        problems = []
        for index, rule in enumerate(self.multiline):
            if not rule.start_pattern and not rule.preset:
                problems.append(f"multiline: rule {index + 1} needs a start_pattern or a "
                                "preset")
            elif rule.start_pattern and rule.preset:
                problems.append(f"multiline: rule {index + 1} has both a start_pattern and a "
                                "preset; keep one")
        return problems
