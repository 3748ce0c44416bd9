"""Enrichment for the benchmark: the workload's pods served from a local Kubernetes API.

The issue's rows count enrichment as part of the agent's work: every record gets the full
``kubernetes.*`` record of the metadata filter (from a warm cache) and sidecar lines get the
``envoy.*`` fields. The API server runs in the benchmark process, so its CPU is not charged
to the agent; the agent's filter lists the pods before its sources read a line, so the cache
is warm from the first record on.

A run also checks that enrichment really happened, from the agent's own counters: a broken
filter config would otherwise make the numbers look better than they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipper.demo.k8s_api import KubeApiServer
from shipper.demo.k8s_objects import demo_objects
from shipper.demo.manifest import Manifest

NODE_NAME = "bench-node-1"
K8S_FILTER = "k8s"
ENVOY_FILTER = "envoy"
#: Below this share of enriched records a run is refused rather than reported.
MIN_ENRICHED_SHARE = 0.9

FILTERS_YAML = """\
filters:
  {k8s}:
    type: kubernetes_metadata
    kubernetes_url: "{url}"
    node_name: {node}
  {envoy}:
    type: envoy_access_log
"""


def start_kube_api(*manifests: Manifest) -> KubeApiServer:
    """A started API server holding the namespaces and pods of the workloads' node."""
    server = KubeApiServer()
    for manifest in manifests:
        server.state.load(*demo_objects(manifest, NODE_NAME))
    server.start()
    return server


def filters_yaml(kube_api_url: str) -> str:
    """The ``filters:`` section every benchmark agent runs with."""
    return FILTERS_YAML.format(k8s=K8S_FILTER, envoy=ENVOY_FILTER, url=kube_api_url,
                              node=NODE_NAME)


@dataclass(frozen=True)
class Enrichment:
    """What the agent's filters reported for one run."""

    enriched: int
    not_found: int
    envoy_parsed: int

    def check(self, expected: int) -> None:
        """Refuse a run in which most records went through without their metadata."""
        if self.enriched < MIN_ENRICHED_SHARE * expected:
            raise RuntimeError(
                f"only {self.enriched:,} of {expected:,} records were enriched "
                f"({self.not_found:,} not found): the benchmark would not measure enrichment")

    def summary(self) -> str:
        return (f"enriched {self.enriched:,}, not found {self.not_found:,}, "
                f"envoy parsed {self.envoy_parsed:,}")


def enrichment_from(metrics: dict[tuple[str, str], float]) -> Enrichment:
    """Read ``shipper_filter_records_total{filter, result}`` values."""
    return Enrichment(
        enriched=int(metrics.get((K8S_FILTER, "enriched"), 0)),
        not_found=int(metrics.get((K8S_FILTER, "not_found"), 0)),
        envoy_parsed=int(metrics.get((ENVOY_FILTER, "parsed"), 0)))


def load_manifest(path: Path) -> Manifest:
    return Manifest.from_json(path.read_bytes())
