"""Server detection, the index template, and the output's readiness state (spec §1.7, §1.9).

Detection reads ``GET /``: OpenSearch says so in ``version.distribution`` (or its tagline) even
when it reports a 7.10.2 version number for compatibility, so the product is decided from those
and never from the ``X-Elastic-Product`` header, which ES < 7.14 does not send either.

The template exists so that Kubernetes metadata never breaks indexing: with dynamic mapping the
labels ``app`` and ``app.kubernetes.io/name`` conflict (``app`` is text in one document and an
object in the next, and the second document is rejected). Mapping ``labels``, ``annotations``
and ``namespace_labels`` as ``flattened`` (ES >= 7.3, default distribution) or ``flat_object``
(OpenSearch >= 2.7) indexes every key as a keyword leaf, so both spellings coexist and queries
such as ``kubernetes.labels.istio-mixer-type : "telemetry"`` still match. Older servers get a
stored-but-not-indexed object: never rejected, but not searchable by label.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from shipper.errors import TLS_ERROR_TYPE
from shipper.fields import mapping_properties
from shipper.protocols import Outcome, Status

Product = Literal["elasticsearch", "opensearch"]

TEMPLATE_PRIORITY = 200  # above the built-in priority-100 templates (logs-*-* ...)
TEMPLATE_VERSION = 3  # 2: envoy.* fields (shipper.fields); 3: more kubernetes.* fields
# Leaf values longer than this are kept in _source but not indexed: Lucene refuses terms over
# 32766 bytes, and annotations (last-applied-configuration...) can be that long.
FLATTENED_IGNORE_ABOVE = 8191

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What answered ``GET /``."""

    product: Product
    version: tuple[int, int, int]
    number: str
    oss: bool = False
    assumed: bool = False  # True when GET / was forbidden and this is a guess

    def at_least(self, major: int, minor: int = 0) -> bool:
        return self.version[:2] >= (major, minor)

    def __str__(self) -> str:
        name = "OpenSearch" if self.product == "opensearch" else "Elasticsearch"
        flavor = " (oss)" if self.oss else ""
        guess = " (assumed: GET / forbidden)" if self.assumed else ""
        return f"{name} {self.number}{flavor}{guess}"


ASSUMED_SERVER = ServerInfo("elasticsearch", (8, 0, 0), "8.0.0", assumed=True)


def parse_root(body: bytes) -> ServerInfo:
    """Read the product and version from a ``GET /`` body. Raises ValueError if it is not ES/OS."""
    try:
        root = orjson.loads(body)
        version = root["version"]
        number = str(version["number"])
    except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"not an Elasticsearch/OpenSearch root response: {body[:200]!r}") \
            from exc
    match = _VERSION.match(number)
    if match is None:
        raise ValueError(f"unreadable version number {number!r}")
    parsed = (int(match.group(1)), int(match.group(2) or 0), int(match.group(3) or 0))
    distribution = str(version.get("distribution") or "").lower()
    tagline = str(root.get("tagline") or "")
    if distribution == "opensearch" or "opensearch" in tagline.lower():
        return ServerInfo("opensearch", parsed, number)
    return ServerInfo("elasticsearch", parsed, number,
                      oss=str(version.get("build_flavor") or "") == "oss")


def uses_composable_templates(info: ServerInfo) -> bool:
    """``_index_template`` exists on ES >= 7.8 and every OpenSearch."""
    return info.product == "opensearch" or info.at_least(7, 8)


def object_map_mapping(info: ServerInfo) -> dict[str, Any]:
    """Mapping for label-like maps with arbitrary keys, by what the server supports."""
    if info.product == "elasticsearch" and info.at_least(7, 3) and not info.oss:
        return {"type": "flattened", "ignore_above": FLATTENED_IGNORE_ABOVE}
    if info.product == "opensearch" and info.at_least(2, 7):
        return {"type": "flat_object"}
    return {"type": "object", "enabled": False}


def mappings(info: ServerInfo) -> dict[str, Any]:
    """Field types for the Fluentd-shaped Kubernetes record (design.md, "Records") and the
    Envoy access-log fields, from the one field list that the Kibana dashboards also use."""
    return {
        # Strings that look like dates (in messages, labels...) must not fix a field to date.
        "date_detection": False,
        "properties": mapping_properties(object_map_mapping(info)),
    }


def template_request(info: ServerInfo, name: str, pattern: str,
                     ilm_policy: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` of the PUT that installs the template for index ``pattern``."""
    settings: dict[str, Any] = {}
    if ilm_policy and info.product == "elasticsearch":
        settings["index.lifecycle.name"] = ilm_policy
    meta = {"managed_by": "shipper"}
    if uses_composable_templates(info):
        return f"/_index_template/{name}", {
            "index_patterns": [pattern],
            "priority": TEMPLATE_PRIORITY,
            "version": TEMPLATE_VERSION,
            "_meta": meta,
            "template": {"settings": settings, "mappings": mappings(info)},
        }
    return f"/_template/{name}", {
        "index_patterns": [pattern],
        "order": TEMPLATE_PRIORITY,
        "version": TEMPLATE_VERSION,
        "settings": settings,
        "mappings": mappings(info),
    }


def index_pattern(logstash_format: bool, prefix: str, separator: str,
                  index: str | None) -> str:
    """The indices the template applies to: ``<prefix><sep>*`` or the fixed index."""
    if logstash_format:
        return f"{prefix}{separator}*".lower()
    if not index:
        raise ValueError("index is required when logstash_format is false")
    return index.lower()


@dataclass
class Health:
    """Readiness of one output, updated after every request; read by ``/readyz``.

    ``credentials_rejected`` is set by a 401/403 and cleared by the next accepted request, so
    health can say why nothing is being delivered while the data waits in the buffer.
    """

    server: ServerInfo | None = None
    started: bool = False
    last_success: float | None = None
    credentials_rejected: bool = False
    #: Why the server's certificate was refused (verification failed), until it is accepted.
    tls_problem: str | None = None
    last_error: str | None = None
    last_http_status: int | None = None
    _clock: Callable[[], float] = field(default=time.time, repr=False)

    def observe(self, outcome: Outcome) -> None:
        """Fold one request's outcome into the state."""
        status = outcome.http_status
        self.last_http_status = status
        if status is not None:
            self.tls_problem = None  # an HTTP answer: the handshake was accepted
        else:
            tls = next((e for e in outcome.errors.values() if e.type == TLS_ERROR_TYPE), None)
            self.tls_problem = tls.reason if tls is not None else None
        if status is not None and status in (401, 403):
            self.credentials_rejected = True
        elif status is not None and 200 <= status < 300:
            self.credentials_rejected = False
            self.last_success = self._clock()
        if outcome.errors and any(s != Status.DELIVERED for s in outcome.statuses):
            error = next(iter(outcome.errors.values()))
            self.last_error = f"{error.status} {error.type}: {error.reason}"[:500]

    @property
    def ready(self) -> bool:
        """Started, the server is not refusing our credentials, and its certificate is
        trusted."""
        return self.started and not self.credentials_rejected and self.tls_problem is None

    def snapshot(self) -> dict[str, Any]:
        """A JSON-friendly view for the health endpoint."""
        return {
            "ready": self.ready,
            "server": str(self.server) if self.server else None,
            "last_success": self.last_success,
            "credentials_rejected": self.credentials_rejected,
            "tls_problem": self.tls_problem,
            "last_http_status": self.last_http_status,
            "last_error": self.last_error,
        }
