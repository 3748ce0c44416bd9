"""Settings of the ``null`` output: records are encoded, then discarded as delivered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from shipper.buffer.config import BufferConfig


@dataclass(frozen=True)
class NullConfig:
    """Discard every record it receives and count it delivered (Fluentd's and Fluent Bit's
    `null` output): drop tags nobody needs, or measure the agent without a destination."""

    __config_examples__: ClassVar[str] = """\
**Drop the noisy tags** by routing them here. Quote the type: plain `null` is YAML's empty
value, not the name `"null"`.

```yaml
outputs:
  drop-debug:
    type: "null"
    match: "kube.var.log.containers.debug-**"
```
"""

    type: Literal["null"] = field(default="null", metadata={
        "doc": 'Output type; write it quoted (`type: "null"`), since plain null is YAML\'s '
               "empty value."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this output discards (Fluentd match syntax)."})
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata={
        "doc": "How records are buffered before they are discarded (batching only; the "
               "records are still encoded, as for a real destination)."})

    def validate(self) -> list[str]:
        """No rule spans several fields; present so every output config has the same shape."""
        return []
