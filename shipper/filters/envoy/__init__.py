"""``type: envoy_access_log``: Envoy / Istio access logs as ``envoy.*`` fields (spec §4).

``parse`` is the pure line parser, ``config`` the settings, ``filter`` the pipeline stage.
Importing this package also registers the ``envoy`` parser in the shared parser registry, so
a pod annotated ``shipper.io/parser: envoy`` gets the same fields through the Kubernetes
metadata filter.
"""

from __future__ import annotations

from shipper.filters import parsers
from shipper.filters.envoy.config import EnvoyAccessLogConfig
from shipper.filters.envoy.filter import EnvoyAccessLogFilter
from shipper.filters.envoy.parse import parse_for_registry, parse_line

parsers.register("envoy", parse_for_registry)

__all__ = ["EnvoyAccessLogConfig", "EnvoyAccessLogFilter", "parse_line"]
