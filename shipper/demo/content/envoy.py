"""`istio-proxy` output: Istio default TEXT access logs plus pilot-agent and Envoy app logs.

Access lines follow Istio's `EnvoyTextLogFormat` (1.23+) field for field. Each flow (inbound
from a caller, outbound to a dependency, gateway to a backend, raw TCP) carries the addresses
that real sidecars print: `127.0.0.6` as inbound upstream local address, the pod IP as inbound
downstream local address, the Service ClusterIP as outbound downstream local address, and the
client's mTLS SNI on inbound. Response codes include 4xx/5xx with the matching flags/details.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shipper.demo.content.base import (
    Line,
    LineSource,
    WeightedTable,
    iso_ms,
    iso_us,
    uuid4_text,
)
from shipper.demo.topology import GATEWAY, Cluster, Container, Pod, Service

# (method, path, response code, request body bytes, response body bytes)
Request = tuple[str, str, int, int, int]
RequestGen = Callable[[random.Random], Request]


def _productpage(r: random.Random) -> Request:
    x = r.random()
    if x < 0.62:
        return "GET", "/productpage", 200, 0, r.randint(4290, 5310)
    if x < 0.74:
        return "GET", "/static/bootstrap/css/bootstrap.min.css", 200, 0, 121200
    if x < 0.82:
        return "GET", f"/api/v1/products/{r.randrange(10)}/reviews", 200, 0, r.randint(350, 420)
    if x < 0.88:
        return "GET", "/api/v1/products", 200, 0, 395
    if x < 0.94:
        return "POST", "/login", 302, r.randint(25, 40), 203
    if x < 0.97:
        return "GET", "/logout", 302, 0, 203
    return "GET", f"/productpage?u={r.choice(('normal', 'test', 'jason'))}", 200, 0, 5120


def _details(r: random.Random) -> Request:
    return "GET", f"/details/{r.randrange(10)}", 200, 0, 178


def _reviews(r: random.Random) -> Request:
    return "GET", f"/reviews/{r.randrange(10)}", 200, 0, r.choice((295, 358, 379))


def _ratings(r: random.Random) -> Request:
    if r.random() < 0.97:
        return "GET", f"/ratings/{r.randrange(10)}", 200, 0, 48
    return "POST", f"/ratings/{r.randrange(10)}", 200, r.randint(30, 60), 41


def _orders(r: random.Random) -> Request:
    x = r.random()
    if x < 0.45:
        return "POST", "/api/v1/orders", 201, r.randint(300, 900), r.randint(180, 400)
    if x < 0.8:
        return "GET", f"/api/v1/orders/ord-{r.randrange(10**7):07d}", 200, 0, r.randint(400, 1200)
    return (
        "GET",
        f"/api/v1/orders?customer=c-{r.randrange(10**5):05d}&status=open&page={r.randint(1, 5)}",
        200,
        0,
        r.randint(1000, 6000),
    )


def _catalog(r: random.Random) -> Request:
    x = r.random()
    if x < 0.5:
        limit = r.choice((20, 50))
        offset = limit * r.randrange(10)
        return "GET", f"/api/v1/items?limit={limit}&offset={offset}", 200, 0, r.randint(1800, 9000)
    if x < 0.85:
        return "GET", f"/api/v1/items/sku-{r.randrange(10**5):05d}", 200, 0, r.randint(300, 900)
    if x < 0.93:
        return "GET", "/api/v1/categories", 200, 0, 2210
    return "PUT", f"/api/v1/items/sku-{r.randrange(10**5):05d}/stock", 204, r.randint(60, 120), 0


_REQUESTS: Final[dict[str, RequestGen]] = {
    "productpage": _productpage,
    "details": _details,
    "reviews": _reviews,
    "ratings": _ratings,
    "orders": _orders,
    "catalog": _catalog,
}

#: What each app's HTTP client puts in User-Agent (seen by both ends of a call).
_CLIENT_UA: Final[dict[str, str]] = {
    "productpage": "python-requests/2.31.0",
    "reviews": "Apache-CXF/3.1.18",
    "orders": "ReactorNetty/1.1.13",
}
#: Internet clients of the gateway: browsers, the shop's mobile apps, scripts.
_PUBLIC_UA: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "ShopApp/5.2.1 (iPhone; iOS 18.1; Scale/3.00)",
    "okhttp/4.12.0",
    "okhttp/4.12.0",
    "Dart/3.5 (dart:io)",
    "curl/8.5.0",
    "python-requests/2.32.3",
)
_EXTERNAL_HOST: Final[dict[str, str]] = {
    "productpage": "bookinfo.example.com",
    "orders": "shop.example.com",
    "catalog": "shop.example.com",
}

# (code or None for the request's own code, flags, details, transport failure reason,
#  upstream host reached?, fixed response bytes or None, timeout?)
Outcome = tuple[int | None, str, str, str, bool, int | None, bool]
_OK: Final[Outcome] = (None, "-", "via_upstream", "-", True, None, False)
_COMMON: Final[list[tuple[Outcome, float]]] = [
    (_OK, 955.0),
    ((404, "-", "via_upstream", "-", True, 19, False), 12.0),
    ((500, "-", "via_upstream", "-", True, 21, False), 8.0),
    (
        (
            503,
            "UF",
            "upstream_reset_before_response_started{connection_failure}",
            "delayed connect error: 111",
            True,
            91,
            False,
        ),
        4.0,
    ),
    (
        (
            503,
            "UF,URX",
            "upstream_reset_before_response_started{connection_failure}",
            "delayed connect error: 111",
            True,
            91,
            False,
        ),
        2.0,
    ),
    (
        (
            503,
            "UC",
            "upstream_reset_before_response_started{connection_termination}",
            "-",
            True,
            95,
            False,
        ),
        4.0,
    ),
    ((504, "UT", "upstream_response_timeout", "-", True, 24, True), 3.0),
    ((0, "DC", "downstream_remote_disconnect", "-", True, 0, False), 3.0),
]
_OUTBOUND_OUTCOMES: Final = WeightedTable(
    [
        *_COMMON,
        ((503, "UH", "no_healthy_upstream", "-", False, 19, False), 2.0),
        ((429, "RL", "local_rate_limited", "-", False, 18, False), 2.0),
    ]
)
_INBOUND_OUTCOMES: Final = WeightedTable(
    [
        *_COMMON,
        ((403, "-", "rbac_access_denied_matched_policy[none]", "-", False, 19, False), 1.0),
    ]
)
_SCANNER_PATHS: Final = ("/wp-login.php", "/.env", "/admin/config.php", "/actuator/health", "/")


@dataclass(frozen=True, slots=True)
class _Flow:
    """One kind of connection seen by this proxy, with everything fixed except per-request."""

    direction: str  # inbound | outbound | gateway | tcp
    requests: RequestGen | None
    authority: str
    cluster: str
    upstream_hosts: tuple[str, ...]
    downstream_local: str
    remote_ips: tuple[str, ...]
    local_upstream_ip: str
    sni: str
    user_agents: tuple[str, ...]
    xff: bool


def _authority(svc: Service) -> str:
    # Bookinfo calls services by short name; the shop apps use FQDNs.
    if svc.namespace == "bookinfo":
        return f"{svc.name}:{svc.port}"
    return f"{svc.fqdn}:{svc.port}"


def _remote_ips(rng: random.Random, pods: list[Pod]) -> tuple[str, ...]:
    if pods:
        return tuple(p.ip for p in pods)
    return tuple(f"10.244.{rng.randrange(1, 250)}.{rng.randrange(2, 255)}" for _ in range(2))


def build_flows(rng: random.Random, cluster: Cluster, pod: Pod, gateway: bool) -> list[_Flow]:
    """The flows a sidecar (or gateway) in `pod` logs, derived from the mesh call graph."""
    flows: list[_Flow] = []
    dep = pod.deployment
    if not gateway and dep.service and dep.service.name in cluster.services:
        svc = cluster.services[dep.service.name]
        callers = cluster.callers_of(svc.name)
        gw_callers = [c for c in callers if c.containers and c.containers[0].kind == GATEWAY]
        app_callers = [c for c in callers if c not in gw_callers]
        sni = f"outbound_.{svc.port}_._.{svc.fqdn}"

        def inbound(authority: str, remote: tuple[str, ...], uas: tuple[str, ...]) -> _Flow:
            return _Flow(
                "inbound",
                _REQUESTS.get(svc.name),
                authority,
                f"inbound|{svc.port}||",
                (f"{pod.ip}:{svc.port}",),
                f"{pod.ip}:{svc.port}",
                remote,
                "127.0.0.6",
                sni,
                uas,
                xff=authority in _EXTERNAL_HOST.values(),
            )

        if svc.name in _EXTERNAL_HOST:
            flows.append(
                inbound(_EXTERNAL_HOST[svc.name], _remote_ips(rng, gw_callers), _PUBLIC_UA)
            )
        if app_callers or svc.name not in _EXTERNAL_HOST:
            uas = tuple(
                sorted(
                    {
                        _CLIENT_UA.get(c.deployment.service.name, "Go-http-client/1.1")
                        for c in app_callers
                        if c.deployment.service
                    }
                )
            )
            flows.append(
                inbound(
                    _authority(svc), _remote_ips(rng, app_callers), uas or ("Go-http-client/1.1",)
                )
            )
    own_ua = (_CLIENT_UA.get(dep.service.name, "Go-http-client/1.1"),) if dep.service else ()
    for target in dep.calls:
        if target == "payments-external":
            flows.append(
                _Flow(
                    "tcp",
                    None,
                    "-",
                    "PassthroughCluster",
                    ("93.184.215.14:443",),
                    "93.184.215.14:443",
                    (pod.ip,),
                    pod.ip,
                    "api.payments.example.com",
                    (),
                    False,
                )
            )
            continue
        svc = cluster.services[target]
        hosts = tuple(f"{ip}:{svc.port}" for ip in svc.endpoints)
        local = f"{svc.cluster_ip}:{svc.port}"
        if svc.name not in _REQUESTS:  # a database: plain TCP through its cluster
            flows.append(
                _Flow(
                    "tcp",
                    None,
                    "-",
                    f"outbound|{svc.port}||{svc.fqdn}",
                    hosts,
                    local,
                    (pod.ip,),
                    pod.ip,
                    "-",
                    (),
                    False,
                )
            )
        elif gateway:
            flows.append(
                _Flow(
                    "gateway",
                    _REQUESTS[svc.name],
                    _EXTERNAL_HOST.get(svc.name, svc.fqdn),
                    f"outbound|{svc.port}||{svc.fqdn}",
                    hosts,
                    f"{pod.ip}:8080",
                    (cluster.node_ip,),
                    pod.ip,
                    "-",
                    _PUBLIC_UA,
                    True,
                )
            )
        else:
            subsets = ("v1", "v2", "v3") if svc.name == "reviews" else ("",)
            for subset in subsets:
                flows.append(
                    _Flow(
                        "outbound",
                        _REQUESTS[svc.name],
                        _authority(svc),
                        f"outbound|{svc.port}|{subset}|{svc.fqdn}",
                        hosts,
                        local,
                        (pod.ip,),
                        pod.ip,
                        "-",
                        own_ua,
                        False,
                    )
                )
    return flows


def _agent_line(rng: random.Random, t_ns: int) -> Line:
    """A pilot-agent (zap) or Envoy application-log line, as found between access logs."""
    ts = iso_us(t_ns)
    x = rng.random()
    if x < 0.3:
        return "stderr", (
            f"{ts}\twarning\tenvoy config external/envoy/source/extensions/config_subscription/"
            f"grpc/grpc_stream.h:193\tStreamAggregatedResources gRPC config stream to xds-grpc "
            f"closed since {rng.randint(1700, 1800)}s ago: 0, \tthread={rng.randint(14, 40)}"
        )
    if x < 0.45:
        return "stdout", (
            f"{ts}\tinfo\txdsproxy\tconnected to delta upstream XDS server: "
            f"istiod.istio-system.svc:15012\tid={rng.randint(2, 90)}"
        )
    if x < 0.6:
        return "stdout", (
            f"{ts}\tinfo\tcache\tgenerated new workload certificate\tresourceName=default "
            f"latency={rng.randint(40, 400)}.{rng.randrange(10**5):05d}ms "
            f"ttl=23h59m59.{rng.randrange(10**9):09d}s"
        )
    if x < 0.72:
        return (
            "stdout",
            f"{ts}\tinfo\tsds\tSDS: PUSH\tresource={rng.choice(('default', 'ROOTCA'))}",
        )
    if x < 0.84:
        return "stderr", (
            f"{ts}\twarning\tenvoy main external/envoy/source/server/server.cc:959\tThere is no "
            "configured limit to the number of allowed active downstream connections. Configure "
            "a limit in `envoy.resource_monitors.global_downstream_max_connections` resource "
            f"monitor.\tthread={rng.randint(14, 40)}"
        )
    if x < 0.92:
        return "stdout", (
            f"{ts}\tinfo\tcache\tcertificate rotation\tresourceName=default "
            f"ttl={rng.randint(1, 23)}h{rng.randint(0, 59)}m{rng.randint(0, 59)}s"
        )
    return "stdout", f"{ts}\tinfo\tEnvoy proxy is ready"


class EnvoyProxySource(LineSource):
    """Lines of an `istio-proxy` container: about 98.5 % access logs, the rest agent logs."""

    AGENT_SHARE: Final = 0.015

    def __init__(self, rng: random.Random, cluster: Cluster, pod: Pod, container: Container):
        super().__init__(rng, cluster, pod, container)
        self.gateway = container.kind == GATEWAY
        flows = build_flows(rng, cluster, pod, self.gateway)
        # Keep at least one flow so a proxy without mesh edges still logs inbound probes.
        if not flows:
            flows = [
                _Flow(
                    "inbound",
                    _details,
                    f"{pod.ip}:15021",
                    "inbound|15021||",
                    (f"{pod.ip}:15021",),
                    f"{pod.ip}:15021",
                    (cluster.node_ip,),
                    "127.0.0.6",
                    "-",
                    ("kube-probe/1.31",),
                    False,
                )
            ]
        self.flows = WeightedTable([(f, 1.0) for f in flows])

    def event(self, t_ns: int) -> Line:
        rng = self.rng
        if rng.random() < self.AGENT_SHARE:
            return _agent_line(rng, t_ns)
        return "stdout", self._access(t_ns, self.flows.pick(rng))

    def _access(self, t_ns: int, flow: _Flow, path_override: str | None = None) -> str:
        rng = self.rng
        eph = rng.randrange(32768, 61000)
        remote = f"{rng.choice(flow.remote_ips)}:{rng.randrange(32768, 61000)}"
        upstream_local = f"{flow.local_upstream_ip}:{eph}"
        if flow.requests is None:  # raw TCP proxying
            dur = self._clamp(t_ns, rng.randint(5, 60_000))
            start = iso_ms(t_ns - dur * 1_000_000)
            return (
                f'[{start}] "- - -" 0 - - - "-" {rng.randint(200, 40_000)} '
                f'{rng.randint(200, 400_000)} {dur} - "-" "-" "-" "-" '
                f'"{rng.choice(flow.upstream_hosts)}" {flow.cluster} {upstream_local} '
                f"{flow.downstream_local} {remote} {flow.sni} -"
            )
        method, path, code, rx, tx = flow.requests(rng)
        if path_override is not None:
            path = path_override
        route = "default"
        if flow.direction == "gateway":
            route = "-"
            if rng.random() < 0.004:  # internet scanners hitting the gateway
                dur = rng.randint(0, 1)
                start = iso_ms(t_ns - dur * 1_000_000)
                return (
                    f'[{start}] "GET {rng.choice(_SCANNER_PATHS)} HTTP/1.1" 404 NR '
                    f'route_not_found - "-" 0 0 {dur} - "{self._client_ip()}" '
                    f'"{rng.choice(_PUBLIC_UA)}" "{uuid4_text(rng)}" "{self.pod.ip}" "-" - - '
                    f"{flow.downstream_local} {remote} - -"
                )
        table = _INBOUND_OUTCOMES if flow.direction == "inbound" else _OUTBOUND_OUTCOMES
        o_code, flags, details, reason, reached, o_bytes, timeout = table.pick(rng)
        if o_code is not None:
            code = o_code
            tx = o_bytes if o_bytes is not None else tx
        if timeout:
            dur = self._clamp(t_ns, rng.randint(15_000, 15_050))
            ust = "-"
        elif reached:
            dur = self._clamp(
                t_ns, rng.randint(1, 60) if rng.random() < 0.97 else rng.randint(100, 3000)
            )
            ust = str(max(0, dur - rng.randint(0, 2))) if o_code is None else "-"
        else:
            dur, ust = rng.randint(0, 1), "-"
        host = f'"{rng.choice(flow.upstream_hosts)}"' if reached else '"-"'
        ulocal = upstream_local if reached else "-"
        proto = "HTTP/2" if flow.xff and rng.random() < 0.4 else "HTTP/1.1"
        xff = self._client_ip() if flow.xff else "-"
        start = iso_ms(t_ns - dur * 1_000_000)
        return (
            f'[{start}] "{method} {path} {proto}" {code} {flags} {details} - "{reason}" {rx} {tx} '
            f'{dur} {ust} "{xff}" "{rng.choice(flow.user_agents)}" "{uuid4_text(rng)}" '
            f'"{flow.authority}" {host} {flow.cluster} {ulocal} {flow.downstream_local} '
            f"{remote} {flow.sni} {route}"
        )

    def _clamp(self, t_ns: int, dur_ms: int) -> int:
        """Keep START_TIME at or after the file's first line: the tree has no earlier past."""
        return max(0, min(dur_ms, (t_ns - self.not_before) // 1_000_000))

    def _client_ip(self) -> str:
        r = self.rng
        first = r.choice((84, 91, 176, 203, 198))
        return f"{first}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def _http_flow(self) -> _Flow:
        for _ in range(16):
            flow = self.flows.pick(self.rng)
            if flow.requests is not None:
                return flow
        return _Flow(
            "inbound",
            _details,
            "details:9080",
            "inbound|9080||",
            ("-",),
            "-",
            (self.pod.ip,),
            "127.0.0.6",
            "-",
            ("curl/8.5.0",),
            False,
        )

    def long_line(self, t_ns: int, blob: str) -> Line:
        # Long lines from proxies are requests with huge query strings (batched id lists).
        return "stdout", self._access(t_ns, self._http_flow(), f"/api/v1/items?ids={blob}")

    def non_ascii_line(self, t_ns: int) -> Line:
        # Some clients send raw UTF-8 in the path; Envoy logs it unescaped.
        path = self.rng.choice(("/search?q=café crème", "/search?q=Zürich 🚲", "/u/José/ünïcode"))
        return "stdout", self._access(t_ns, self._http_flow(), path.replace(" ", "+"))
