"""What one tap line says: a parsed Envoy access-log record, seen from the mesh's side.

A tap event is a flat JSON object, the same on the wire (``/tap``) and in ``shipper tap -o
json``, so it can be piped into ``jq``::

    {"time": "2026-11-22T01:02:04.801Z", "namespace": "shop", "pod": "orders-7d4b9c5f8-x2x5z",
     "workload": "orders", "container": "istio-proxy", "node": "node-1",
     "direction": "inbound", "peer": {"address": "10.244.1.9"},
     "envoy": {"method": "POST", "path": "/api/v1/orders", "response_code": 503, ...}}

``namespace``/``pod``/``workload`` name the pod whose sidecar logged the request (Istio's
"reporter"). ``peer`` is the other end as far as the line tells: for an outbound request the
destination Service (from the upstream cluster ``outbound|8080||orders.shop.svc.cluster.local``)
or host; for an inbound one only the client's address (Istio's default format does not name
the client workload; ``shipper tap --pair`` recovers it from the client's own line).

The workload is the pod's owner name, derived from the pod name the way Fluent Bit does
(``DEPLOYMENT_REGEX``, spec forward-containerlogs-k8smeta §2.6): strip the 5-character pod
suffix, then a ReplicaSet's pod-template hash; ``web-0`` (StatefulSet) gives ``web``.
"""

from __future__ import annotations

import re
from typing import Any

from shipper.record import Record, format_rfc3339_nanos

# Kubernetes' generated-name alphabet (no vowels, no 0/1/3): pod suffixes and template hashes.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_POD_SUFFIX = re.compile(rf"(.+)-[{_SAFE}]{{5}}\Z")
DEPLOYMENT_REGEX = re.compile(rf"(?P<deployment>.+)-(?P<id>[{_SAFE}]{{6,10}})\Z")
_ORDINAL = re.compile(r"(.+)-\d+\Z")
_CACHE_LIMIT = 4096
_workloads: dict[str, str] = {}


def workload_of(pod: str) -> str:
    """The owner name of a pod (Deployment, DaemonSet, Job, StatefulSet), else the pod."""
    cached = _workloads.get(pod)
    if cached is not None:
        return cached
    name = pod
    m = _POD_SUFFIX.match(pod)
    if m:
        owner = m.group(1)
        d = DEPLOYMENT_REGEX.match(owner)
        name = d.group("deployment") if d else owner
    else:
        o = _ORDINAL.match(pod)
        if o:
            name = o.group(1)
    if len(_workloads) >= _CACHE_LIMIT:
        _workloads.clear()
    _workloads[pod] = name
    return name


def service_of(host: str) -> dict[str, str]:
    """``orders.shop.svc.cluster.local[:8080]`` -> service and namespace; else the host."""
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    parts = bare.split(".")
    if len(parts) >= 3 and parts[2] == "svc":
        return {"service": parts[0], "namespace": parts[1]}
    return {"host": bare}


def _ip(address: str) -> str:
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def peer_of(envoy: dict[str, Any]) -> dict[str, str]:
    """The other end of the request, as far as this sidecar's line tells."""
    if envoy.get("direction") == "inbound":
        remote = envoy.get("downstream_remote_address")
        return {"address": _ip(remote)} if isinstance(remote, str) else {}
    cluster = envoy.get("upstream_cluster")
    peer: dict[str, str] = {}
    if isinstance(cluster, str) and cluster.startswith("outbound|"):
        fqdn = cluster.split("|", 3)[-1]
        if fqdn:
            peer = service_of(fqdn)
    if not peer:
        authority = envoy.get("authority")
        if isinstance(authority, str) and authority:
            peer = service_of(authority)
    upstream = envoy.get("upstream_host")
    if isinstance(upstream, str):
        peer["address"] = _ip(upstream)
    return peer


def tap_event(record: Record) -> dict[str, Any] | None:
    """The tap view of a record, or None when it carries no parsed access log."""
    body = record.body
    envoy = body.get("envoy")
    if type(envoy) is not dict:
        return None
    k8s = body.get("kubernetes")
    if type(k8s) is not dict:
        k8s = {}
    start = envoy.get("start_time")
    event: dict[str, Any] = {
        "time": start if isinstance(start, str) else format_rfc3339_nanos(record.time_ns)}
    namespace = k8s.get("namespace_name")
    if isinstance(namespace, str):
        event["namespace"] = namespace
    pod = k8s.get("pod_name")
    if isinstance(pod, str):
        event["pod"] = pod
        event["workload"] = workload_of(pod)
    for key, name in (("container", "container_name"), ("node", "host")):
        value = k8s.get(name)
        if isinstance(value, str):
            event[key] = value
    direction = envoy.get("direction")
    if isinstance(direction, str):
        event["direction"] = direction
    event["peer"] = peer_of(envoy)
    event["envoy"] = envoy
    return event
