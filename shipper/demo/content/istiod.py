"""istiod (`discovery` container) output in Istio's zap console format.

Layout: `<time>\\t<level>\\t[<scope>\\t]<message>[\\t<key=value ...>]` with 6 fractional
digits, lowercase levels (`warn`, not `warning`) and the scope column omitted for the default
scope. Messages are the ones a busy control plane prints all day: xDS pushes per proxy,
debounced config pushes, injection requests, client-side throttling reported through `klog`.
"""

from __future__ import annotations

import random
from typing import Final

from shipper.demo.content.base import Line, LineSource, WeightedTable, iso_us
from shipper.demo.topology import Cluster, Container, Pod

_XDS_TYPES: Final = ("CDS", "EDS", "LDS", "RDS")
_CONFIG_KINDS: Final = ("ServiceEntry", "VirtualService", "DestinationRule", "Sidecar")


class IstiodSource(LineSource):
    """Lines of the istiod `discovery` container, referencing this node's real proxies."""

    def __init__(self, rng: random.Random, cluster: Cluster, pod: Pod, container: Container):
        super().__init__(rng, cluster, pod, container)
        proxies = [
            f"{p.name}.{p.namespace}"
            for p in cluster.pods
            if any(c.name == "istio-proxy" for c in p.containers)
        ]
        self.proxies = proxies or [f"productpage-v1-6b746f74dc-9stvs.bookinfo-{pod.ip}"]
        self.services = sorted(
            f"{s.namespace}/{s.fqdn}" for s in cluster.services.values() if s.pods
        ) or ["bookinfo/reviews.bookinfo.svc.cluster.local"]
        self.namespaces = sorted({p.namespace for p in cluster.pods})
        self.version = 0
        self.kinds = WeightedTable(
            [
                (self._push, 50.0),
                (self._debounce, 8.0),
                (self._xds_push, 6.0),
                (self._connection, 10.0),
                (self._injection, 4.0),
                (self._klog, 3.0),
                (self._endpoints, 8.0),
                (self._warn, 2.0),
                (self._error, 1.0),
            ]
        )

    def event(self, t_ns: int) -> Line:
        return "stdout", self.kinds.pick(self.rng)(iso_us(t_ns))

    def _proxy(self) -> str:
        return self.rng.choice(self.proxies)

    def _push(self, ts: str) -> str:
        r = self.rng
        kind = r.choice(_XDS_TYPES)
        res = r.randint(1, 60)
        size = f"{r.randint(1, 120)}.{r.randrange(10)}kB"
        if kind == "EDS":
            tail = f" empty:0 cached:{r.randint(0, res)}/{res}"
        elif kind == "CDS":
            tail = f" cached:{r.randint(0, res)}/{res}"
        else:
            tail = ""
        return (
            f"{ts}\tinfo\tads\t{kind}: PUSH request for node:{self._proxy()} "
            f"resources:{res} size:{size}{tail}"
        )

    def _debounce(self, ts: str) -> str:
        r = self.rng
        kind = r.choice(_CONFIG_KINDS)
        since_change = f"{r.randint(100, 999)}.{r.randrange(10**4):04d}ms"
        since_push = f"{r.randint(100, 999)}.{r.randrange(10**4):04d}ms"
        return (
            f"{ts}\tinfo\tads\tPush debounce stable[{r.randint(10, 9999)}] {r.randint(1, 12)} "
            f"for config {kind}/{r.choice(self.services)}: {since_change} since last change, "
            f"{since_push} since last push, full={r.choice(('true', 'false'))}"
        )

    def _xds_push(self, ts: str) -> str:
        r = self.rng
        self.version += 1
        return (
            f"{ts}\tinfo\tads\tXDS: Pushing Services:{len(self.services) + r.randint(8, 14)} "
            f"ConnectedEndpoints:{len(self.proxies)} Version:{ts[:19]}Z/{self.version}"
        )

    def _connection(self, ts: str) -> str:
        r = self.rng
        proxy = self._proxy()
        conn = r.randint(1, 400)
        if r.random() < 0.5:
            return f"{ts}\tinfo\tads\tADS: new connection for node:{proxy}-{conn}"
        peer = f"10.244.{r.randrange(1, 250)}.{r.randrange(2, 255)}:{r.randrange(32768, 61000)}"
        return f'{ts}\tinfo\tads\tADS: "{peer}" {proxy}-{conn} terminated'

    def _injection(self, ts: str) -> str:
        r = self.rng
        ns = r.choice(self.namespaces)
        return (
            f"{ts}\tinfo\tSidecar injection request for {ns}/"
            f"{r.choice(('orders', 'catalog', 'reviews-v2', 'ratings-v1'))}-"
            f"{r.choice(('5d8f7c9b4', '7c9d8b6f5', '84bfdb5dc4'))}-*****"
            " (actual name not yet known)"
        )

    def _klog(self, ts: str) -> str:
        r = self.rng
        ns = r.choice(self.namespaces)
        waited = f"{r.randint(1, 3)}.{r.randrange(10**9):09d}s"
        return (
            f"{ts}\tinfo\tklog\tWaited for {waited} due to client-side throttling, not priority "
            f"and fairness, request: GET:https://10.96.0.1:443/api/v1/namespaces/{ns}/configmaps/"
            "istio-ca-root-cert"
        )

    def _endpoints(self, ts: str) -> str:
        r = self.rng
        svc = r.choice(self.services)
        return (
            f"{ts}\tinfo\tads\tFull push, new service {svc}\tversion={r.randint(1000, 99999)}"
            if r.random() < 0.2
            else f"{ts}\tinfo\tdelta\tEDS: PUSH INC for node:{self._proxy()} "
            f"resources:{r.randint(1, 8)} removed:0 size:{r.randint(1, 9)}.{r.randrange(10)}kB"
        )

    def _warn(self, ts: str) -> str:
        r = self.rng
        return (
            f"{ts}\twarn\tads\tADS:LDS: ACK ERROR {self._proxy()}-{r.randint(1, 400)} "
            "Internal:Error adding/updating listener(s) virtualInbound: duplicate filter chain "
            "match with the same filter chain name"
        )

    def _error(self, ts: str) -> str:
        return (
            f"{ts}\terror\tcontrollers\terror handling istio-validator-istio-system, retrying "
            f"(retry count: {self.rng.randint(1, 6)}): webhook is not ready, retry"
            "\tcontroller=validation"
        )

    def long_line(self, t_ns: int, blob: str) -> Line:
        # istiod dumps rejected configs verbatim in validation warnings.
        return "stdout", (
            f"{iso_us(t_ns)}\twarn\tvalidationServer\tconfig rejected: "
            f'{{"kind":"EnvoyFilter","metadata":{{"name":"lua-headers","namespace":"shop"}},'
            f'"spec":{{"configPatches":[{{"patch":{{"value":{{"inline_code":"{blob}"}}}}}}]}}}}'
        )

    def non_ascii_line(self, t_ns: int) -> Line:
        return "stdout", (
            f"{iso_us(t_ns)}\twarn\tmodel\tServiceEntry shop/zahlung-extern: host "
            '"zahlungsdienst.bücherei.example" is not a valid DNS name (Ünicode ✗)'
        )
