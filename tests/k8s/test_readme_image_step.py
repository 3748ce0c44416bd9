"""The README's image step works without a kustomize binary: ``kubectl`` has no
``kustomize edit``, so the README gives the ``images:`` entry to add by hand (and says where
the standalone ``kustomize`` comes from). The block it shows is rendered here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.conftest import K8S, REPO

README = (REPO / "README.md").read_text()
REGISTRY_IMAGE = "registry.example.com/shipper"


def readme_images_block() -> str:
    """The YAML block of the README that starts with ``images:``."""
    blocks = re.findall(r"```yaml\n(images:\n.*?)```", README, flags=re.S)
    assert len(blocks) == 1, "the README shows one images: block for the manual edit"
    return blocks[0]


def test_the_readme_says_kubectl_cannot_edit_and_where_kustomize_comes_from() -> None:
    text = " ".join(README.split())
    assert "kubectl alone" in text
    assert "kubernetes-sigs/kustomize" in text  # the standalone binary's home


@pytest.mark.parametrize("overlay", ["elasticsearch", "logzio"])
def test_the_readme_images_block_added_by_hand_points_the_agent_at_the_registry(
        kubectl: str, tmp_path: Path, overlay: str) -> None:
    block = readme_images_block()
    entry = yaml.safe_load(block)["images"]
    assert entry == [{"name": "shipper", "newName": REGISTRY_IMAGE, "newTag": "0.1.0"}]
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    kustomization = tree / "overlays" / overlay / "kustomization.yaml"
    assert "images:" not in kustomization.read_text(), "appending would duplicate the key"
    kustomization.write_text(kustomization.read_text() + block)
    done = subprocess.run([kubectl, "kustomize", str(kustomization.parent)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    [agent] = [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "DaemonSet"]
    [container] = agent["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{REGISTRY_IMAGE}:0.1.0"
