"""``shipper check`` on a node: the TLS files the config names (certificates, keys, CA
bundles) exist and are readable here.

The loader validates the file alone (``--config-only`` stops there, for CI); these files only
exist where the agent runs, and a missing one would otherwise stop ``run`` later, after the
config was called fine. Token and password files are left to ``run``: checks of the
ConfigMap's config outside the pod (where those Secrets are not mounted) must still pass.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from shipper.errors import ConfigProblem

#: The TLS file settings of every component.
_TLS_FILES = frozenset({"cert_file", "key_file", "ca_file"})


def unreadable_files(config: Any, file: str) -> list[ConfigProblem]:
    """One problem per TLS file setting whose file cannot be read on this host."""
    problems: list[ConfigProblem] = []
    _walk(config, "", file, problems, depth=0)
    return problems


def _walk(value: Any, path: str, file: str, problems: list[ConfigProblem], depth: int) -> None:
    if depth > 20:  # configs are shallow; a cycle would be a bug, not a reason to hang
        return
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            child = getattr(value, f.name)
            key = f"{path}.{f.name}" if path else f.name
            if f.name in _TLS_FILES:
                if isinstance(child, str) and child:
                    problem = _unreadable(child)
                    if problem is not None:
                        problems.append(ConfigProblem(file, None, key, problem))
                continue
            _walk(child, key, file, problems, depth + 1)
    elif isinstance(value, dict):
        for name, child in value.items():
            _walk(child, f"{path}.{name}" if path else str(name), file, problems, depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, child in enumerate(value):
            _walk(child, f"{path}[{index}]", file, problems, depth + 1)


def _unreadable(path: str) -> str | None:
    if "${" in path:  # resolved from the environment when the agent starts
        return None
    if not os.path.exists(path):
        return f"{path} does not exist on this host"
    if not os.path.isfile(path):
        return f"{path} is not a regular file"
    if not os.access(path, os.R_OK):
        return f"{path} is not readable by this user"
    return None
