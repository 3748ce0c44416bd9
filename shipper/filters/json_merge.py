"""``type: json_merge``: when ``log`` holds a JSON object, add its keys to the record.

Fluent Bit's ``Merge_Log`` as a filter of its own, so it can run on any tag (tailed files,
forward input) and after the Kubernetes filter. A line that is not a JSON object (or not in the
format of the configured ``parser``) passes unchanged; nothing is ever dropped. The merge rules
(reserved fields, caps on key count and depth) live in ``shipper.filters.merge``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from shipper.filters import merge, parsers
from shipper.filters.merge import Merger, MergeRules
from shipper.metrics import Metrics
from shipper.record import Record

NOT_PARSED = "not_parsed"
PARSER_ERROR = "parser_error"


@dataclass(frozen=True)
class JsonMergeConfig:
    """Parse a text field (JSON by default) and merge the result into the record."""

    type: Literal["json_merge"] = field(default="json_merge", metadata={"doc": "Filter type."})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this filter applies to (Fluentd match syntax)."})
    parser: str = field(default="json", metadata={
        "doc": "Name of the parser applied to key_name (json, or any other registered parser).",
        "check": parsers.check_name})
    key_name: str = merge.key_name_field()
    merge_key: str | None = merge.merge_key_field()
    keep_log: bool = merge.keep_log_field()
    max_keys: int = merge.max_keys_field()
    max_depth: int = merge.max_depth_field()
    conflict_prefix: str = merge.conflict_prefix_field()
    reserved_fields: tuple[str, ...] = merge.reserved_fields_field()

    __config_examples__: ClassVar[str] = """\
Example: merge JSON application logs at the top level, like Fluent Bit's `Merge_Log On`:

```yaml
filters:
  app_json:
    type: json_merge
    match: "kube.**"
```

`{"log": "{\\"level\\":\\"warn\\",\\"time\\":\\"...\\",\\"msg\\":\\"slow\\"}", "time": "..."}`
becomes `{"log": "...", "time": "...", "level": "warn", "parsed_time": "...",
"msg": "slow"}`: the record's own `time` is never overwritten. Use `merge_key: app` to keep
the parsed fields apart (`app.level`), which also keeps them from colliding with fields
other applications log under the same names. Lines that are not JSON objects pass unchanged;
`shipper_filter_records_total{filter,result}` counts `merged`, `not_parsed`,
`too_many_keys`, `depth_capped` and `key_conflict`.
"""

    def rules(self) -> MergeRules:
        return MergeRules(key_name=self.key_name, merge_key=self.merge_key,
                          keep_log=self.keep_log, max_keys=self.max_keys,
                          max_depth=self.max_depth, conflict_prefix=self.conflict_prefix,
                          reserved_fields=tuple(self.reserved_fields))

    def validate(self) -> list[str]:
        return self.rules().validate()


class JsonMergeFilter:
    """The filter: synchronous, no I/O, never drops a record."""

    def __init__(self, name: str, config: JsonMergeConfig, metrics: Metrics) -> None:
        self.name = name
        parser = parsers.get(config.parser)
        if parser is None:
            raise ValueError(parsers.check_name(config.parser))
        self._parser = parser
        self._merger = Merger(config.rules())
        self._metric = metrics.filter_records

    def process(self, records: list[Record]) -> list[Record]:
        key = self._merger.key_name
        parser = self._parser
        merger = self._merger
        not_parsed = errors = 0
        for record in records:
            body = record.body
            text = body.get(key)
            if type(text) is not str:
                not_parsed += 1
                continue
            try:
                parsed = parser(text)
            except Exception:  # a parser bug must not stop the pipeline; the line ships as is
                errors += 1
                continue
            if parsed is None:
                not_parsed += 1
                continue
            merger.merge(body, parsed)
        self._publish(not_parsed, errors)
        return records

    def _publish(self, not_parsed: int, errors: int) -> None:
        counts: dict[str, Any] = self._merger.take_counts()
        if not_parsed:
            counts[NOT_PARSED] = not_parsed
        if errors:
            counts[PARSER_ERROR] = errors
        for result, n in counts.items():
            self._metric.labels(self.name, result).inc(n)
