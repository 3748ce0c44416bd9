"""Realistic per-container log content for the demo node (see `make_source`)."""

from __future__ import annotations

import random
from typing import Final

from shipper.demo.content.apps import FlaskSource, JsonAppSource, PinoSource, WebrickSource
from shipper.demo.content.base import Line, LineSource
from shipper.demo.content.envoy import EnvoyProxySource
from shipper.demo.content.istiod import IstiodSource
from shipper.demo.content.java import LibertySource, SpringBootSource
from shipper.demo.topology import GATEWAY, ISTIOD, SIDECAR, Cluster, Container, Pod

_SOURCES: Final[dict[str, type[LineSource]]] = {
    SIDECAR: EnvoyProxySource,
    GATEWAY: EnvoyProxySource,
    ISTIOD: IstiodSource,
    "spring": SpringBootSource,
    "liberty": LibertySource,
    "flask": FlaskSource,
    "webrick": WebrickSource,
    "pino": PinoSource,
    "jsonapp": JsonAppSource,
}


def make_source(rng: random.Random, cluster: Cluster, pod: Pod, container: Container) -> LineSource:
    """The line source for a container, chosen by the container's `kind`."""
    try:
        cls = _SOURCES[container.kind]
    except KeyError:
        raise ValueError(f"unknown container kind {container.kind!r}") from None
    return cls(rng, cluster, pod, container)


__all__ = ["Line", "LineSource", "make_source"]
