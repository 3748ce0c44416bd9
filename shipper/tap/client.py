"""The CLI side of the tap: open ``/tap`` on every agent and merge the streams.

Agents are reached directly (``--agent http://10.244.1.5:24231``) or found through the
Kubernetes API: the DaemonSet's pods (label selector) are listed and each stream goes through
the API server's pod proxy, ``/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/tap``, so the
operator needs only ``get`` on ``pods/proxy`` and no network path to the nodes. The
``kubernetes`` client supplies the credentials (kubeconfig, exec plugins, in-cluster).

One reader thread per agent parses NDJSON lines into a shared bounded queue; when the
terminal falls behind, the threads stop reading, TCP pushes back, and the agents drop tap
records for this subscriber (counted there) instead of slowing down.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import urllib3

DEFAULT_NAMESPACE = "shipper"
DEFAULT_SELECTOR = "app.kubernetes.io/name=shipper,app.kubernetes.io/component=agent"
DEFAULT_PORT = 24231
CONNECT_TIMEOUT_SECS = 5.0
_READ_BYTES = 64 * 1024


class TapError(Exception):
    """An agent could not be tapped (unreachable, tap off, bad filter)."""


@dataclass(frozen=True)
class AgentStream:
    """One agent to tap: a name for messages and how to open its streamed response (a
    urllib3 response, body not read yet)."""

    name: str
    open: Callable[[], Any]


@dataclass(frozen=True)
class Ended:
    """A stream finished; ``error`` says why when it failed."""

    agent: str
    error: str = ""


def body(response: Any, where: str) -> Iterator[bytes]:
    """The body of a streamed urllib3 response, as it arrives; TapError unless 200."""
    if response.status != 200:
        text = response.read(4096).decode("utf-8", "replace").strip()
        response.release_conn()
        raise TapError(f"{where}: HTTP {response.status}: {text}")
    try:
        if response.chunked:
            yield from response.read_chunked(decode_content=True)
        else:
            while chunk := response.read1(_READ_BYTES):
                yield chunk
    finally:
        response.release_conn()


def direct_agent(url: str, query_string: str,
                 pool: urllib3.PoolManager | None = None) -> AgentStream:
    """An agent reached at ``url`` (its telemetry or tap listener)."""
    pool = pool or urllib3.PoolManager(retries=False)
    full = f"{url.rstrip('/')}/tap" + (f"?{query_string}" if query_string else "")

    def open_stream() -> Any:
        try:
            return pool.request("GET", full, preload_content=False,
                                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECS,
                                                        read=None))
        except urllib3.exceptions.HTTPError as exc:
            raise TapError(f"{url}: {exc}") from exc

    return AgentStream(url, open_stream)


def discover_agents(query_string: str, namespace: str = DEFAULT_NAMESPACE,
                    selector: str = DEFAULT_SELECTOR, port: int = DEFAULT_PORT,
                    kubeconfig: str | None = None, context: str | None = None,
                    ) -> list[AgentStream]:
    """Every running agent pod, each tapped through the API server's pod proxy."""
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    cfg = kclient.Configuration()
    try:
        kconfig.load_kube_config(config_file=kubeconfig, context=context,
                                 client_configuration=cfg)
    except (kconfig.ConfigException, OSError) as exc:
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException:
            raise TapError(f"no Kubernetes configuration: {exc}") from exc
    cfg.retries = False
    api = kclient.ApiClient(cfg)
    core = kclient.CoreV1Api(api)
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=selector)
    except Exception as exc:
        raise TapError(f"listing agent pods in {namespace} ({selector}): {exc}") from exc
    streams = []
    for pod in pods.items:
        name = pod.metadata.name if pod.metadata is not None else None
        if not name or pod.status is None or pod.status.phase != "Running":
            continue
        streams.append(_proxied(api, namespace, name, port, query_string))
    if not streams:
        raise TapError(f"no running agent pod in namespace {namespace} matches {selector}")
    return streams


def _proxied(api: Any, namespace: str, pod: str, port: int, query_string: str,
             ) -> AgentStream:
    from urllib.parse import parse_qsl

    def open_stream() -> Any:
        params = api.param_serialize(
            method="GET", resource_path="/api/v1/namespaces/{namespace}/pods/{name}/proxy/tap",
            path_params={"namespace": namespace, "name": f"{pod}:{port}"},
            query_params=parse_qsl(query_string), header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"])
        try:
            rest = api.call_api(*params, _request_timeout=(CONNECT_TIMEOUT_SECS, None))
        except Exception as exc:
            raise TapError(f"pod {pod}: {exc}") from exc
        return rest.response

    return AgentStream(f"{namespace}/{pod}", open_stream)


def lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """NDJSON lines from arbitrarily cut chunks; empty (keep-alive) lines skipped."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


class Merger:
    """Reads every agent's stream in its own thread into one bounded queue."""

    def __init__(self, agents: list[AgentStream], max_queued: int = 10_000) -> None:
        self._agents = agents
        self.queue: queue.Queue[dict[str, Any] | Ended] = queue.Queue(max_queued)
        self.running = len(agents)
        self._responses: list[Any] = []
        self._closed = False

    def start(self) -> None:
        for agent in self._agents:
            threading.Thread(target=self._read, args=(agent,), name=f"tap-{agent.name}",
                             daemon=True).start()

    def close(self) -> None:
        """Abort every stream (the agents see the connection close)."""
        self._closed = True
        for response in list(self._responses):
            shutdown = getattr(response, "shutdown", None)  # urllib3 >= 2.3: unblocks reads
            with contextlib.suppress(Exception):
                if shutdown is not None:
                    shutdown()
                response.release_conn()

    def _read(self, agent: AgentStream) -> None:
        try:
            response = agent.open()
            self._responses.append(response)
            if self._closed:
                return
            for line in lines(body(response, agent.name)):
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    self.queue.put(event)
        except TapError as exc:
            self.queue.put(Ended(agent.name, str(exc)))
            return
        except Exception as exc:  # a broken connection ends this stream, not the others
            if not self._closed:
                self.queue.put(Ended(agent.name, f"{agent.name}: {type(exc).__name__}: {exc}"))
            return
        self.queue.put(Ended(agent.name))

    def get(self, timeout: float) -> dict[str, Any] | Ended | None:
        """The next event or end-of-stream; None after ``timeout`` with nothing."""
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, Ended):
            self.running -= 1
        return item
