"""The Kubernetes API through the official ``kubernetes`` client, as raw JSON.

Credentials come from the client's own loaders (in-cluster service account with token refresh,
or kubeconfig), or from an explicit URL plus token and CA files. Requests are made with
``_preload_content=False`` and decoded with orjson into plain dicts: the generated model
classes would cost a deep copy of every (possibly megabyte-sized) pod, and the filter keeps a
handful of fields anyway. Response sizes are capped while reading.

urllib3's own retries are switched off: the watcher owns retrying, with backoff and a request
budget, so an outage can never multiply requests behind its back. Every failure is raised as
``KubernetesApiError`` (with the HTTP status when there was one).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from shipper.errors import FilterError, KubernetesApiError
from shipper.filters.kubernetes.config import KubernetesMetadataConfig

PODS = "pods"
NAMESPACES = "namespaces"
_PATHS = {PODS: "/api/v1/pods", NAMESPACES: "/api/v1/namespaces"}
# Keyword arguments of the list calls -> their query parameters.
_QUERY_NAMES = {"field_selector": "fieldSelector", "resource_version": "resourceVersion",
                "watch": "watch", "allow_watch_bookmarks": "allowWatchBookmarks",
                "timeout_seconds": "timeoutSeconds"}
_READ = 64 * 1024


def build_configuration(config: KubernetesMetadataConfig) -> Any:
    """A ``kubernetes.client.Configuration`` for this filter. Raises FilterError."""
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    cfg = kclient.Configuration()
    try:
        if config.kubernetes_url:
            cfg.host = config.kubernetes_url.rstrip("/")
            cfg.verify_ssl = config.verify_ssl
            if config.ca_file:
                cfg.ssl_ca_cert = config.ca_file
            if config.bearer_token_file:
                token = TokenFile(config.bearer_token_file)
                token.refresh(cfg)
                cfg.refresh_api_key_hook = token.refresh  # type: ignore[assignment]
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            kconfig.load_incluster_config(client_configuration=cfg)
        else:
            kconfig.load_kube_config(config_file=config.kubeconfig, client_configuration=cfg)
    except (kconfig.ConfigException, OSError, ValueError, TypeError) as exc:
        raise FilterError(f"kubernetes_metadata: no usable Kubernetes API configuration "
                          f"({exc}); set kubernetes_url or kubeconfig") from exc
    cfg.retries = False
    return cfg


class TokenFile:
    """A bearer token read from a file, re-read when the file changes (rotated tokens)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime: float | None = None
        self._lock = threading.Lock()

    def refresh(self, cfg: Any) -> None:
        """``refresh_api_key_hook``: called by the client before each request."""
        with self._lock:
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                if self._mtime is None:
                    raise
                return  # keep the last token; the request will tell if it still works
            if mtime == self._mtime:
                return
            with open(self.path, encoding="utf-8") as fh:
                token = fh.read().strip()
            cfg.api_key = {"authorization": token}
            cfg.api_key_prefix = {"authorization": "Bearer"}
            self._mtime = mtime


class KubeApi:
    """List and watch pods or namespaces; one instance per watcher thread."""

    def __init__(self, configuration: Any, max_response_bytes: int) -> None:
        from kubernetes import client as kclient

        self._client = kclient.ApiClient(configuration)
        # Clients generated with ``param_serialize`` (kubernetes 32 and later) are called
        # directly: importing their ``CoreV1Api`` costs a third of a CPU-second (hundreds of
        # validated methods) for the two list calls made here. Older ones import every API
        # with the package anyway, so they keep going through ``CoreV1Api``.
        direct = hasattr(self._client, "param_serialize")
        self._core = None if direct else kclient.CoreV1Api(self._client)
        self.max_bytes = max_response_bytes
        self._response: Any = None
        self._aborted = False
        self._lock = threading.Lock()

    def _call(self, resource: str) -> Callable[..., Any]:
        if self._core is None:
            return functools.partial(self._get, _PATHS[resource])
        if resource == PODS:
            return self._core.list_pod_for_all_namespaces
        return self._core.list_namespace

    def _get(self, path: str, *, _preload_content: bool, _request_timeout: tuple[float, float],
             **params: Any) -> Any:
        """What ``CoreV1Api`` does for a list or watch with ``_preload_content=False``."""
        from kubernetes.client.exceptions import ApiException

        query = [(_QUERY_NAMES[name], value) for name, value in params.items()
                 if value is not None]
        request = self._client.param_serialize(
            method="GET", resource_path=path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self._client.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException(http_resp=response)
        return response.response

    def _open(self, resource: str, timeout: tuple[float, float], **params: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            response = self._call(resource)(_preload_content=False, _request_timeout=timeout,
                                            **params)
        except ApiException as exc:
            raise KubernetesApiError(f"{resource}: HTTP {exc.status} {exc.reason}",
                                     exc.status or None) from exc
        except Exception as exc:
            raise KubernetesApiError(f"{resource}: {type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._response = response
            aborted = self._aborted
        if aborted:  # abort() came while the request was in flight
            self._done(response, False)
            raise KubernetesApiError(f"{resource}: aborted")
        return response

    def list(self, resource: str, *, field_selector: str | None, resource_version: str,
             timeout: float) -> tuple[list[Any], str]:
        """Items and the list's resourceVersion (where a watch starts)."""
        response = self._open(resource, (timeout, timeout), field_selector=field_selector,
                              resource_version=resource_version)
        complete = False
        try:
            chunks = []
            size = 0
            for chunk in response.stream(_READ):
                size += len(chunk)
                if size > self.max_bytes:
                    raise KubernetesApiError(f"{resource}: list response larger than "
                                             f"{self.max_bytes} bytes")
                chunks.append(chunk)
            complete = True
            data = orjson.loads(b"".join(chunks))
        except KubernetesApiError:
            raise
        except Exception as exc:
            raise KubernetesApiError(f"{resource}: list failed: {type(exc).__name__}: {exc}") \
                from exc
        finally:
            self._done(response, complete)
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise KubernetesApiError(f"{resource}: not a list response")
        meta = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
        return data["items"], str(meta.get("resourceVersion") or "")

    def watch(self, resource: str, *, field_selector: str | None, resource_version: str,
              timeout_secs: float, connect_timeout: float, read_timeout: float,
              ) -> Iterator[dict[str, Any]]:
        """Start a watch; returns its events (``{"type", "object"}``) until the server ends it.

        The request is made here, so an HTTP error raises before any event is read.
        """
        response = self._open(
            resource, (connect_timeout, read_timeout), field_selector=field_selector,
            resource_version=resource_version, watch=True, allow_watch_bookmarks=True,
            timeout_seconds=max(1, int(timeout_secs)))
        return self._events(resource, response)

    def _events(self, resource: str, response: Any) -> Iterator[dict[str, Any]]:
        complete = False
        try:
            buf = bytearray()
            for chunk in response.stream(_READ):
                buf += chunk
                start = 0
                while (end := buf.find(b"\n", start)) >= 0:
                    line = bytes(buf[start:end])
                    start = end + 1
                    if line.strip():
                        event = orjson.loads(line)
                        if isinstance(event, dict):
                            yield event
                del buf[:start]
                if len(buf) > self.max_bytes:
                    raise KubernetesApiError(f"{resource}: watch event larger than "
                                             f"{self.max_bytes} bytes")
            complete = True
        except KubernetesApiError:
            raise
        except Exception as exc:
            raise KubernetesApiError(f"{resource}: watch broken: {type(exc).__name__}: "
                                     f"{exc}") from exc
        finally:
            self._done(response, complete)

    def _done(self, response: Any, complete: bool) -> None:
        """Give the connection back; one with unread data is closed, never reused."""
        with self._lock:
            if self._response is response:
                self._response = None
        if not complete:
            response.close()
        response.release_conn()

    def abort(self) -> None:
        """Unblock a read in progress, and refuse new ones (from another thread): shutdown."""
        with self._lock:
            self._aborted = True
            response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # already closed or released: nothing left to unblock
                pass

    def close(self) -> None:
        self._client.close()
