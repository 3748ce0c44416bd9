"""Buffer settings of an output (the ``buffer:`` map), Fluentd-like names with units."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from shipper.config import checks
from shipper.config.types import Bytes, Seconds

MIB = 1024 * 1024


@dataclass(frozen=True)
class BufferConfig:
    """How an output buffers records before delivery."""

    __config_examples__: ClassVar[str] = """\
Example: a crash-safe buffer that rides out a long Elasticsearch outage (a node agent's
`state_dir` is a hostPath volume, so the buffer survives pod restarts):

```yaml
outputs:
  es:
    type: elasticsearch
    hosts: ["https://es.logging.svc:9200"]
    buffer:
      type: disk                 # segments under <state_dir>/buffers/es/
      total_limit_bytes: 4GiB    # strictly honoured; then sources stop reading (block)
      chunk_limit_bytes: 2MiB
      flush_interval_secs: 5
      fsync: interval            # acknowledgements wait at most fsync_interval_secs
      fsync_interval_secs: 1
```

With `type: disk` a source's progress (tail checkpoint, forward ack) advances once its
records are fsynced into the buffer, and everything not yet delivered is sent after a
restart; see "Delivery guarantee and buffers" in docs/OPERATIONS.md for what each setting
promises.
"""

    type: Literal["memory", "disk"] = field(default="memory", metadata={
        "doc": "memory: fastest; a crash loses nothing because tail checkpoints wait for "
               "delivery, but an outage is bounded by memory and the sources' files. disk: "
               "chunks are files under state_dir/buffers/<output>/; checkpoints advance once "
               "records are fsynced there and a restart replays what was not delivered."})
    chunk_limit_bytes: Bytes = field(default=2 * MIB, metadata={
        "doc": "A chunk is sent when it reaches this size (Fluentd chunk_limit_size).",
        "check": checks.positive})
    chunk_limit_records: int = field(default=5000, metadata={
        "doc": "A chunk is sent when it holds this many records.",
        "check": checks.positive})
    total_limit_bytes: Bytes = field(default=256 * MIB, metadata={
        "doc": "Never hold more than this (for disk: the size of the segment files, headers "
               "included); then when_full applies.",
        "check": checks.positive})
    flush_interval_secs: Seconds = field(default=5.0, metadata={
        "doc": "A non-empty chunk is sent at the latest after this long.",
        "check": checks.non_negative})
    when_full: Literal["block", "drop_newest"] = field(default="block", metadata={
        "doc": "block: sources stop reading (nothing lost). drop_newest: new records are "
               "dropped and counted in shipper_records_dropped_total."})
    max_in_flight: int = field(default=2, metadata={
        "doc": "Chunks being delivered concurrently (Fluentd flush_thread_count).",
        "check": checks.positive})
    retry_initial_secs: Seconds = field(default=1.0, metadata={
        "doc": "First retry delay.", "check": checks.positive})
    retry_max_secs: Seconds = field(default=60.0, metadata={
        "doc": "Retry delay cap; retries go on forever (never drop on an outage).",
        "check": checks.positive})
    fsync: Literal["always", "interval"] = field(default="interval", metadata={
        "doc": "disk only. always: every write is fsynced before put returns (acks at once, "
               "slowest). interval: fsync every fsync_interval_secs; acks wait for it, so "
               "nothing acknowledged is ever lost, but checkpoints lag by up to the interval."})
    fsync_interval_secs: Seconds = field(default=1.0, metadata={
        "doc": "disk only: the longest time written records wait for their fsync (fsync: "
               "interval).",
        "check": checks.positive})

    def validate(self) -> list[str]:
        problems = []
        if self.retry_max_secs < self.retry_initial_secs:
            problems.append("retry_max_secs: must not be smaller than retry_initial_secs")
        if self.type == "memory" and (self.fsync != "interval"
                                      or self.fsync_interval_secs != 1.0):
            problems.append("fsync: applies only to type: disk")
        return problems
