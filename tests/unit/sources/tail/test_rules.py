"""A file's multiline rule: the pod's annotation hint first, else the source's rules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shipper.app import Agent, parse_agent_config
from shipper.filters.kubernetes import KubernetesMetadataFilter
from shipper.metrics import Metrics
from shipper.sources.tail import TailSource
from shipper.sources.tail.config import MultilineConfig, TailConfig
from shipper.sources.tail.rules import RuleChooser

CID = "a" * 64


def path(pod: str = "shop-1", namespace: str = "default", container: str = "app") -> str:
    return f"/var/log/containers/{pod}_{namespace}_{container}-{CID}.log"


class Hints:
    def __init__(self, answers: dict[tuple[str, str, str], str]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str, str]] = []

    def multiline_hint(self, namespace: str, pod: str, container: str) -> str | None:
        self.asked.append((namespace, pod, container))
        return self.answers.get((namespace, pod, container))


def chooser(rules: list[MultilineConfig], hints: Hints | None) -> tuple[RuleChooser, Metrics]:
    metrics = Metrics()
    c = RuleChooser("tail", TailConfig(multiline=rules),
                    metrics.multiline_hints_unknown.labels("tail"))
    c.hints = hints
    return c, metrics


def unknown(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("shipper_multiline_hints_unknown_total",
                                              {"source": "tail"})
    return value or 0.0


def test_without_hints_the_first_matching_source_rule_is_used() -> None:
    rules = [MultilineConfig(files=["*_payments_*"], start_pattern=r"\d"),
             MultilineConfig(files=["*"], preset="go")]
    c, _ = chooser(rules, None)
    assert c.choose(path(namespace="payments")) is rules[0]
    assert c.choose(path()) is rules[1]


def test_a_pod_hint_wins_and_keeps_the_matching_rules_bounds() -> None:
    rules = [MultilineConfig(files=["shop-*"], start_pattern=r"\d", max_lines=7)]
    hints = Hints({("default", "shop-1", "app"): "java", ("default", "other", "app"): "python",
                   ("default", "shop-1", "side"): "None"})
    c, _ = chooser(rules, hints)
    rule = c.choose(path())
    assert rule is not None and rule.preset == "java" and not rule.start_pattern
    assert rule.max_lines == 7
    assert c.choose(path(pod="other")) == MultilineConfig(preset="python")
    assert c.choose(path(container="side")) is None  # "none" turns joining off
    assert c.choose(path(pod="unannotated")) is None
    assert c.choose("/var/log/app.log") is None  # not a container file: nothing to ask
    assert ("default", "shop-1", "app") in hints.asked


def test_an_unknown_preset_is_counted_per_file_and_logged_once_per_pod(
        caplog: pytest.LogCaptureFixture) -> None:
    rules = [MultilineConfig(files=["*"], preset="go")]
    c, metrics = chooser(rules, Hints({("default", "shop-1", "app"): "cobol",
                                       ("default", "shop-1", "side"): "cobol"}))
    with caplog.at_level(logging.WARNING):
        assert c.choose(path()) is rules[0]
        assert c.choose(path(container="side")) is rules[0]
    assert unknown(metrics) == 2
    events = [r for r in caplog.records if getattr(r, "event", "") == "multiline_hint_unknown"]
    assert len(events) == 1 and events[0].__dict__["preset"] == "cobol"


def test_the_agent_hands_the_kubernetes_filter_to_its_tail_sources(tmp_path: Path) -> None:
    config = parse_agent_config(f"""
state_dir: {tmp_path}
sources:
  containers: {{type: tail, include: ["{tmp_path}/*.log"]}}
filters:
  k8s: {{type: kubernetes_metadata}}
outputs:
  out: {{type: stdout}}
""")
    agent = Agent(config)
    (source,) = agent.sources
    (k8s,) = agent.filters
    assert isinstance(source, TailSource) and isinstance(k8s, KubernetesMetadataFilter)
    assert source.files.rules.hints is k8s
    bare = Agent(parse_agent_config(f"""
state_dir: {tmp_path}
sources:
  containers: {{type: tail, include: ["{tmp_path}/*.log"]}}
outputs:
  out: {{type: stdout}}
"""))
    (alone,) = bare.sources
    assert isinstance(alone, TailSource) and alone.files.rules.hints is None
