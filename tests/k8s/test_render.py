"""Every kustomization renders, and every rendered object is valid for current Kubernetes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.conftest import TARGETS, find_tool
from tests.k8s.manifests import Rendered, ident

# The newest release kubernetes-validate bundles, and the oldest minor still supported
# upstream when it was released.
KUBERNETES_VERSIONS = ["1.34", "1.37"]


def kubernetes_validate(files: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_tool("kubernetes-validate"), "--strict", "--quiet",
                           "-k", version, *map(str, files)],
                          capture_output=True, text=True, timeout=300)


def test_every_overlay_and_the_base_render(rendered: dict[str, Rendered]) -> None:
    assert set(rendered) == set(TARGETS)
    assert {"base", "elasticsearch", "logzio", "efk-quickstart"} <= set(rendered)
    for result in rendered.values():
        kinds = {d["kind"] for d in result.docs}
        assert {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
                "DaemonSet", "Service", "NetworkPolicy"} <= kinds, result.name
        assert result.agent["apiVersion"] == "apps/v1"


def test_rendered_objects_have_unique_identities(rendered: dict[str, Rendered]) -> None:
    for result in rendered.values():
        ids = [ident(d) for d in result.docs]
        assert len(ids) == len(set(ids)), result.name


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_matches_the_kubernetes_schema(
        rendered: dict[str, Rendered], version: str) -> None:
    files = [r.file for r in rendered.values()]
    done = kubernetes_validate(files, version)
    assert done.returncode == 0, f"kubernetes-validate -k {version}:\n{done.stdout}{done.stderr}"


def test_the_schema_check_is_strict_about_field_names(
        rendered: dict[str, Rendered], tmp_path: Path) -> None:
    """A misspelt security field must not pass silently (checkov would not notice it)."""
    agent = rendered["base"].agent
    broken = yaml.safe_load(yaml.safe_dump(agent))
    context = broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    file = tmp_path / "typo.yaml"
    file.write_text(yaml.safe_dump(broken))
    done = kubernetes_validate([file], KUBERNETES_VERSIONS[-1])
    assert done.returncode != 0
    assert "readOnlyRootFileSystem" in done.stdout + done.stderr


def test_removed_api_versions_are_not_used(rendered: dict[str, Rendered]) -> None:
    """The seed manifests used extensions/v1beta1; nothing here may."""
    for result in rendered.values():
        for doc in result.docs:
            assert "beta" not in doc["apiVersion"] and "alpha" not in doc["apiVersion"], ident(doc)
