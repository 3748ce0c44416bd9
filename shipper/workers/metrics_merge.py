"""One Prometheus exposition for N worker processes: every sample gets ``worker="<i>"``.

Each worker serves its own registry on a loopback port; the supervisor scrapes them all
and answers ``/metrics`` once, so the DaemonSet's single scrape target keeps working. Families
are merged by name in the order first seen, so each ``# HELP``/``# TYPE`` appears once and
the samples of all workers follow it; formatting is prometheus_client's own
(``generate_latest`` over a collector that yields the merged families).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

WORKER_LABEL = "worker"


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_families(texts: Mapping[int, str]) -> list[Metric]:
    """Parse each worker's exposition text and merge the families, labelling the samples.

    A sample that already has a ``worker`` label (there is none today) keeps it: the label
    is not overwritten, so nothing is ever silently merged into another worker's series.
    """
    merged: dict[str, Metric] = {}
    for index in sorted(texts):
        for family in text_string_to_metric_families(texts[index]):
            target = merged.get(family.name)
            if target is None:
                target = merged[family.name] = Metric(family.name, family.documentation,
                                                      family.type, family.unit)
            for sample in family.samples:
                labels = {WORKER_LABEL: str(index), **sample.labels}
                target.samples.append(sample._replace(labels=labels))
    return list(merged.values())


def merge_exposition(texts: Mapping[int, str], extra: Iterable[Metric] = ()) -> bytes:
    """The text served on the supervisor's ``/metrics``: the workers' families, labelled,
    then ``extra`` (the supervisor's own) as they are."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*merge_families(texts), *extra]))
    return generate_latest(registry)
