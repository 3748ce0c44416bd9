"""The user-facing docs say what the code and the Makefile do: the README's description of
``make test``, and the troubleshooting page's metrics and log events exist."""

from __future__ import annotations

import re
from pathlib import Path

from shipper.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
TROUBLESHOOTING = (REPO / "docs" / "TROUBLESHOOTING.md").read_text()


def recipe(target: str) -> list[str]:
    """The commands of a Makefile target, with ``$(BIN)/`` dropped."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        out.append(line.strip().replace("$(BIN)/", ""))
    return out


def test_the_readme_names_every_command_make_test_runs() -> None:
    development = README.split("## Development", 1)[1].split("\n## ", 1)[0]
    commands = recipe("test")
    assert [c.split()[0] for c in commands] == ["ruff", "mypy", "python"]
    for command in commands:
        shown = command.replace("python -m pytest", "pytest")
        assert f"`{shown}`" in development, shown
    assert "tests/k8s" in development and "checkov" in development
    assert "kubernetes-validate" in development and "kubectl kustomize" in development
    top = README.split("make test", 1)[1].splitlines()[0]
    assert "ruff" in top and "mypy" in top


def test_troubleshooting_covers_the_first_week_questions() -> None:
    headings = re.findall(r"^## (.+)$", TROUBLESHOOTING, re.M)
    assert headings == ["No data in Kibana", "Documents that look duplicated",
                        "The agent is not ready", "`shipper_lost_bytes_total` is rising",
                        "Dead letters"]
    assert "docs/TROUBLESHOOTING.md" in README
    assert "## Unreleased" in (REPO / "CHANGELOG.md").read_text()


def test_every_metric_the_troubleshooting_page_names_exists() -> None:
    exported = {m.name for m in Metrics().registry.collect()}
    named = set(re.findall(r"shipper_[a-z_]+", TROUBLESHOOTING))
    assert named
    for name in named:
        base = name.removesuffix("_total")
        assert base in exported or name in exported, name


def test_every_log_event_the_troubleshooting_page_names_is_logged_somewhere() -> None:
    code = "\n".join(p.read_text() for d in ("shipper", "outputs")
                     for p in (REPO / d).rglob("*.py"))
    for event in ("delivery_retry", "es_node_failed", "output_start_failed", "tail_truncated",
                  "tail_bytes_lost", "records_dead_lettered"):
        assert f"`{event}`" in TROUBLESHOOTING, event
        assert f'"{event}"' in code, event
