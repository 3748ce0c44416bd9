"""Which multiline rule a file uses: the pod's annotation hint, else the source's rules.

The choice is made once per file generation, when the tail opens it (``FileTable``). A pod
annotation (``shipper.io/multiline: java``, per container ``shipper.io/multiline.<name>``)
reaches the tail through ``protocols.MultilineHints``, which the agent wires to the
kubernetes_metadata filter's pod cache; the path gives the pod's names. A hint wins over
the source's rules: its preset replaces the start pattern or preset of the first source rule
that matches the file (whose bounds it keeps), else the default bounds apply. ``none`` turns
joining off for the pod. An unknown name is counted and logged once per pod; the file then
uses the source's rules, never failing.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from shipper.protocols import MultilineHints
from shipper.sources.tail.config import MultilineConfig, TailConfig
from shipper.sources.tail.discovery import matches_any
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.presets import NONE, PRESETS

log = logging.getLogger(__name__)

_MAX_WARNED = 10_000  # pods remembered as warned about (a bound, not an expected size)


class RuleChooser:
    """The multiline rule of each file of one tail source."""

    def __init__(self, name: str, config: TailConfig, unknown_counter: Any) -> None:
        self.name = name
        self.config = config
        self.hints: MultilineHints | None = None  # set by the agent when a filter can answer
        self._unknown = unknown_counter
        self._warned: set[tuple[str, str, str]] = set()

    def choose(self, path: str) -> MultilineConfig | None:
        rule = next((r for r in self.config.multiline if matches_any(path, r.files)), None)
        if self.hints is None:
            return rule
        names = parse_path(path, self.config.tag_prefix).kubernetes
        if not names:
            return rule
        namespace, pod = names["namespace_name"], names["pod_name"]
        container = names["container_name"]
        hint = self.hints.multiline_hint(namespace, pod, container)
        if hint is None:
            return rule
        hint = hint.strip().lower()
        if hint == NONE:
            return None
        if hint not in PRESETS:
            self._unknown.inc()
            key = (namespace, pod, hint)
            if key not in self._warned:
                if len(self._warned) >= _MAX_WARNED:
                    self._warned.clear()
                self._warned.add(key)
                log.warning("a pod's multiline annotation names no known preset; its files "
                            "use the source's rules",
                            extra={"event": "multiline_hint_unknown", "source": self.name,
                                   "namespace": namespace, "pod": pod,
                                   "preset": hint[:100], "available": sorted(PRESETS)})
            return rule
        if rule is None:
            return MultilineConfig(preset=hint)
        if rule.preset == hint:
            return rule
        return dataclasses.replace(rule, preset=hint, start_pattern="")
