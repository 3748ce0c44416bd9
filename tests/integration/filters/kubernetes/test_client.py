"""``KubeApi`` against the local API server: the requests it makes and the errors it raises."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shipper.demo.k8s_api import NAMESPACES, PODS, Fault, KubeApiServer
from shipper.errors import KubernetesApiError
from shipper.filters.kubernetes.client import KubeApi, build_configuration
from shipper.filters.kubernetes.config import KubernetesMetadataConfig
from tests.integration.filters.kubernetes.conftest import NODE, make_pod


@pytest.fixture(params=["direct", "CoreV1Api"])
def kube_api(request: pytest.FixtureRequest) -> Callable[..., KubeApi]:
    """Both ways requests are made: directly (current clients) and through ``CoreV1Api``
    (what clients without ``param_serialize`` use)."""

    def make(server: KubeApiServer, token_file: Path | None = None) -> KubeApi:
        config = KubernetesMetadataConfig(
            node_name=NODE, kubernetes_url=server.url,
            bearer_token_file=str(token_file) if token_file else None)
        client = KubeApi(build_configuration(config), 1 << 20)
        if request.param == "CoreV1Api":
            from kubernetes import client as kclient

            client._core = kclient.CoreV1Api(client._client)
        return client

    return make


def test_a_list_sends_its_query_and_the_token_and_returns_items(
        api: KubeApiServer, tmp_path: Path, kube_api: Callable[..., KubeApi]) -> None:
    api.token = "secret"
    token = tmp_path / "token"
    token.write_text("secret\n")
    client = kube_api(api, token)
    try:
        items, version = client.list(PODS, field_selector=f"spec.nodeName={NODE}",
                                     resource_version="", timeout=5)
        assert [i["metadata"]["name"] for i in items] == ["web-1"]
        assert int(version) > 0
        namespaces, _ = client.list(NAMESPACES, field_selector=None, resource_version="0",
                                    timeout=5)
        assert [n["metadata"]["name"] for n in namespaces] == ["shop"]
    finally:
        client.close()
    (pods_path, pods_query), (ns_path, ns_query) = api.requests
    assert pods_path == "/api/v1/pods"
    assert pods_query == {"fieldSelector": f"spec.nodeName={NODE}"}
    assert ns_path == "/api/v1/namespaces" and ns_query == {"resourceVersion": "0"}


def test_a_watch_streams_events_with_bookmarks_asked_for(
        api: KubeApiServer, kube_api: Callable[..., KubeApi]) -> None:
    client = kube_api(api)
    try:
        _, version = client.list(PODS, field_selector=None, resource_version="", timeout=5)
        api.state.put(PODS, make_pod("web-2", "uid-web-2", 2))
        events = client.watch(PODS, field_selector=None, resource_version=version,
                              timeout_secs=2, connect_timeout=5, read_timeout=5)
        first = next(events)
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "web-2")
        client.abort()
    finally:
        client.close()
    _, query = api.requests[-1]
    assert query == {"watch": "true", "allowWatchBookmarks": "true",
                     "resourceVersion": version, "timeoutSeconds": "2"}


@pytest.mark.parametrize("status", [401, 403, 500])
def test_an_http_error_is_a_kubernetes_api_error_with_its_status(
        api: KubeApiServer, status: int, kube_api: Callable[..., KubeApi]) -> None:
    api.fault_for = lambda path, query: Fault(status=status)
    client = kube_api(api)
    try:
        with pytest.raises(KubernetesApiError) as caught:
            client.list(PODS, field_selector=None, resource_version="", timeout=5)
    finally:
        client.close()
    assert caught.value.status == status
    assert f"HTTP {status}" in str(caught.value)


def test_an_unreachable_api_is_a_kubernetes_api_error(
        api: KubeApiServer, kube_api: Callable[..., KubeApi]) -> None:
    api.stop()
    client = kube_api(api)
    try:
        with pytest.raises(KubernetesApiError):
            client.list(PODS, field_selector=None, resource_version="", timeout=2)
    finally:
        client.close()
