"""How the filter finds the API: explicit URL and rotating token file, kubeconfig, nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipper.demo.k8s_api import PODS, KubeApiServer
from shipper.errors import FilterError
from shipper.filters.kubernetes import KubernetesMetadataConfig, KubernetesMetadataFilter
from shipper.metrics import Metrics
from tests.integration.filters.kubernetes.conftest import (
    NODE,
    eventually,
    filter_config,
    make_pod,
    record,
)


@pytest.fixture
def secured(api: KubeApiServer) -> KubeApiServer:
    api.token = "first-token"
    return api


async def test_a_bearer_token_file_is_sent_and_re_read_when_rotated(
        secured: KubeApiServer, running: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    f = await running(filter_config(secured.url, bearer_token_file=str(token)))
    assert f.synced
    assert f.process([record("web-1", 1)])[0].body["kubernetes"]["pod_id"] == "uid-web-1"
    secured.token = "second-token"
    token.write_text("second-token\n")
    os.utime(token, (1, 1))  # a new mtime even within the filesystem's time granularity
    secured.stop()  # cut the watches: the next requests must carry the rotated token
    secured.start()
    secured.state.put(PODS, make_pod("rotated-1", "uid-rot", 4))
    await eventually(lambda: "pod_id" in f.process([record("rotated-1", 4)])[0]
                     .body["kubernetes"], what="enriched with the rotated token")


async def test_a_wrong_token_degrades_but_never_blocks(secured: KubeApiServer,
                                                       running: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("wrong")
    f = await running(filter_config(secured.url, bearer_token_file=str(token),
                                    initial_sync_timeout_secs=0.5))
    assert not f.synced
    out = f.process([record("web-1", 1)])
    assert out[0].body["kubernetes"]["pod_name"] == "web-1"
    assert "pod_id" not in out[0].body["kubernetes"]


async def test_outside_a_cluster_the_kubeconfig_is_used(
        api: KubeApiServer, running: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "local", "cluster": {"server": api.url}}],
        "users": [{"name": "me", "user": {"token": "ignored-by-this-server"}}],
        "contexts": [{"name": "test", "context": {"cluster": "local", "user": "me"}}]}))
    f = await running(KubernetesMetadataConfig(kubeconfig=str(kubeconfig), node_name=NODE))
    assert f.synced
    assert f.process([record("web-1", 1)])[0].body["kubernetes"]["master_url"] == api.url


async def test_no_way_to_reach_an_api_is_a_clear_start_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    f = KubernetesMetadataFilter("k8s", KubernetesMetadataConfig(
        kubeconfig=str(tmp_path / "missing")), Metrics())
    with pytest.raises(FilterError, match="kubernetes_url or kubeconfig"):
        await f.start()
    await f.close()
