"""Tail settings: documented defaults, impossible values rejected at load with their key."""

from dataclasses import fields

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError
from shipper.record import Record
from shipper.sources.tail.config import MultilineConfig, TailConfig
from shipper.sources.tail.multiline import build

BASE = """\
sources:
  containers:
    type: tail
{body}
outputs:
  out: {{type: stdout}}
"""


def load(body: str) -> TailConfig:
    config = parse_agent_config(BASE.format(body=body), file="shipper.yaml")
    source = config.sources["containers"]
    assert isinstance(source, TailConfig)
    return source


def test_defaults_follow_the_fluentd_kubernetes_daemonset() -> None:
    cfg = TailConfig()
    assert cfg.include == ["/var/log/containers/*.log"]
    assert cfg.read_from_head is True
    assert cfg.max_line_bytes == cfg.read_chunk_bytes == 1024 * 1024
    assert cfg.rotate_wait_secs == 5 and cfg.tag_prefix == "kube"


def test_safety_defaults_bound_descriptors_deleted_files_and_self_logs() -> None:
    cfg = TailConfig()
    assert cfg.max_open_files == 1000
    assert 0 < cfg.deleted_file_timeout_secs <= 600
    assert cfg.exclude_own_pod is True
    assert cfg.multiline == []


def test_every_field_is_documented() -> None:
    assert all(f.metadata.get("doc") for f in fields(TailConfig))
    assert all(f.metadata.get("doc") for f in fields(MultilineConfig))


def test_a_multiline_rule_loads_with_units() -> None:
    cfg = load("    multiline:\n"
               "      - files: ['*_payments_*']\n"
               "        start_pattern: '\\d{4}-'\n"
               "        max_bytes: 64KiB\n"
               "        flush_timeout_secs: 500ms\n")
    (rule,) = cfg.multiline
    assert rule.files == ["*_payments_*"] and rule.start_pattern == "\\d{4}-"
    assert rule.max_bytes == 64 * 1024 and rule.flush_timeout_secs == 0.5


def test_a_preset_rule_needs_no_start_pattern() -> None:
    cfg = load("    multiline:\n      - {files: ['*_shop_*'], preset: java, max_lines: 50}\n")
    (rule,) = cfg.multiline
    assert rule.preset == "java" and rule.start_pattern == "" and rule.max_lines == 50


@pytest.mark.parametrize(("body", "key"), [
    ("    include: []", "sources.containers.include"),
    ("    max_line_bytes: 0", "sources.containers.max_line_bytes"),
    ("    checkpoint_interval_secs: 0", "sources.containers.checkpoint_interval_secs"),
    ("    rotate_wait_secs: -1", "sources.containers.rotate_wait_secs"),
    ("    max_open_files: 0", "sources.containers.max_open_files"),
    ("    deleted_file_timeout_secs: 0", "sources.containers.deleted_file_timeout_secs"),
    ("    multiline: [{start_pattern: '('}]", "sources.containers.multiline[0].start_pattern"),
    ("    multiline: [{files: ['*']}]", "sources.containers.multiline"),
    ("    multiline: [{preset: cobol}]", "sources.containers.multiline[0].preset"),
    ("    multiline: [{preset: java, start_pattern: 'x'}]", "sources.containers.multiline"),
])
def test_impossible_values_are_rejected_with_their_key(body: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(body)
    assert any(p.key_path == key for p in raised.value.problems), raised.value.problems


def test_the_documented_example_loads_and_its_python_rule_keeps_tracebacks_together() -> None:
    example = TailConfig.__config_examples__
    yaml_text = example.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_agent_config(yaml_text + "outputs:\n  out: {type: stdout}\n",
                                file="example.yaml")
    source = config.sources["containers"]
    assert isinstance(source, TailConfig) and source.max_open_files == 500
    rule = source.multiline[1]
    assert rule.preset == "python" and not rule.start_pattern
    joiner = build(rule, [])
    lines = ["2024-01-01 ERROR request failed", "Traceback (most recent call last):",
             '  File "x.py", line 1, in <module>', "ValueError: bad input", "next line"]
    done = [r for i, text in enumerate(lines)
            if (r := joiner.add(Record({"log": text, "stream": "stderr"}, 1, "t", f"x-{i}"), i))]
    done += joiner.flush()
    assert [r.body["log"] for r in done] == ["\n".join(lines[:4]), "next line"]
