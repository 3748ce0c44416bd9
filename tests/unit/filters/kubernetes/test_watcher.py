"""The list+watch loop against a scripted API: resume, re-list on 410, back off, budget.

No sockets and no real sleeps: the stop event's ``wait`` advances a fake clock instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from shipper.errors import KubernetesApiError
from shipper.filters.kubernetes.limiter import RequestBudget
from shipper.filters.kubernetes.watcher import Watcher, WatchSettings
from shipper.metrics import Metrics


class FakeTime(threading.Event):
    """A stop event whose waits advance a fake clock (and are recorded) instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        self.now += timeout or 0.0
        return self.is_set()


def pod(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}}


class ScriptedApi:
    """Plays back a script of list and watch outcomes, then stops the watcher."""

    def __init__(self, stop: FakeTime, script: list[Any]) -> None:
        self.stop = stop
        self.script = list(script)
        self.calls: list[tuple[str, str]] = []

    def _next(self, call: str, version: str) -> Any:
        self.calls.append((call, version))
        if not self.script:
            self.stop.set()
            raise KubernetesApiError("script over")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def list(self, resource: str, *, field_selector: str | None, resource_version: str,
             timeout: float) -> tuple[list[Any], str]:
        items, version = self._next("list", resource_version)
        return items, version

    def watch(self, resource: str, *, field_selector: str | None, resource_version: str,
              timeout_secs: float, connect_timeout: float, read_timeout: float,
              ) -> Iterator[dict[str, Any]]:
        events, duration = self._next("watch", resource_version)

        def stream() -> Iterator[dict[str, Any]]:
            for event in events:
                if isinstance(event, Exception):
                    raise event
                yield event
            self.stop.now += duration

        return stream()

    def abort(self) -> None:
        return

    def close(self) -> None:
        return


class Sink:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def snapshot(self, resource: str, items: list[Any]) -> None:
        self.log.append(("snapshot", [i["metadata"]["name"] for i in items]))

    def event(self, resource: str, kind: str, item: Any) -> None:
        self.log.append((kind, item["metadata"]["name"]))

    def status(self, resource: str, up: bool) -> None:
        self.log.append(("up" if up else "down",))


def run(script: list[Any], rate: float = 100.0) -> tuple[ScriptedApi, Sink, FakeTime, Metrics]:
    stop = FakeTime()
    api = ScriptedApi(stop, script)
    sink = Sink()
    metrics = Metrics()
    settings = WatchSettings("spec.nodeName=n", request_timeout=5, watch_timeout=300,
                             retry_initial=1, retry_max=30)
    budget = RequestBudget(rate, clock=stop.clock)
    watcher = Watcher("k8s", "pods", lambda: api, lambda o: o, sink,  # type: ignore[arg-type,return-value]
                      budget, settings, metrics, stop, clock=stop.clock)
    watcher.run()
    return api, sink, stop, metrics


def requests(metrics: Metrics, outcome: str) -> float:
    return metrics.registry.get_sample_value(
        "shipper_kubernetes_api_requests_total",
        {"filter": "k8s", "resource": "pods", "outcome": outcome}) or 0.0


def test_list_then_watch_then_resume_from_the_last_version_without_relisting() -> None:
    api, sink, _, _ = run([
        ([pod("a", "10")], "10"),
        ([{"type": "ADDED", "object": pod("b", "11")},
          {"type": "MODIFIED", "object": pod("a", "12")},
          KubernetesApiError("connection reset")], 0),
        ([{"type": "DELETED", "object": pod("b", "13")},
          {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}}], 300),
    ])
    assert api.calls[:4] == [("list", "0"), ("watch", "10"), ("watch", "12"), ("watch", "20")]
    assert sink.log[:4] == [("snapshot", ["a"]), ("up",), ("ADDED", "b"), ("MODIFIED", "a")]
    assert ("DELETED", "b") in sink.log
    assert ("down",) in sink.log


def test_a_410_in_the_watch_stream_means_a_consistent_relist() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    api, _, _, metrics = run([([], "10"), ([gone], 0), ([pod("a", "30")], "30"), ([], 300)])
    assert api.calls[:4] == [("list", "0"), ("watch", "10"), ("list", ""), ("watch", "30")]
    assert requests(metrics, "gone") == 1


def test_an_http_410_on_the_watch_request_also_relists() -> None:
    api, _, _, _ = run([([], "10"), KubernetesApiError("gone", 410), ([], "40"), ([], 300)])
    assert api.calls[:4] == [("list", "0"), ("watch", "10"), ("list", ""), ("watch", "40")]


def test_failures_back_off_exponentially_up_to_the_cap_and_report_down_once() -> None:
    outage = [KubernetesApiError("HTTP 500", 500)] * 12
    api, sink, stop, metrics = run([*outage, ([pod("a", "5")], "5"), ([], 300)])
    backoffs = [w for w in stop.waits if w > 0]
    assert len(backoffs) >= 10
    assert max(backoffs) <= 30
    assert sum(backoffs) > 10  # it really waited between attempts
    assert sink.log.count(("down",)) == 1
    assert sink.log.index(("down",)) < sink.log.index(("snapshot", ["a"])) \
        < len(sink.log) - 1 - sink.log[::-1].index(("up",))
    assert requests(metrics, "error") == 12
    assert api.calls[12] == ("list", "0")


def test_a_watch_that_ends_at_once_without_events_counts_as_a_failure() -> None:
    _, _, stop, _ = run([([], "1"), ([], 0), ([], 0), ([], 0)])
    assert len([w for w in stop.waits if w > 0]) >= 3


def test_the_budget_bounds_requests_even_without_failures() -> None:
    # a server that ends every watch after 2 s with nothing to say: never a failure,
    # but still at most `rate` requests per second after the burst
    api, _, stop, _ = run([([], "1"), *[([], 2.0)] * 40], rate=0.25)
    assert len(api.calls) == 42
    assert stop.now >= (len(api.calls) - 4) / 0.25 * 0.9


def test_the_request_budget_refills_at_its_rate() -> None:
    now = [0.0]
    budget = RequestBudget(2.0, burst=3, clock=lambda: now[0])
    assert [budget.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert budget.reserve() == 0.5
    assert budget.reserve() == 1.0
    now[0] = 10.0
    assert budget.reserve() == 0.0  # refilled (to the burst, not beyond)


def test_an_unexpected_error_backs_off_and_relists_instead_of_ending_the_thread() -> None:
    api, _, stop, metrics = run([RuntimeError("bug"), ([pod("a", "3")], "3"), ([], 300)])
    assert api.calls[:3] == [("list", "0"), ("list", "0"), ("watch", "3")]
    assert requests(metrics, "error") >= 1
    assert any(w > 0 for w in stop.waits)
