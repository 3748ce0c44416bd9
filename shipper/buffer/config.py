"""Buffer settings of an output (the ``buffer:`` map), Fluentd-like names with units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shipper.config.types import Bytes, Seconds

MIB = 1024 * 1024


@dataclass(frozen=True)
class BufferConfig:
    """How an output buffers records before delivery."""

    type: Literal["memory"] = field(default="memory", metadata={
        "doc": "memory: fastest; a crash loses nothing because tail checkpoints "
               "wait for delivery."})
    chunk_limit_bytes: Bytes = field(default=2 * MIB, metadata={
        "doc": "A chunk is sent when it reaches this size (Fluentd chunk_limit_size)."})
    chunk_limit_records: int = field(default=5000, metadata={
        "doc": "A chunk is sent when it holds this many records."})
    total_limit_bytes: Bytes = field(default=256 * MIB, metadata={
        "doc": "Never hold more than this; then when_full applies."})
    flush_interval_secs: Seconds = field(default=5.0, metadata={
        "doc": "A non-empty chunk is sent at the latest after this long."})
    when_full: Literal["block", "drop_newest"] = field(default="block", metadata={
        "doc": "block: sources stop reading (nothing lost). drop_newest: new records are "
               "dropped and counted in shipper_records_dropped_total."})
    max_in_flight: int = field(default=2, metadata={
        "doc": "Chunks being delivered concurrently (Fluentd flush_thread_count)."})
    retry_initial_secs: Seconds = field(default=1.0, metadata={"doc": "First retry delay."})
    retry_max_secs: Seconds = field(default=60.0, metadata={
        "doc": "Retry delay cap; retries go on forever (never drop on an outage)."})
