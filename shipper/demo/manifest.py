"""What the generator wrote, for exactly-once checks, benchmarks and the demo summary.

Counts are of *logical* records (what a correct shipper emits after partial reassembly) and
of *physical* lines (what is on disk), so a test can compare delivered documents with
`total_records` and a benchmark can report throughput in bytes and lines. Paths are relative
to the generation root, so a manifest stays valid when the tree is moved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass(slots=True)
class FileEntry:
    """One container log file (`0.log`) and its `/var/log/containers` symlink."""

    index: int
    namespace: str
    pod: str
    pod_uid: str
    container: str
    container_id: str
    format: str  # "docker" (json-file) or "cri"
    symlink: str  # relative to the root, e.g. var/log/containers/<pod>_<ns>_<c>-<id>.log
    path: str  # relative to the root, e.g. var/log/pods/<ns>_<pod>_<uid>/<c>/0.log
    records: int = 0  # logical records (partials reassembled)
    physical_lines: int = 0
    bytes: int = 0
    stderr_records: int = 0
    long_records: int = 0  # records longer than 16 KiB, split into partial lines
    partial_lines: int = 0  # physical lines that are not the end of a record
    empty_records: int = 0
    non_ascii_records: int = 0
    #: Raw invalid bytes in CRI files; moby's U+FFFD replacement in docker files.
    invalid_utf8_records: int = 0
    kind: str = ""  # what the container runs (the demo content: "spring", "envoy", ...)
    #: Multi-line events (stack traces) and the records they span: joined with a multiline
    #: preset, a file yields ``records - event_lines + events`` documents.
    events: int = 0
    event_lines: int = 0
    first_time: str = ""  # runtime timestamp of the first physical line
    last_time: str = ""

    def symlink_in(self, root: Path) -> Path:
        return root / self.symlink

    def path_in(self, root: Path) -> Path:
        return root / self.path


@dataclass(slots=True)
class Manifest:
    """All files of one generated node plus totals (computed from the files)."""

    seed: int
    base_time: str
    mark: bool
    files: list[FileEntry]
    total_records: int = 0
    total_physical_lines: int = 0
    total_bytes: int = 0
    records_by_namespace: dict[str, int] = field(default_factory=dict)
    #: Keyed by container name (e.g. `istio-proxy` summed over pods), like a terms
    #: aggregation on `kubernetes.container_name`; per-pod numbers are in `files`.
    records_by_container: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_files(cls, seed: int, base_time: str, mark: bool, files: list[FileEntry]) -> Manifest:
        by_ns: Counter[str] = Counter()
        by_container: Counter[str] = Counter()
        for f in files:
            by_ns[f.namespace] += f.records
            by_container[f.container] += f.records
        return cls(
            seed=seed,
            base_time=base_time,
            mark=mark,
            files=files,
            total_records=sum(f.records for f in files),
            total_physical_lines=sum(f.physical_lines for f in files),
            total_bytes=sum(f.bytes for f in files),
            records_by_namespace=dict(sorted(by_ns.items())),
            records_by_container=dict(sorted(by_container.items())),
        )

    def to_json(self) -> str:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data: dict[str, Any] = orjson.loads(text)
        data["files"] = [FileEntry(**f) for f in data["files"]]
        return cls(**data)

    def summary(self) -> str:
        """One line for humans: records, physical lines, bytes, files and formats."""
        formats = Counter(f.format for f in self.files)
        avg = self.total_bytes / self.total_physical_lines if self.total_physical_lines else 0.0
        return (
            f"records={self.total_records:,} physical_lines={self.total_physical_lines:,} "
            f"bytes={self.total_bytes:,} ({self.total_bytes / 1e6:.1f} MB, {avg:.1f} B/line) "
            f"files={len(self.files)} (docker={formats['docker']}, cri={formats['cri']}) "
            f"long={sum(f.long_records for f in self.files)}"
        )
