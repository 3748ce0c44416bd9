"""The metadata cache: pods and namespaces by key, and a ready-made ``kubernetes`` dict per
container that every record of that container shares.

Owned by the event-loop thread: the watcher threads hand over updates with
``call_soon_threadsafe``, so no lock is taken on the record path. Lookups go, in order, by
the record's pod uid (``/var/log/pods`` paths), its container id (``/var/log/containers``
paths, and restarted containers' old files) and finally its namespace and pod name (a container
the API has not reported yet).

The rendered dicts are built once per (pod version, namespace version, container) and then
reused by identity, so a record costs one dict assignment. Nobody may mutate them.

Deleted pods stay for late lines (spec "Deleted pods keep their metadata long enough"): a pod
is evicted only when it was deleted at least ``retention`` ago *and* no record of it has been
seen for ``retention`` while records were flowing. If the whole pipeline stalls (outputs
blocked, nothing processed), nothing expires. ``max_deleted`` bounds memory under any churn:
beyond it the oldest deletions go first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shipper.filters.kubernetes.objects import ContainerMeta, NamespaceMeta, PodMeta

#: Keys the tail puts in ``kubernetes`` (from the file name); anything else came from
#: elsewhere (a forward client) and is carried over into the enriched dict.
_FILE_KEYS = frozenset(("namespace_name", "pod_name", "container_name", "pod_id"))
_MAX_RENDERED_PER_POD = 64


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """What goes into the ``kubernetes`` dict besides the pod's own fields."""

    master_url: str | None = None
    container_metadata: bool = True
    namespace_metadata: bool = True


@dataclass(frozen=True, slots=True, eq=False)
class Resolved:
    """The enrichment of one container's records: shared, never mutated."""

    kubernetes: dict[str, Any]
    docker: dict[str, str] | None  # a replacement ``docker`` dict, or None to keep the record's
    excluded: bool
    parser: str | None
    namespace: NamespaceMeta | None


class MetadataCache:
    """Pods of this node and every namespace, plus the indexes the record path needs."""

    def __init__(self, options: RenderOptions, retention_secs: float, max_deleted: int) -> None:
        self.options = options
        self.retention = retention_secs
        self.max_deleted = max_deleted
        self.pods: dict[str, PodMeta] = {}
        self.namespaces: dict[str, NamespaceMeta] = {}
        self._by_container: dict[str, str] = {}
        self._by_name: dict[tuple[Any, Any], str] = {}
        self._deleted: dict[str, None] = {}  # uids in deletion order
        self._last_activity = 0.0

    # -- updates (from the watchers, on the loop thread) ------------------------------------

    def upsert_pod(self, pod: PodMeta) -> None:
        old = self.pods.get(pod.uid)
        if old is not None:
            if old.resource_version and old.resource_version == pod.resource_version:
                return  # same version (a relist): keep the rendered dicts
            self._unindex(old)
            pod.deleted_at, pod.last_seen = old.deleted_at, old.last_seen
        self.pods[pod.uid] = pod
        for cid in pod.container_ids:
            self._by_container[cid] = pod.uid
        self._by_name[(pod.namespace, pod.name)] = pod.uid

    def delete_pod(self, pod: PodMeta, now: float) -> None:
        """The pod is gone from the API; keep its last known state for late lines."""
        self.upsert_pod(pod)
        current = self.pods[pod.uid]
        if current.deleted_at is None:
            current.deleted_at = now
            current.last_seen = now
            self._deleted[pod.uid] = None

    def replace_pods(self, pods: Iterable[PodMeta], now: float) -> None:
        """A fresh list: upsert every pod, and treat pods missing from it as deleted."""
        seen = set()
        for pod in pods:
            seen.add(pod.uid)
            self.upsert_pod(pod)
            current = self.pods[pod.uid]
            if current.deleted_at is not None:  # listed again: alive after all
                current.deleted_at = None
                self._deleted.pop(pod.uid, None)
        for uid, pod in list(self.pods.items()):
            if uid not in seen and pod.deleted_at is None:
                self.delete_pod(pod, now)

    def upsert_namespace(self, ns: NamespaceMeta) -> None:
        old = self.namespaces.get(ns.name)
        if old is not None and old.resource_version and \
                old.resource_version == ns.resource_version and old.deleted_at is None:
            return
        self.namespaces[ns.name] = ns

    def delete_namespace(self, ns: NamespaceMeta, now: float) -> None:
        self.namespaces[ns.name] = dataclasses.replace(ns, deleted_at=now)

    def replace_namespaces(self, namespaces: Iterable[NamespaceMeta], now: float) -> None:
        seen = set()
        for ns in namespaces:
            seen.add(ns.name)
            self.upsert_namespace(ns)
        for name, ns in list(self.namespaces.items()):
            if name not in seen and ns.deleted_at is None:
                self.delete_namespace(ns, now)

    # -- the record path -------------------------------------------------------------------

    def note_activity(self, now: float) -> None:
        """Records are flowing (called once per processed batch)."""
        self._last_activity = now

    def resolve(self, src: dict[str, Any], docker: dict[str, Any] | None,
                now: float) -> Resolved | None:
        """The enrichment for records whose file-name fields are ``src``/``docker``."""
        pods = self.pods
        pod: PodMeta | None = None
        pod_id = src.get("pod_id")
        if pod_id is not None:
            pod = pods.get(pod_id)
        cid = docker.get("container_id") if docker is not None else None
        if pod is None and cid is not None:
            uid = self._by_container.get(cid)
            if uid is not None:
                pod = pods.get(uid)
        if pod is None:
            uid = self._by_name.get((src.get("namespace_name"), src.get("pod_name")))
            if uid is not None and (pod_id is None or pod_id == uid):
                pod = pods.get(uid)
        if pod is None:
            return None
        if pod.deleted_at is not None:
            pod.last_seen = now
        container = src.get("container_name")
        ns = self.namespaces.get(pod.namespace) if self.options.namespace_metadata else None
        if len(src) > 3 and not _FILE_KEYS.issuperset(src):
            return self._render(pod, ns, container, cid, src)  # foreign keys: not shareable
        key = (container, cid)
        resolved: Resolved | None = pod.rendered.get(key)
        if resolved is None or resolved.namespace is not ns:
            if len(pod.rendered) >= _MAX_RENDERED_PER_POD:
                pod.rendered.clear()
            resolved = pod.rendered[key] = self._render(pod, ns, container, cid, src)
        return resolved

    def multiline_hint(self, namespace: str, pod_name: str, container: str) -> str | None:
        """The multiline preset the pod's annotations name for ``container`` (tail sources
        ask when they open a file; see ``protocols.MultilineHints``)."""
        uid = self._by_name.get((namespace, pod_name))
        pod = self.pods.get(uid) if uid is not None else None
        return pod.multiline_for(container) if pod is not None else None

    def _render(self, pod: PodMeta, ns: NamespaceMeta | None, container: Any, cid: Any,
                src: dict[str, Any]) -> Resolved:
        opts = self.options
        out: dict[str, Any] = {}
        if container is not None:
            out["container_name"] = container
        out["namespace_name"] = pod.namespace
        out["pod_name"] = pod.name
        meta = pod.containers.get(container) if isinstance(container, str) else None
        if meta is None:
            meta = ContainerMeta()
        if opts.container_metadata:
            if meta.image:
                out["container_image"] = meta.image
            if meta.image_id:
                out["container_image_id"] = meta.image_id
        out["pod_id"] = pod.uid
        if pod.pod_ip:
            out["pod_ip"] = pod.pod_ip
        if pod.host:
            out["host"] = pod.host
        if pod.labels:
            out["labels"] = pod.labels
        if pod.annotations:
            out["annotations"] = pod.annotations
        if opts.master_url:
            out["master_url"] = opts.master_url
        if ns is not None:
            if ns.uid:
                out["namespace_id"] = ns.uid
            if ns.labels:
                out["namespace_labels"] = ns.labels
            if ns.annotations:
                out["namespace_annotations"] = ns.annotations
        for key, value in src.items():
            out.setdefault(key, value)
        docker = None
        if cid is None and meta.container_id and opts.container_metadata:
            docker = {"container_id": meta.container_id}
        name = container if isinstance(container, str) else None
        return Resolved(out, docker, pod.is_excluded(name), pod.parser_for(name), ns)

    # -- expiry ------------------------------------------------------------------------------

    def sweep(self, now: float) -> int:
        """Evict deleted pods (and namespaces) nobody needs any more; return pods evicted."""
        evicted = 0
        horizon = self.retention
        for uid in list(self._deleted):
            pod = self.pods.get(uid)
            if pod is None or pod.deleted_at is None:
                self._deleted.pop(uid, None)
                continue
            last = max(pod.deleted_at, pod.last_seen)
            if now - last >= horizon and self._last_activity - last >= horizon:
                self._evict(pod)
                evicted += 1
        while len(self._deleted) > self.max_deleted:
            uid = next(iter(self._deleted))
            self._evict(self.pods[uid])
            evicted += 1
        in_use = {p.namespace for p in self.pods.values()}
        for name, ns in list(self.namespaces.items()):
            if ns.deleted_at is not None and now - ns.deleted_at >= horizon \
                    and name not in in_use:
                del self.namespaces[name]
        return evicted

    def counts(self) -> tuple[int, int]:
        """(live pods, deleted pods kept)."""
        return len(self.pods) - len(self._deleted), len(self._deleted)

    def _evict(self, pod: PodMeta) -> None:
        self._deleted.pop(pod.uid, None)
        if self.pods.get(pod.uid) is pod:
            del self.pods[pod.uid]
        self._unindex(pod)

    def _unindex(self, pod: PodMeta) -> None:
        for cid in pod.container_ids:
            if self._by_container.get(cid) == pod.uid:
                del self._by_container[cid]
        key = (pod.namespace, pod.name)
        if self._by_name.get(key) == pod.uid:
            del self._by_name[key]
