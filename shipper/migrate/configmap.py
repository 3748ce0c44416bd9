"""Read a Fluentd configuration straight from a Kubernetes ConfigMap manifest.

Operators keep their Fluentd configuration in a ConfigMap (``fluentd-es-config``,
``fluentd-config`` of logzio-k8s), so ``migrate-fluentd`` accepts that YAML file as it is. Its
``data`` entries ending in ``.conf`` are the files Fluentd sees in the mounted directory. The
root is ``fluent.conf`` or ``td-agent.conf`` when there is one (it ``@include``-s the others);
otherwise every ``.conf`` entry is read in name order, which is what the images that mount such
a ConfigMap do (``@include config.d/*.conf``). Every line number refers to the YAML file.
"""

from __future__ import annotations

import os

import yaml

from shipper.errors import FluentdSyntaxError
from shipper.migrate.files import MemoryFiles, SourceText

ROOT_NAMES = ("fluent.conf", "td-agent.conf")


def is_manifest(path: str) -> bool:
    """True when ``path`` is read as a Kubernetes manifest rather than a Fluentd file."""
    return path.endswith((".yaml", ".yml"))


def load_configmap(path: str) -> tuple[MemoryFiles, list[str]]:
    """The ConfigMap's ``.conf`` entries as files, and the paths to read in order."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise FluentdSyntaxError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise FluentdSyntaxError(path, line, f"not valid YAML: {exc}") from exc
    entries: dict[str, SourceText] = {}
    for document in documents:
        entries.update(_conf_entries(document, path))
        if entries:
            break
    if not entries:
        raise FluentdSyntaxError(path, 1, "no ConfigMap with .conf entries under data "
                                          "in this file")
    directory = os.path.dirname(path)
    files = MemoryFiles(directory, entries)
    root = next((name for name in ROOT_NAMES if name in entries), None)
    names = [root] if root is not None else sorted(entries)
    return files, [os.path.normpath(os.path.join(directory, name)) for name in names]


def _conf_entries(document: yaml.Node | None, path: str) -> dict[str, SourceText]:
    if not isinstance(document, yaml.MappingNode):
        return {}
    top = {k.value: v for k, v in document.value if isinstance(k, yaml.ScalarNode)}
    kind = top.get("kind")
    data = top.get("data")
    if not (isinstance(kind, yaml.ScalarNode) and kind.value == "ConfigMap"
            and isinstance(data, yaml.MappingNode)):
        return {}
    entries = {}
    for key, value in data.value:
        if not (isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode)
                and key.value.endswith(".conf")):
            continue
        # A block scalar (| or >) starts on the line after its indicator.
        first = value.start_mark.line + (2 if value.style in ("|", ">") else 1)
        entries[key.value] = SourceText(value.value, path, first)
    return entries
