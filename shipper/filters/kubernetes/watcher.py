"""List, then watch, one resource (pods of this node, or namespaces) in a background thread.

The loop is the reflector pattern of client-go, kept small (spec §3.3, §3.4):

1. LIST (``resourceVersion=0``: served from the API server's cache) and hand the whole set to
   the sink, which replaces its view (objects missing from the list count as deleted).
2. WATCH from the list's resourceVersion, with bookmarks, and hand over every
   ADDED / MODIFIED / DELETED event. The server ends a watch after ``watch_timeout``; the next
   one resumes from the last resourceVersion seen, with no new list.
3. A broken watch (connection lost, 5xx) is resumed from the last resourceVersion after a
   backoff; ``410 Gone`` (the version was compacted away) means re-list, with a consistent read
   (``resourceVersion=""``) like client-go.

Failures back off exponentially with full jitter (``shipper.retry.Backoff``) and every request
first takes a token from the filter's shared ``RequestBudget``, so neither an outage nor a
server that closes watches at once can turn into a request storm. Objects are reduced to what
the filter keeps (``extract``) here, in the thread, before they reach the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shipper.errors import KubernetesApiError
from shipper.filters.kubernetes.client import KubeApi
from shipper.filters.kubernetes.limiter import RequestBudget
from shipper.metrics import Metrics
from shipper.retry import Backoff

log = logging.getLogger(__name__)

EVENT_TYPES = frozenset(("ADDED", "MODIFIED", "DELETED"))
#: A watch that ends this soon with no event counts as a failure (a server closing at once).
MIN_USEFUL_WATCH_SECS = 1.0


class Sink(Protocol):
    """Receives extracted objects; implementations hand them to the event loop."""

    def snapshot(self, resource: str, items: list[Any]) -> None: ...

    def event(self, resource: str, kind: str, item: Any) -> None: ...

    def status(self, resource: str, up: bool) -> None: ...


class _Gone(Exception):
    """The resourceVersion we hold is too old: re-list."""


@dataclass(frozen=True)
class WatchSettings:
    field_selector: str | None
    request_timeout: float
    watch_timeout: float
    retry_initial: float
    retry_max: float


class Watcher:
    """One resource's list+watch loop; ``run`` is the thread's body."""

    def __init__(self, filter_name: str, resource: str, make_api: Callable[[], KubeApi],
                 extract: Callable[[dict[str, Any]], Any], sink: Sink, budget: RequestBudget,
                 settings: WatchSettings, metrics: Metrics, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.filter_name = filter_name
        self.resource = resource
        self._make_api = make_api
        self._extract = extract
        self._sink = sink
        self._budget = budget
        self._settings = settings
        self._stop = stop
        self._clock = clock
        self._backoff = Backoff(settings.retry_initial, settings.retry_max)
        self._requests = metrics.kubernetes_api_requests
        self._restarts = metrics.kubernetes_watch_restarts
        self._api: KubeApi | None = None
        self.resource_version: str | None = None
        self._consistent_relist = False
        self._failures = 0
        self._down = False
        self._reported = False

    def abort(self) -> None:
        """Unblock a request in progress (after ``stop`` was set)."""
        api = self._api
        if api is not None:
            api.abort()

    def run(self) -> None:
        try:
            self._api = self._make_api()
            while not self._stop.is_set():
                self._cycle()
        finally:
            if self._api is not None:
                self._api.close()

    def _cycle(self) -> None:
        """One list (if needed) and one watch; failures are absorbed here."""
        try:
            if self.resource_version is None:
                self._list()
            self._watch()
        except _Gone:
            self._count("gone")
            self._restart("expired")
            log.info("resourceVersion expired; listing again",
                     extra={"event": "kubernetes_watch_expired", "filter": self.filter_name,
                            "resource": self.resource})
            self.resource_version = None
            self._consistent_relist = True
        except KubernetesApiError as exc:
            if self._stop.is_set():
                return
            if exc.status == 410:
                self._count("gone")
                self._restart("expired")
                self.resource_version = None
                self._consistent_relist = True
                return
            self._count("error")
            self._restart("error")
            self._fail(str(exc))
        except Exception as exc:  # a bug must not end the watch for good: log, back off, retry
            if self._stop.is_set():
                return
            log.exception("unexpected error in the Kubernetes watcher", extra={
                "event": "kubernetes_watcher_error", "filter": self.filter_name,
                "resource": self.resource})
            self._count("error")
            self._restart("error")
            self.resource_version = None
            self._fail(f"{type(exc).__name__}: {exc}")

    def _list(self) -> None:
        if not self._budget.acquire(self._stop):
            return
        api = self._require_api()
        rv = "" if self._consistent_relist else "0"
        items, version = api.list(self.resource, field_selector=self._settings.field_selector,
                                  resource_version=rv, timeout=self._settings.request_timeout)
        extracted = [x for x in (self._extract(i) for i in items if isinstance(i, dict))
                     if x is not None]
        self._count("ok")
        self._sink.snapshot(self.resource, extracted)
        self.resource_version = version
        self._consistent_relist = False
        self._failures = 0
        self._up()

    def _watch(self) -> None:
        if self.resource_version is None or not self._budget.acquire(self._stop):
            return
        api = self._require_api()
        s = self._settings
        started = self._clock()
        events = 0
        stream = api.watch(self.resource, field_selector=s.field_selector,
                           resource_version=self.resource_version,
                           timeout_secs=s.watch_timeout, connect_timeout=s.request_timeout,
                           read_timeout=s.watch_timeout + s.request_timeout)
        self._up()
        for event in stream:
            if self._stop.is_set():
                return
            kind = event.get("type")
            obj = event.get("object")
            if not isinstance(obj, dict):
                continue
            if kind == "ERROR":
                code = obj.get("code")
                if code == 410:
                    raise _Gone()
                raise KubernetesApiError(f"{self.resource}: watch error {code} "
                                         f"{obj.get('message')}",
                                         code if isinstance(code, int) else None)
            meta = obj.get("metadata")
            version = meta.get("resourceVersion") if isinstance(meta, dict) else None
            if kind in EVENT_TYPES:
                item = self._extract(obj)
                if item is not None:
                    self._sink.event(self.resource, kind, item)
                events += 1
                self._failures = 0
            if isinstance(version, str) and version:
                self.resource_version = version
        self._count("ok")
        if events == 0 and self._clock() - started < MIN_USEFUL_WATCH_SECS:
            self._fail(f"{self.resource}: watch ended at once without events")
        else:
            self._failures = 0

    def _require_api(self) -> KubeApi:
        if self._api is None:
            raise KubernetesApiError(f"{self.resource}: no API client")
        return self._api

    def _restart(self, reason: str) -> None:
        self._restarts.labels(self.filter_name, self.resource, reason).inc()

    def _count(self, outcome: str) -> None:
        self._requests.labels(self.filter_name, self.resource, outcome).inc()

    def _fail(self, message: str) -> None:
        self._failures += 1
        if not self._down:
            self._down = True
            log.warning("Kubernetes API request failed; records ship with the fields of their "
                        "file name until it answers", extra={
                            "event": "kubernetes_api_error", "filter": self.filter_name,
                            "resource": self.resource, "error": message[:500]})
            self._sink.status(self.resource, False)
        self._stop.wait(self._backoff.delay(self._failures))

    def _up(self) -> None:
        """The API answered: report it (once per outage)."""
        if self._down or not self._reported:
            if self._down:
                log.info("Kubernetes API answers again", extra={
                    "event": "kubernetes_api_recovered", "filter": self.filter_name,
                    "resource": self.resource})
            self._down = False
            self._reported = True
            self._sink.status(self.resource, True)
