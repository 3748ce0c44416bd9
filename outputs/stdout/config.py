"""Settings of the ``stdout`` output, a debugging aid that prints records as JSON lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shipper.buffer.config import BufferConfig


@dataclass(frozen=True)
class StdoutConfig:
    """Print every record to standard output, one JSON object per line."""

    type: Literal["stdout"] = field(default="stdout", metadata={
        "doc": "Output type; for debugging pipelines, not for production volumes."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this output receives (Fluentd match syntax)."})
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata={
        "doc": "How records are buffered before they are printed."})

    def validate(self) -> list[str]:
        """No rule spans several fields; present so every output config has the same shape."""
        return []
