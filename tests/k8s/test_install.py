"""The install as the README describes it: the image step, the pull policy, the host paths
of docker and containerd nodes (and a custom docker data-root), and the resource limits the
documentation asks for with ``workers: N``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.conftest import K8S, REPO, TARGETS
from tests.k8s.manifests import Rendered

README = (REPO / "README.md").read_text()
REGISTRY_IMAGE = "registry.example.com/shipper"
all_targets = pytest.mark.parametrize("target", list(TARGETS))


def agent_container(rendered: Rendered) -> dict[str, Any]:
    [container] = rendered.agent["spec"]["template"]["spec"]["containers"]
    return container


def host_paths(rendered: Rendered) -> dict[str, dict[str, Any]]:
    """Volume name -> hostPath of the agent's pod."""
    return {v["name"]: v["hostPath"] for v in rendered.agent["spec"]["template"]["spec"]["volumes"]
            if "hostPath" in v}


def install_row(destination: str) -> tuple[str, str]:
    """(before, install) cells of the README's install table row for ``destination``."""
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith(destination):
            return cells[1], cells[2]
    raise AssertionError(f"no install row for {destination}")


def render_copy(kubectl: str, tmp_path: Path, overlay: str, extra: str) -> list[dict[str, Any]]:
    """Render a copy of ``overlay`` with ``extra`` appended to its kustomization.yaml."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + extra)
    done = subprocess.run([kubectl, "kustomize", str(kustomization.parent)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@all_targets
def test_a_tagged_image_is_pulled_if_not_present(rendered: dict[str, Rendered],
                                                 target: str) -> None:
    container = agent_container(rendered[target])
    image = container["image"]
    assert "@sha256:" in image or not image.endswith(":latest")
    assert container["imagePullPolicy"] == "IfNotPresent", image


@pytest.mark.parametrize(("destination", "overlay"), [
    ("your Elasticsearch", "elasticsearch"), ("Logz.io", "logzio")])
def test_the_install_table_has_the_image_step_as_one_command(destination: str,
                                                             overlay: str) -> None:
    before, install = install_row(destination)
    assert f"`cd k8s/overlays/{overlay}`" in before
    assert f"`kustomize edit set image shipper={REGISTRY_IMAGE}:" in before
    assert install == f"`kubectl apply -k k8s/overlays/{overlay}`"
    kustomization = (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
    assert "kustomize edit set image shipper=" in kustomization  # its header says so too


def test_the_readme_does_not_tell_to_edit_fields_the_base_does_not_have() -> None:
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    [image] = base["images"]
    assert set(image) == {"name", "newTag"}
    assert "`newName` and `digest` under `images:`" not in README


@pytest.mark.parametrize("overlay", ["elasticsearch", "logzio"])
def test_what_kustomize_edit_set_image_writes_points_the_agent_at_the_registry(
        kubectl: str, tmp_path: Path, overlay: str) -> None:
    """`kustomize edit set image shipper=R/shipper:T` adds this entry to the overlay."""
    docs = render_copy(kubectl, tmp_path, overlay, (
        f"images:\n  - name: shipper\n    newName: {REGISTRY_IMAGE}\n    newTag: 0.1.0\n"))
    [agent] = [d for d in docs if d["kind"] == "DaemonSet"]
    [container] = agent["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{REGISTRY_IMAGE}:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


@all_targets
def test_host_path_types_are_deliberate(rendered: dict[str, Rendered], target: str) -> None:
    paths = host_paths(rendered[target])
    assert {p["path"]: p["type"] for p in paths.values()} == {
        "/var/log": "Directory",
        "/var/lib/docker/containers": "DirectoryOrCreate",
        "/var/lib/shipper": "DirectoryOrCreate",
    }


def test_the_docker_data_root_component_mounts_its_containers_at_the_same_path(
        kubectl: str, tmp_path: Path) -> None:
    docs = render_copy(kubectl, tmp_path, "elasticsearch",
                       "components:\n  - ../../components/docker-data-root\n")
    [agent] = [d for d in docs if d["kind"] == "DaemonSet"]
    pod = agent["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [container] = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    host = volumes["docker-data-root"]["hostPath"]
    assert host["type"] == "Directory"
    assert mounts["docker-data-root"]["mountPath"] == host["path"] == "/data/docker/containers"
    assert mounts["docker-data-root"]["readOnly"] is True
    assert "/var/lib/docker/containers" in {m["mountPath"] for m in mounts.values()}
    assert "components/docker-data-root" in README


def _peak_rss(row_start: str) -> int:
    """The row's figure in the first table of PERFORMANCE.md with a `peak RSS MiB` column (the
    table of the run the documented limits were measured in)."""
    text = (REPO / "docs" / "PERFORMANCE.md").read_text()
    column: int | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.split("|")]
        if cells[1] == "path":
            column = cells.index("peak RSS MiB") if "peak RSS MiB" in cells else None
        elif column is not None and line.startswith(f"| {row_start}"):
            return int(cells[column].replace(",", ""))
    raise AssertionError(f"no peak RSS figure for {row_start!r} in PERFORMANCE.md")


def _mib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


def test_the_documented_limits_cover_the_measured_memory(rendered: dict[str, Rendered]) -> None:
    one = _peak_rss("tail → parse → enrich → encode → Elasticsearch bulk")
    two = _peak_rss("same as the bulk blackhole row, `workers: 2`")
    limit = _mib(agent_container(rendered["base"])["resources"]["limits"]["memory"])
    assert one < limit, "the base limit holds one process"
    # The advice (README, config comment, OPERATIONS): memory N x 512Mi with workers: N.
    per_worker = 512
    assert per_worker == limit and two < 2 * per_worker
    config = (K8S / "base" / "shipper.yaml").read_text()
    assert "N x 512Mi" in config and f"{two} MiB" in config
    assert "`memory: 1Gi` for `workers: 2`" in README and f"{two} MiB" in README
    operations = (REPO / "docs" / "OPERATIONS.md").read_text()
    assert "N \u00d7 512Mi" in operations
    assert f"{two} MiB" in operations and f"{one} MiB" in operations
