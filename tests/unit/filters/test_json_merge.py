"""JSON merge: parsed keys join the record without clobbering, within key and depth caps."""

from __future__ import annotations

import orjson
import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError
from shipper.filters import parsers
from shipper.filters.json_merge import JsonMergeConfig, JsonMergeFilter
from shipper.filters.merge import Merger, MergeRules
from shipper.metrics import Metrics
from shipper.record import Record


def record(log: object, **extra: object) -> Record:
    body = {"log": log, "stream": "stdout", "time": "2026-11-22T00:00:00.000000001Z",
            "tag": "kube.x", "kubernetes": {"pod_name": "p"}, **extra}
    return Record(body, 1, "kube.x")


def run(config: JsonMergeConfig, *records: Record) -> tuple[list[Record], Metrics]:
    metrics = Metrics()
    out = JsonMergeFilter("json", config, metrics).process(list(records))
    return out, metrics


def count(metrics: Metrics, result: str) -> float:
    return metrics.registry.get_sample_value(
        "shipper_filter_records_total", {"filter": "json", "result": result}) or 0.0


def test_a_json_object_log_is_merged_at_the_top_level_and_the_log_is_kept() -> None:
    line = '{"level":"warn","msg":"slow","http":{"status":503}}'
    (out,), metrics = run(JsonMergeConfig(), record(line))
    assert out.body["level"] == "warn"
    assert out.body["msg"] == "slow"
    assert out.body["http"] == {"status": 503}
    assert out.body["log"] == line
    assert count(metrics, "merged") == 1


def test_reserved_and_existing_fields_are_never_overwritten_but_kept_under_a_prefix() -> None:
    line = orjson.dumps({"time": "app-time", "log": "inner", "kubernetes": "x",
                         "stream": "s", "user": "u", "_id": "1",
                         "kubernetes.pod_name": "evil"}).decode()
    (out,), metrics = run(JsonMergeConfig(), record(line, user="original"))
    body = out.body
    assert body["time"] == "2026-11-22T00:00:00.000000001Z"
    assert body["log"] == line
    assert body["kubernetes"] == {"pod_name": "p"}
    assert body["stream"] == "stdout"
    assert body["user"] == "original"
    assert body["parsed_time"] == "app-time"
    assert body["parsed_log"] == "inner"
    assert body["parsed_kubernetes"] == "x"
    assert body["parsed_user"] == "u"
    assert body["parsed__id"] == "1"
    assert body["parsed_kubernetes.pod_name"] == "evil"
    assert "_id" not in body
    assert count(metrics, "key_conflict") == 1


def test_a_value_that_cannot_be_placed_keeps_the_log_even_when_keep_log_is_off() -> None:
    line = '{"time": "t", "a": 1}'
    (out,), metrics = run(JsonMergeConfig(keep_log=False),
                          record(line, parsed_time="already here"))
    assert out.body["log"] == line
    assert out.body["a"] == 1
    assert out.body["parsed_time"] == "already here"
    assert count(metrics, "conflict_not_merged") == 1


def test_keep_log_false_removes_the_text_after_a_clean_merge() -> None:
    (out,), _ = run(JsonMergeConfig(keep_log=False), record('{"a": 1}'))
    assert "log" not in out.body
    assert out.body["a"] == 1


def test_merge_key_nests_the_fields() -> None:
    (out,), _ = run(JsonMergeConfig(merge_key="app"), record('{"time": "t", "level": "info"}'))
    assert out.body["app"] == {"time": "t", "level": "info"}
    assert "level" not in out.body


def test_too_many_keys_leaves_the_line_as_a_string_and_counts_it() -> None:
    line = orjson.dumps({"outer": {f"k{i}": i for i in range(20)}}).decode()
    (out,), metrics = run(JsonMergeConfig(max_keys=10), record(line))
    assert "outer" not in out.body
    assert out.body["log"] == line
    assert count(metrics, "too_many_keys") == 1
    assert count(metrics, "merged") == 0


def test_objects_deeper_than_the_cap_are_kept_as_json_strings() -> None:
    deep = {"a": {"b": {"c": {"d": 1}}}, "list": [{"x": {"y": 2}}], "flat": 3}
    (out,), metrics = run(JsonMergeConfig(max_depth=2), record(orjson.dumps(deep).decode()))
    assert out.body["a"] == {"b": '{"c":{"d":1}}'}
    assert out.body["list"] == [{"x": '{"y":2}'}]
    assert out.body["flat"] == 3
    assert count(metrics, "depth_capped") == 1


def test_lines_that_are_not_json_objects_pass_unchanged() -> None:
    texts = ["plain text", "[1, 2]", "{broken", '"string"', "", "{} trailing"]
    records = [record(t) for t in texts] + [record(None)]
    before = [dict(r.body) for r in records]
    out, metrics = run(JsonMergeConfig(), *records)
    assert [r.body for r in out] == before
    assert count(metrics, "not_parsed") == len(records)


def test_whitespace_around_a_json_object_is_accepted() -> None:
    (out,), _ = run(JsonMergeConfig(), record('  {"a": 1}\r '))
    assert out.body["a"] == 1


def test_a_failing_parser_never_stops_the_batch() -> None:
    def broken(text: str) -> dict[str, object] | None:
        raise RuntimeError("bug")

    parsers.register("broken_for_test", broken, replace=True)
    out, metrics = run(JsonMergeConfig(parser="broken_for_test"), record('{"a": 1}'),
                       record("x"))
    assert len(out) == 2
    assert "a" not in out[0].body
    assert count(metrics, "parser_error") == 2


@pytest.mark.parametrize(("setting", "expected"), [
    ("parser: nosuch", "filters.j.parser: unknown parser 'nosuch'"),
    ("merge_key: kubernetes", "filters.j.merge_key: 'kubernetes' is a reserved field"),
    ("conflict_prefix: _x", "filters.j.conflict_prefix: must be non-empty"),
    ("max_keys: 0", "filters.j.max_keys: must be greater than 0"),
])
def test_config_rejects_what_cannot_work(setting: str, expected: str) -> None:
    text = f"""\
sources: {{c: {{type: tail}}}}
outputs: {{o: {{type: stdout}}}}
filters:
  j:
    type: json_merge
    {setting}
"""
    with pytest.raises(ConfigError) as info:
        parse_agent_config(text)
    assert expected in str(info.value)


def test_merger_counts_can_be_taken_once() -> None:
    merger = Merger(MergeRules())
    merger.merge({"log": "x"}, {"a": 1})
    assert merger.take_counts() == {"merged": 1}
    assert merger.take_counts() == {}
