"""Kubernetes metadata for every record (spec "Kubernetes metadata" §3).

``config`` (settings), ``objects`` (what is kept of a pod), ``cache`` (lookups and the shared
per-container dicts), ``client`` + ``watcher`` + ``limiter`` (list+watch in background threads
with backoff and a request budget), ``filter`` (the synchronous record path and lifecycle).
"""

from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.filter import KubernetesMetadataFilter

__all__ = ["KubernetesMetadataConfig", "KubernetesMetadataFilter"]
