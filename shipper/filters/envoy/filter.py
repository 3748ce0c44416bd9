"""The ``envoy_access_log`` filter: select Envoy containers' records, parse, add ``envoy``.

Synchronous and I/O-free like every filter. A selected line that is not an access log
(pilot-agent and Envoy's own logs share the container) passes untouched and is counted as
``not_parsed``; nothing is dropped, and a parser bug costs the line its fields, never the line.
Records that already carry ``envoy`` (parsed earlier through the ``shipper.io/parser: envoy``
pod annotation) are left alone, so the two paths never parse a line twice.

Only the record body is changed (``envoy`` added, ``log`` removed with ``keep_log: false``);
the ``kubernetes`` dicts that the tail shares between records are only read.
"""

from __future__ import annotations

import logging
from typing import Any

from shipper.filters.envoy.config import EnvoyAccessLogConfig
from shipper.filters.envoy.parse import parse_line
from shipper.metrics import Metrics
from shipper.record import Record

log = logging.getLogger(__name__)

PARSED = "parsed"
NOT_PARSED = "not_parsed"
PARSER_ERROR = "parser_error"
_NOTHING = object()


def _label_selectors(selectors: list[str]) -> list[tuple[tuple[str, ...], str | None]]:
    """``key[=value]`` -> (the key's spellings: raw and de-dotted/de-slashed, value or None)."""
    out = []
    for selector in selectors:
        key, sep, value = selector.partition("=")
        dotted = key.replace(".", "_")
        spellings = tuple(dict.fromkeys((key, dotted, dotted.replace("/", "_"))))
        out.append((spellings, value if sep else None))
    return out


class EnvoyAccessLogFilter:
    """Adds ``envoy.*`` fields to the access-log records of Envoy containers."""

    def __init__(self, name: str, config: EnvoyAccessLogConfig, metrics: Metrics) -> None:
        self.name = name
        self._key = config.key_name
        self._keep_log = config.keep_log
        self._every = config.every_record
        self._containers = frozenset(config.container_names)
        self._labels = _label_selectors(config.pod_labels)
        metric = metrics.filter_records
        self._parsed = metric.labels(name, PARSED)
        self._not_parsed = metric.labels(name, NOT_PARSED)
        self._errors = metric.labels(name, PARSER_ERROR)

    def selects(self, body: dict[str, Any]) -> bool:
        """True when the record comes from an Envoy container this filter is set up for."""
        if self._every:
            return True
        k8s = body.get("kubernetes")
        if type(k8s) is not dict:
            return False
        if k8s.get("container_name") in self._containers:
            return True
        labels = k8s.get("labels")
        if not labels or type(labels) is not dict:
            return False
        for spellings, value in self._labels:
            for key in spellings:
                found = labels.get(key)
                if found is not None and (value is None or found == value):
                    return True
        return False

    def process(self, records: list[Record]) -> list[Record]:
        key = self._key
        parsed = not_parsed = errors = 0
        # The tail shares one ``kubernetes`` dict between the records of a container (and the
        # metadata filter one per container), so the selection is decided once per run of
        # records with the same dict, not once per record.
        last_k8s: object = _NOTHING
        selected = False
        every = self._every
        for record in records:
            body = record.body
            if not every:
                k8s = body.get("kubernetes")
                if k8s is not last_k8s:
                    last_k8s = k8s
                    selected = self.selects(body)
                if not selected:
                    continue
            if "envoy" in body:
                continue
            line = body.get(key)
            if type(line) is not str:
                not_parsed += 1
                continue
            try:
                fields = parse_line(line)
            except Exception:  # a parser bug must not stop the pipeline; the line ships as is
                errors += 1
                if errors == 1:
                    log.exception("envoy access-log parser failed on a line",
                                  extra={"event": "filter_parser_error", "filter": self.name})
                continue
            if fields is None:
                not_parsed += 1
                continue
            body["envoy"] = fields
            if not self._keep_log:
                del body[key]
            parsed += 1
        if parsed:
            self._parsed.inc(parsed)
        if not_parsed:
            self._not_parsed.inc(not_parsed)
        if errors:
            self._errors.inc(errors)
        return records
