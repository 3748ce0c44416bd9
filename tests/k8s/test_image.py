"""The Dockerfile: what it promises, and its install steps run for real.

No Docker engine runs here, so the test does what the two stages do, with the same scripts:
``docker/build-wheels.sh`` in a clean builder virtualenv over a build context made of exactly
what the Dockerfile COPYs, then ``docker/install-wheels.sh`` in a clean final virtualenv.
The installed entry point then checks the configuration of every kustomization's ConfigMap.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pkgutil
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shipper import __version__
from tests.k8s.conftest import REPO, TARGETS
from tests.k8s.manifests import Rendered

DOCKERFILE = REPO / "Dockerfile"
CONFIG_PATH = "/etc/shipper/shipper.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions (continuations joined, comments dropped)."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) > 2 else None))
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form: {args}"
    return value


def test_the_image_is_built_in_two_slim_python_stages(stages: list[Stage]) -> None:
    assert len(stages) == 2
    builder, final = stages
    assert builder.name == "builder"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", stage.base)
    assert final.base == builder.base


def test_the_final_stage_installs_only_the_builders_wheels(stages: list[Stage]) -> None:
    builder, final = stages
    assert any("docker/build-wheels.sh" in run for run in builder.all("RUN"))
    runs = final.all("RUN")
    assert any("install-wheels.sh /wheels" in run and "from=builder" in run for run in runs)
    assert final.all("COPY") == [], "nothing is copied into the final image, only bind-mounted"
    for run in runs:
        assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", run), run


def test_the_image_runs_the_agent_with_the_configmap_config(stages: list[Stage],
                                                            rendered: dict[str, Rendered]) -> None:
    final = stages[-1]
    [entrypoint] = final.all("ENTRYPOINT")
    [cmd] = final.all("CMD")
    assert exec_form(entrypoint) + exec_form(cmd) == ["shipper", "run", "-c", CONFIG_PATH]
    for result in rendered.values():
        container = result.agent["spec"]["template"]["spec"]["containers"][0]
        assert "command" not in container, "the image's entry point is used"
        assert container["args"] == exec_form(cmd)


def test_the_image_sets_its_environment_user_healthcheck_and_labels(stages: list[Stage]) -> None:
    final = stages[-1]
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    [user] = final.all("USER")
    assert user.split(":")[0] != "0" and user != "root", "unprivileged by default"
    [healthcheck] = final.all("HEALTHCHECK")
    assert "/healthz" in healthcheck and "urllib.request" in healthcheck
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z.]+)="([^"]*)"',
                             " ".join(final.all("LABEL"))))
    assert {"title", "description", "version", "revision", "created", "licenses"} <= {
        k.rsplit(".", 1)[1] for k in labels}
    version_arg = [a for a in final.all("ARG") if a.startswith("VERSION=")]
    assert version_arg == [f"VERSION={__version__}"]


def test_the_build_context_is_an_allow_list(stages: list[Stage]) -> None:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "start from nothing"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for source in copy_sources(stages[0]):
        assert source in allowed, f"COPY {source} is not in .dockerignore's allow-list"
    for secretish in (".venv", ".git", "tests", "demo-run", "k8s"):
        assert not any(fnmatch.fnmatch(secretish, pattern) for pattern in allowed)


def copy_sources(stage: Stage) -> list[str]:
    sources = []
    for args in stage.all("COPY"):
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        sources += [p.rstrip("/") for p in parts[:-1]]
    return sources


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=420,
                          **kwargs)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def installed_image(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The final stage's environment: a clean virtualenv with only what the image gets."""
    work = tmp_path_factory.mktemp("image")
    context = work / "src"
    context.mkdir()
    for source in copy_sources(stages[0]):
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, context / source,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(origin, context / source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for venv in ("builder", "final"):
        done = run([sys.executable, "-m", "venv", str(work / venv)])
        assert done.returncode == 0, done.stderr
    done = run(["sh", str(context / "docker/build-wheels.sh"), str(context), str(work / "wheels")],
               env=env | {"PYTHON": str(work / "builder/bin/python")})
    assert done.returncode == 0, f"build-wheels.sh failed:\n{done.stdout[-4000:]}{done.stderr}"
    done = run(["sh", str(context / "docker/install-wheels.sh"), str(work / "wheels")],
               env=env | {"PYTHON": str(work / "final/bin/python")})
    assert done.returncode == 0, f"install-wheels.sh failed:\n{done.stdout[-4000:]}{done.stderr}"
    return work / "final"


def test_the_image_holds_only_runtime_packages(installed_image: Path) -> None:
    done = run([str(installed_image / "bin/python"), "-c",
                "import importlib.metadata as m; print('\\n'.join(sorted("
                "d.metadata['Name'].lower() for d in m.distributions())))"])
    assert done.returncode == 0, done.stderr
    names = set(done.stdout.split())
    assert "shipper" in names
    assert not names & {"pip", "setuptools", "wheel", "pytest", "ruff", "mypy", "noida-db",
                        "testcontainers", "checkov"}, names


def test_every_runtime_module_imports_in_the_image(installed_image: Path) -> None:
    import outputs
    import shipper

    modules = [m.name for package in (shipper, outputs)
               for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
               if not m.name.startswith("shipper.demo")]  # the demo needs the demo extra
    assert len(modules) > 20
    done = run([str(installed_image / "bin/python"), "-c",
                f"import importlib\nfor m in {modules!r}: importlib.import_module(m)"],
               cwd=installed_image)
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_image_entry_point_reports_its_version(installed_image: Path) -> None:
    done = run([str(installed_image / "bin/shipper"), "--version"], cwd=installed_image)
    # The builder compiles the per-line extension: the image must run it, not the fallback.
    assert done.returncode == 0
    assert done.stdout.strip() == f"shipper {__version__} (compiled per-line path)"


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_configmap_config_passes_shipper_check_in_the_image(
        installed_image: Path, rendered: dict[str, Rendered], target: str,
        tmp_path: Path) -> None:
    config = tmp_path / "shipper.yaml"
    config.write_text(rendered[target].agent_config_text)
    env = {"PATH": os.environ.get("PATH", ""), "NODE_NAME": "node-1"}
    done = run([str(installed_image / "bin/shipper"), "check", "-c", str(config)],
               env=env, cwd=tmp_path)
    assert done.returncode == 0, f"{target}: shipper check:\n{done.stdout}{done.stderr}"
    assert done.stdout.strip() == f"{config}: ok"


def test_the_image_can_run_the_dashboards_job(installed_image: Path,
                                              rendered: dict[str, Rendered]) -> None:
    job = rendered["efk-quickstart"].one("Job", "shipper-dashboards")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["dashboards", "import"]
    done = run([str(installed_image / "bin/shipper"), *args[:2], "--help"], cwd=installed_image)
    assert done.returncode == 0, done.stderr
    for option in args[2:]:
        if option.startswith("--"):
            assert option in done.stdout
