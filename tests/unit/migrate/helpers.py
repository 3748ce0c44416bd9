"""Helpers for the migrate-fluentd unit tests: convert Fluentd text written in a test."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from shipper.app import parse_agent_config
from shipper.config.model import AgentConfig
from shipper.migrate import Migration, migrate


def write(tmp_path: Path, text: str, name: str = "fluent.conf") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def convert(tmp_path: Path, text: str) -> Migration:
    """Migrate ``text`` written as ``fluent.conf`` in ``tmp_path``."""
    return migrate(str(write(tmp_path, text)))


def data(migration: Migration) -> dict[str, Any]:
    """The YAML the command wrote, read back as data."""
    loaded = yaml.safe_load(migration.text)
    assert isinstance(loaded, dict)
    return loaded


def validate(migration: Migration, environ: Mapping[str, str] | None = None) -> AgentConfig:
    """The agent's own loader on the written YAML (raises ConfigError listing problems)."""
    return parse_agent_config(migration.text, file="shipper.yaml", environ=environ or {})


def messages(migration: Migration, severity: str = "warning") -> list[str]:
    """``where: message`` of every finding of ``severity``, with the directory dropped."""
    return [f"{Path(f.where).name}: {f.message}" for f in migration.findings.ordered()
            if f.severity == severity]


def one(migration: Migration, kind: str) -> dict[str, Any]:
    """The only component of ``kind`` (sources, filters, outputs)."""
    section = data(migration)[kind]
    assert len(section) == 1, section
    return next(iter(section.values()))
