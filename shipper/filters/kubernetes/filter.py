"""``type: kubernetes_metadata``: Fluentd's kubernetes_metadata_filter fields on every record.

``process`` is synchronous and does no I/O: it reads the cache that the watcher threads keep
current. The lookup happens once per run of records sharing the same file-name fields (the
tail shares one ``kubernetes`` dict per file, so identity tells runs apart), and every record
of a container then gets the same ready-made ``kubernetes`` dict: enrichment costs one
assignment per record. The tail's dicts are replaced, never mutated.

A record whose pod is unknown (not listed yet, API down) ships immediately with the fields of
its file name and is counted as ``not_found``; records are never held back or dropped because
of the API. The one deliberate drop is the ``shipper.io/exclude`` annotation, counted in
``shipper_records_dropped_total{output="filter:<name>", reason="excluded"}``: the ``output``
label names the filter, since the drop happens before fan-out and applies to every output.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from shipper.filters import parsers
from shipper.filters.kubernetes.cache import MetadataCache, RenderOptions, Resolved
from shipper.filters.kubernetes.client import NAMESPACES, PODS, KubeApi, build_configuration
from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from shipper.filters.kubernetes.limiter import RequestBudget
from shipper.filters.kubernetes.objects import Extractor
from shipper.filters.kubernetes.watcher import Watcher, WatchSettings
from shipper.filters.merge import Merger
from shipper.metrics import Metrics
from shipper.record import Record

log = logging.getLogger(__name__)

#: How long ``close`` waits for the watch threads (daemons) to end.
CLOSE_JOIN_SECS = 0.5
NODE_NAME_ENV = ("NODE_NAME", "K8S_NODE_NAME")
ENRICHED = "enriched"
NOT_FOUND = "not_found"
EXCLUDED = "excluded"
UNKNOWN_PARSER = "unknown_parser"
PARSER_ERROR = "parser_error"
_NO_SOURCE: Any = object()


class KubernetesMetadataFilter:
    """The filter; ``start``/``close`` run the background list+watch."""

    def __init__(self, name: str, config: KubernetesMetadataConfig, metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._metrics = metrics
        self.extractor = Extractor(config)
        self.cache = MetadataCache(
            RenderOptions(container_metadata=not config.skip_container_metadata,
                          namespace_metadata=not config.skip_namespace_metadata),
            config.deleted_pod_retention_secs, config.max_deleted_pods)
        self._merger = Merger(config.parsed_log)
        self._results = metrics.filter_records
        self._dropped = metrics.records_dropped.labels(f"filter:{name}", EXCLUDED)
        self._unknown_parsers: set[str] = set()
        self._stop = threading.Event()
        self._watchers: list[Watcher] = []
        self._threads: list[threading.Thread] = []
        self._synced: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # -- the record path ---------------------------------------------------------------------

    def process(self, records: list[Record]) -> list[Record]:
        cache = self.cache
        now = self._clock()
        cache.note_activity(now)
        kept: list[Record] | None = None
        last_src: Any = _NO_SOURCE
        resolved: Resolved | None = None
        parse: parsers.Parser | None = None
        unknown = False
        enriched = not_found = excluded = parse_errors = unparsed = 0
        last_docker: Any = None
        for i, record in enumerate(records):
            body = record.body
            src = body.get("kubernetes")
            if src is not last_src:
                docker = body.get("docker")
                if type(docker) is not dict:
                    docker = None
                # Forwarded records carry a map of their own per record: equal maps resolve
                # alike, and comparing a few keys costs a tenth of resolving them.
                if type(src) is dict and src == last_src and docker == last_docker:
                    last_src = src
                else:
                    last_src, last_docker = src, docker
                    resolved = None
                    if type(src) is dict:
                        resolved = cache.resolve(src, docker, now)
                    parse = self._parser(resolved.parser) if resolved is not None and \
                        resolved.parser else None
                    unknown = parse is None and resolved is not None and bool(resolved.parser)
            if resolved is None:
                if type(src) is dict:
                    not_found += 1
                if kept is not None:
                    kept.append(record)
                continue
            if resolved.excluded:
                excluded += 1
                if kept is None:
                    kept = records[:i]
                continue
            body["kubernetes"] = resolved.kubernetes
            if resolved.docker is not None:
                body["docker"] = resolved.docker
            enriched += 1
            if parse is not None:
                parse_errors += self._parse(body, parse)
            elif unknown:
                unparsed += 1
            if kept is not None:
                kept.append(record)
        self._publish(enriched, not_found, excluded, parse_errors, unparsed)
        return records if kept is None else kept

    def multiline_hint(self, namespace: str, pod: str, container: str) -> str | None:
        """``protocols.MultilineHints``: the pod's ``shipper.io/multiline`` choice."""
        return self.cache.multiline_hint(namespace, pod, container)

    def _parse(self, body: dict[str, Any], parse: parsers.Parser) -> int:
        """Apply the pod's parser to its log field; 1 if the parser failed."""
        text = body.get(self._merger.key_name)
        if type(text) is not str:
            return 0
        try:
            parsed = parse(text)
        except Exception:  # a parser bug must not stop the pipeline; the line ships as is
            return 1
        if parsed is not None:
            self._merger.merge(body, parsed)
        return 0

    def _parser(self, name: str) -> parsers.Parser | None:
        parser = parsers.get(name)
        if parser is None:
            if name not in self._unknown_parsers and len(self._unknown_parsers) < 100:
                self._unknown_parsers.add(name)
                log.warning("a pod asks for an unknown parser; its lines ship unparsed",
                            extra={"event": "kubernetes_unknown_parser", "filter": self.name,
                                   "parser": name[:100], "available": parsers.available()})
        return parser

    def _publish(self, enriched: int, not_found: int, excluded: int, errors: int,
                 unparsed: int) -> None:
        results = self._results
        for result, n in ((ENRICHED, enriched), (NOT_FOUND, not_found), (EXCLUDED, excluded),
                          (PARSER_ERROR, errors), (UNKNOWN_PARSER, unparsed),
                          *self._merger.take_counts().items()):
            if n:
                results.labels(self.name, result).inc(n)
        if excluded:
            self._dropped.inc(excluded)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (credentials are checked here), start list+watch, wait for the first list."""
        config = self.config
        self._loop = asyncio.get_running_loop()
        configuration = await asyncio.to_thread(build_configuration, config)
        if not config.skip_master_url:
            self.cache.options = dataclasses.replace(self.cache.options,
                                                     master_url=str(configuration.host))
        node = config.node_name or next((os.environ[k] for k in NODE_NAME_ENV
                                         if os.environ.get(k)), None)
        if node is None:
            log.warning("no node name (set NODE_NAME from spec.nodeName): watching every pod "
                        "of the cluster", extra={"event": "kubernetes_no_node_name",
                                                 "filter": self.name})
        budget = RequestBudget(config.max_requests_per_sec)
        sink = _LoopSink(self._loop, self)
        resources = [PODS] if config.skip_namespace_metadata else [PODS, NAMESPACES]
        for resource in resources:
            settings = WatchSettings(
                field_selector=f"spec.nodeName={node}" if resource == PODS and node else None,
                request_timeout=config.request_timeout_secs,
                watch_timeout=config.watch_timeout_secs,
                retry_initial=config.retry_initial_secs, retry_max=config.retry_max_secs)
            extract = self.extractor.pod if resource == PODS else self.extractor.namespace
            watcher = Watcher(self.name, resource,
                              lambda: KubeApi(configuration, config.max_response_bytes),
                              extract, sink, budget, settings, self._metrics, self._stop)
            self._synced[resource] = asyncio.Event()
            self._watchers.append(watcher)
            thread = threading.Thread(target=watcher.run, name=f"k8s-{resource}-{self.name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name=f"k8s-sweep-{self.name}")
        log.info("watching the Kubernetes API", extra={
            "event": "kubernetes_metadata_started", "filter": self.name,
            "api": str(configuration.host), "node": node})
        if config.initial_sync_timeout_secs > 0:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(e.wait() for e in self._synced.values())),
                    config.initial_sync_timeout_secs)
            except TimeoutError:
                log.warning("the first pod list is late; starting anyway, records ship with "
                            "the fields of their file name until it arrives",
                            extra={"event": "kubernetes_metadata_not_synced",
                                   "filter": self.name})

    async def close(self) -> None:
        self._stop.set()
        for watcher in self._watchers:
            watcher.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        # abort() ends a watch that is reading at once; a request the API server never
        # answered cannot be unblocked. The threads are daemons: waiting longer would only
        # hold the process past its shutdown deadline.
        deadline = time.monotonic() + CLOSE_JOIN_SECS
        for thread in self._threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))

    @property
    def synced(self) -> bool:
        """True once every watched resource has been listed at least once."""
        return bool(self._synced) and all(e.is_set() for e in self._synced.values())

    async def _sweep_forever(self) -> None:
        interval = max(0.05, min(5.0, self.config.deleted_pod_retention_secs / 4))
        while True:
            await asyncio.sleep(interval)
            self.cache.sweep(self._clock())
            self._publish_gauges()

    def _publish_gauges(self) -> None:
        live, deleted = self.cache.counts()
        gauge = self._metrics.kubernetes_cached_pods
        gauge.labels(self.name, "live").set(live)
        gauge.labels(self.name, "deleted").set(deleted)

    # -- updates from the watcher threads (run on the loop) ------------------------------------

    def apply_snapshot(self, resource: str, items: list[Any]) -> None:
        now = self._clock()
        if resource == PODS:
            self.cache.replace_pods(items, now)
        else:
            self.cache.replace_namespaces(items, now)
        event = self._synced.get(resource)
        if event is not None:
            event.set()
        self._publish_gauges()

    def apply_event(self, resource: str, kind: str, item: Any) -> None:
        now = self._clock()
        if resource == PODS:
            if kind == "DELETED":
                self.cache.delete_pod(item, now)
            else:
                self.cache.upsert_pod(item)
        elif kind == "DELETED":
            self.cache.delete_namespace(item, now)
        else:
            self.cache.upsert_namespace(item)

    def apply_status(self, resource: str, up: bool) -> None:
        self._metrics.kubernetes_watch_up.labels(self.name, resource).set(1 if up else 0)


class _LoopSink:
    """Hands what a watcher thread extracted to the filter, on the event loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: KubernetesMetadataFilter) -> None:
        self._loop = loop
        self._owner = owner

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are shutting down
            self._loop.call_soon_threadsafe(fn, *args)

    def snapshot(self, resource: str, items: list[Any]) -> None:
        self._call(self._owner.apply_snapshot, resource, items)

    def event(self, resource: str, kind: str, item: Any) -> None:
        self._call(self._owner.apply_event, resource, kind, item)

    def status(self, resource: str, up: bool) -> None:
        self._call(self._owner.apply_status, resource, up)
