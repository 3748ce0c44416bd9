"""Settings of a ``tail`` source (the container log files of the node).

Defaults follow what the Fluentd Kubernetes daemonset ships (``read_from_head: true``,
``rotate_wait 5s``) and the kubelet's file layout (spec "Container log files on Kubernetes
nodes" §2). ``__post_init__`` rejects values that cannot work, so a bad file fails at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shipper.config.types import Bytes, Seconds

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class TailConfig:
    """Which files to follow, how to read them and how often to persist progress."""

    type: Literal["tail"] = field(default="tail", metadata={"doc": "Source type."})
    include: list[str] = field(default_factory=lambda: ["/var/log/containers/*.log"], metadata={
        "doc": "Glob patterns of files to follow. Symlinks are followed to the real file."})
    exclude: list[str] = field(default_factory=list, metadata={
        "doc": "Glob patterns (matched against the full path) of files to skip. *.gz, *.tmp "
               "and *.zip are always skipped (kubelet's compressed and temporary rotations)."})
    read_from_head: bool = field(default=True, metadata={
        "doc": "Read a file without a saved position from its beginning (true) or from its "
               "end (false). Saved positions always win; a rotated file's successor is "
               "always read from its beginning."})
    max_line_bytes: Bytes = field(default=MIB, metadata={
        "doc": "Longest log message kept. Longer messages (after joining partial lines) are "
               "cut at a UTF-8 boundary and flagged 'truncated', never dropped."})
    read_chunk_bytes: Bytes = field(default=MIB, metadata={
        "doc": "Bytes read from a file at once; lines are split and decoded per chunk."})
    refresh_interval_secs: Seconds = field(default=5.0, metadata={
        "doc": "Rescan the include globs this often (fallback when file events are missed)."})
    rotate_wait_secs: Seconds = field(default=5.0, metadata={
        "doc": "After a rotation or deletion, keep the old file open this long for late "
               "writes once it has been read to the end (Fluentd rotate_wait)."})
    drain_timeout_secs: Seconds = field(default=0.0, metadata={
        "doc": "If > 0, close a rotated or deleted file that could not be read to the end "
               "within this time (e.g. outputs blocked) and count the unread bytes in "
               "shipper_lost_bytes_total. 0 keeps it open until it is read: no loss, but a "
               "deleted file keeps using disk space meanwhile."})
    partial_flush_secs: Seconds = field(default=5.0, metadata={
        "doc": "Ship an unfinished partial message (container exited mid-line) after the file "
               "has been idle this long."})
    checkpoint_interval_secs: Seconds = field(default=1.0, metadata={
        "doc": "Write acknowledged positions to disk at most this often (and on stop)."})
    tag_prefix: str = field(default="kube", metadata={
        "doc": "Tag = prefix + '.' + file path with '/' replaced by '.' (Fluentd in_tail)."})
    max_batch_records: int = field(default=2000, metadata={
        "doc": "Most records per emitted batch."})

    def __post_init__(self) -> None:
        problems = []
        if not self.include:
            problems.append("include: at least one glob is required")
        for name in ("max_line_bytes", "read_chunk_bytes", "max_batch_records"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0")
        for name in ("refresh_interval_secs", "checkpoint_interval_secs"):
            if getattr(self, name) <= 0:
                problems.append(f"{name}: must be > 0")
        for name in ("rotate_wait_secs", "drain_timeout_secs", "partial_flush_secs"):
            if getattr(self, name) < 0:
                problems.append(f"{name}: must be >= 0")
        if problems:
            raise ValueError("; ".join(problems))
