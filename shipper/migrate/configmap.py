"""Read a Fluentd configuration straight from Kubernetes manifests (ConfigMaps and workloads).

Operators keep their Fluentd configuration in ConfigMaps (``fluentd-es-config``,
``fluentd-config`` of logzio-k8s, the two ConfigMaps the fluent Helm chart renders), so
``migrate-fluentd`` accepts the manifest file as it is: YAML with any number of documents, a
``kind: List``, or JSON. Every ConfigMap's ``.conf`` entries become files at the paths Fluentd
sees them in the pod, because that is what ``@include`` resolves against:

1. when a DaemonSet, Deployment, StatefulSet or Pod of the same file mounts the ConfigMap,
   its ``volumeMounts`` (``mountPath``, ``subPath``, ``items``) give the paths;
2. otherwise the ConfigMap holding the root file (``fluent.conf``, ``td-agent.conf`` or
   ``fluentd.conf``, the bitnami chart's name) is taken as mounted in ``/fluentd/etc``, and
   one other ConfigMap as mounted where the root's only unfilled include directory points
   (the fluent chart's ``@include config.d/*.conf``);
3. anything else is ambiguous and refused (``ManifestError``, exit 2) with what is unknown:
   guessing would ship lines twice or not at all.

An include is never matched by file name alone: ``conf.d/*.conf`` reads ``conf.d`` next to
the including file, which is not the ConfigMap's own directory. Every line number refers to
the manifest file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from shipper.errors import FluentdSyntaxError
from shipper.migrate.files import MemoryFiles, SourceText, decode_text, is_glob, open_regular

ROOT_NAMES = ("fluent.conf", "td-agent.conf", "fluentd.conf")
DEFAULT_MOUNT = "/fluentd/etc"
WORKLOAD_KINDS = ("DaemonSet", "Deployment", "StatefulSet", "Pod", "ReplicaSet")
_INCLUDE = re.compile(r"^[ \t]*@?include[ \t]+(\S.*?)[ \t]*$", re.MULTILINE)


def is_manifest(path: str) -> bool:
    """True when ``path`` is read as Kubernetes manifests rather than a Fluentd file."""
    return path.endswith((".yaml", ".yml", ".json"))


@dataclass
class ConfigMap:
    """One ConfigMap's ``.conf`` entries (name -> text located in the manifest)."""

    name: str
    line: int
    entries: dict[str, SourceText]


@dataclass
class Workload:
    """A pod template of the file: where it mounts which ConfigMap, how Fluentd starts."""

    kind: str
    name: str
    line: int
    mounts: list[tuple[str, str, str, dict[str, str] | None]] = field(default_factory=list)
    config_path: str | None = None  # fluentd -c <path>, or FLUENTD_CONF under /fluentd/etc


@dataclass
class Layout:
    """What ``read_fluentd`` reads: the files in the pod's paths and the root(s) to start at."""

    files: MemoryFiles
    roots: list[str]
    notes: list[tuple[int, str]]  # (manifest line, message)


def load_manifest(path: str, max_bytes: int | None = None,
                  workload: str | None = None) -> Layout:
    """The ConfigMaps of ``path`` laid out as the pod sees them; see the module docstring.

    Raises ``FluentdSyntaxError`` (``file:line: message``) for unreadable or ambiguous input.
    """
    text = _read_text(path, max_bytes)
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or "syntax error"
        raise FluentdSyntaxError(path, line, f"not valid YAML or JSON: {problem}") from exc
    except RecursionError as exc:  # PyYAML recurses once per nesting level
        raise FluentdSyntaxError(path, 1, "not valid YAML or JSON: nested too deeply to "
                                          "read") from exc
    configmaps: list[ConfigMap] = []
    workloads: list[Workload] = []
    try:
        for document in documents:
            for obj in _objects(document):
                _classify(obj, path, configmaps, workloads)
    except RecursionError as exc:
        raise FluentdSyntaxError(path, 1, "a manifest nested too deeply to read") from exc
    configmaps = [c for c in configmaps if c.entries]
    if not configmaps:
        raise FluentdSyntaxError(path, 1, "no ConfigMap with .conf entries under data "
                                          "in this file")
    names = [c.name for c in configmaps]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FluentdSyntaxError(path, 1, f"ConfigMap {dupes[0]} is defined twice in this "
                                          "file; keep one")
    return _Layouter(path, configmaps, workloads).layout(workload)


def _read_text(path: str, max_bytes: int | None) -> str:
    try:
        with open_regular(path) as fh:
            raw = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
    except OSError as exc:
        raise FluentdSyntaxError(path, 1, f"cannot read file: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(raw) > max_bytes:
        raise FluentdSyntaxError(path, 1, f"the input is larger than {max_bytes} bytes, the "
                                          "most migrate-fluentd reads")
    return decode_text(raw, path)


# -- reading the objects ----------------------------------------------------------------------

def _plain(node: yaml.Node | None) -> Any:
    """A node as plain data (scalars stay strings): enough to read volumes and mounts."""
    if isinstance(node, yaml.MappingNode):
        return {k.value: _plain(v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    if isinstance(node, yaml.ScalarNode):
        return node.value
    return None


def _mapping(node: yaml.Node | None) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: v for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _scalar(node: yaml.Node | None) -> str:
    return node.value if isinstance(node, yaml.ScalarNode) else ""


def _objects(document: yaml.Node | None) -> list[yaml.Node]:
    """The objects of one document: itself, or the ``items`` of a ``kind: List``."""
    top = _mapping(document)
    if _scalar(top.get("kind")).endswith("List") and isinstance(top.get("items"),
                                                                  yaml.SequenceNode):
        items = top["items"]
        assert isinstance(items, yaml.SequenceNode)
        return [o for item in items.value for o in _objects(item)]
    return [document] if document is not None else []


def _classify(node: yaml.Node, path: str, configmaps: list[ConfigMap],
              workloads: list[Workload]) -> None:
    top = _mapping(node)
    kind = _scalar(top.get("kind"))
    name = _scalar(_mapping(top.get("metadata")).get("name")) or "(unnamed)"
    if kind == "ConfigMap":
        configmaps.append(ConfigMap(name, node.start_mark.line + 1,
                                    _conf_entries(top.get("data"), path)))
    elif kind in WORKLOAD_KINDS:
        workload = _workload(kind, name, node.start_mark.line + 1, _plain(node))
        if workload.mounts:
            workloads.append(workload)


def _conf_entries(data: yaml.Node | None, path: str) -> dict[str, SourceText]:
    """Every entry of a ConfigMap that holds at least one ``.conf`` entry.

    Entries of other names are kept too: an ``@include config.d/*`` reads them in the pod.
    """
    entries: dict[str, SourceText] = {}
    if not isinstance(data, yaml.MappingNode):
        return entries
    if not any(isinstance(key, yaml.ScalarNode) and key.value.endswith(".conf")
               for key, _ in data.value):
        return entries
    key_lines: dict[str, int] = {}
    for key, value in data.value:
        if not (isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode)):
            continue
        if key.value in key_lines:
            raise FluentdSyntaxError(path, key.start_mark.line + 1,
                                     f"the ConfigMap entry {key.value} is defined twice "
                                     f"(first at line {key_lines[key.value]}); which one "
                                     "the cluster keeps is not certain; keep one")
        key_lines[key.value] = key.start_mark.line + 1
        # A block scalar (| or >) starts on the line after its indicator.
        first = value.start_mark.line + (2 if value.style in ("|", ">") else 1)
        entries[key.value] = SourceText(value.value, path, first)
    return entries


def _workload(kind: str, name: str, line: int, obj: dict[str, Any]) -> Workload:
    spec = obj.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    template = spec.get("template")
    pod = spec if kind == "Pod" else template.get("spec") if isinstance(template, dict) else {}
    workload = Workload(kind, name, line)
    if not isinstance(pod, dict):
        return workload
    volumes: dict[str, list[tuple[str, dict[str, str] | None]]] = {}
    for volume in pod.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        sources = [volume.get("configMap")]
        projected = volume.get("projected")
        if isinstance(projected, dict):
            sources += [s.get("configMap") for s in projected.get("sources") or []
                        if isinstance(s, dict)]
        for source in sources:
            if isinstance(source, dict) and source.get("name"):
                items = source.get("items")
                mapping = ({str(i["key"]): str(i.get("path", i["key"])) for i in items
                            if isinstance(i, dict) and "key" in i}
                           if isinstance(items, list) else None)
                volumes.setdefault(str(volume.get("name")), []).append(
                    (str(source["name"]), mapping))
    containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    fluent = [c for c in containers if "fluent" in f"{c.get('image', '')}{c.get('name', '')}"]
    for container in fluent or containers:
        for mount in container.get("volumeMounts") or []:
            if not isinstance(mount, dict) or str(mount.get("name")) not in volumes:
                continue
            for configmap, items in volumes[str(mount["name"])]:
                workload.mounts.append((configmap, str(mount.get("mountPath", "")),
                                        str(mount.get("subPath") or ""), items))
        workload.config_path = workload.config_path or _config_path(container)
    return workload


def _config_path(container: dict[str, Any]) -> str | None:
    """``fluentd -c /etc/fluent/fluent.conf`` (command or args), or the image's FLUENTD_CONF."""
    words: list[str] = []
    for key in ("command", "args"):
        value = container.get(key)
        if isinstance(value, list):
            for item in value:
                words.extend(str(item).split())
    for i, word in enumerate(words):
        if word in ("-c", "--config") and i + 1 < len(words):
            return words[i + 1]
        if word.startswith("--config="):
            return word.split("=", 1)[1]
    for env in container.get("env") or []:
        if isinstance(env, dict) and env.get("name") == "FLUENTD_CONF" and env.get("value"):
            return posixpath.normpath(posixpath.join(DEFAULT_MOUNT, str(env["value"])))
    return None


# -- laying the files out ---------------------------------------------------------------------

class _Layouter:
    def __init__(self, path: str, configmaps: list[ConfigMap],
                 workloads: list[Workload]) -> None:
        self.path = path
        self.configmaps = {c.name: c for c in configmaps}
        self.workloads = workloads
        self.files: dict[str, SourceText] = {}
        self.notes: list[tuple[int, str]] = []

    def fail(self, line: int, message: str) -> FluentdSyntaxError:
        return FluentdSyntaxError(self.path, line, message)

    def place(self, configmap: ConfigMap, directory: str,
              items: dict[str, str] | None = None, sub_path: str = "") -> None:
        for key, text in configmap.entries.items():
            if sub_path:
                if key == sub_path:
                    self.files[posixpath.normpath(directory)] = text
                continue
            if items is not None and key not in items:
                continue
            name = items[key] if items is not None else key
            self.files[posixpath.normpath(posixpath.join(directory, name))] = text

    def layout(self, chosen: str | None = None) -> Layout:
        mounted: set[str] = set()
        config_path: str | None = None
        relevant = [w for w in self.workloads
                    if any(m[0] in self.configmaps for m in w.mounts)]
        if chosen is not None:
            picked = [w for w in relevant if w.name == chosen]
            if not picked:
                names = ", ".join(w.name for w in relevant) or "none"
                raise self.fail(1, f"no workload named {chosen} mounts a Fluentd ConfigMap in "
                                   f"this file (those that do: {names})")
            others = {m[0] for w in relevant if w is not picked[0] for m in w.mounts}
            mine = {m[0] for m in picked[0].mounts}
            for name in others - mine:  # another workload's configuration
                del self.configmaps[name]
            relevant = picked
        if len(relevant) > 1:
            listed = ", ".join(f"{w.kind} {w.name} (line {w.line})" for w in relevant)
            raise self.fail(relevant[1].line, f"several workloads mount Fluentd ConfigMaps "
                                              f"({listed}): each is its own configuration; "
                                              "choose one with --workload NAME")
        for workload in relevant:
            config_path = workload.config_path
            for name, directory, sub_path, items in workload.mounts:
                configmap = self.configmaps.get(name)
                if configmap is None or not directory.startswith("/"):
                    continue
                self.place(configmap, directory, items, sub_path)
                mounted.add(name)
        unmounted = [c for c in self.configmaps.values() if c.name not in mounted]
        if not mounted:
            with_root = [c for c in unmounted if any(n in c.entries for n in ROOT_NAMES)]
            if len(with_root) > 1:
                listed = ", ".join(f"{c.name} (line {c.line})" for c in with_root)
                raise self.fail(with_root[1].line, f"several ConfigMaps hold a root file "
                                                   f"({listed}); put each in a file of its own, "
                                                   "or add the workload that mounts them")
            first = with_root[0] if with_root else unmounted[0] if len(unmounted) == 1 else None
            if first is None:
                listed = ", ".join(f"{c.name} (line {c.line})" for c in unmounted)
                raise self.fail(unmounted[1].line, f"no ConfigMap holds a root file "
                                                   f"({', '.join(ROOT_NAMES)}) and no workload "
                                                   f"here mounts them, so where {listed} are "
                                                   "mounted is unknown; add the DaemonSet or "
                                                   "Deployment that mounts them")
            self.place(first, DEFAULT_MOUNT)
            unmounted.remove(first)
            mounted.add(first.name)
        if unmounted and relevant:
            # The workload is in the file and does not mount these: Fluentd never sees them.
            for configmap in unmounted:
                self.notes.append((configmap.line, f"ConfigMap {configmap.name} is not read: "
                                                   f"{relevant[0].kind} {relevant[0].name} "
                                                   "does not mount it, so Fluentd does not "
                                                   "see it either"))
        elif unmounted:
            self.by_convention(unmounted)
        return Layout(MemoryFiles(self.files), self.roots(config_path), self.notes)

    def by_convention(self, unmounted: list[ConfigMap]) -> None:
        """Mount the one leftover ConfigMap where the only unfilled include points."""
        empty = self.unfilled_directories()
        names = ", ".join(f"{c.name} (line {c.line})" for c in unmounted)
        if len(unmounted) == 1 and len(empty) == 1:
            directory = next(iter(empty))
            self.place(unmounted[0], directory)
            self.notes.append((unmounted[0].line, f"ConfigMap {unmounted[0].name} is read as "
                                                  f"the files of {directory}, the directory "
                                                  "the root includes and nothing else fills "
                                                  "(no workload in this file mounts it)"))
            return
        where = (f"the includes of {', '.join(sorted(empty))} could each be any of them"
                 if empty else "nothing here includes them")
        raise self.fail(unmounted[0].line, f"where ConfigMap(s) {names} are mounted is "
                                           f"unknown: no workload in this file mounts them and "
                                           f"{where}; add the DaemonSet or Deployment that "
                                           "mounts them")

    def unfilled_directories(self) -> dict[str, int]:
        """Directories that includes read from and no laid-out file is in (-> first line)."""
        filled = {posixpath.dirname(p) for p in self.files}
        empty: dict[str, int] = {}
        for path, source in sorted(self.files.items()):
            for target, line in include_targets(source, path):
                directory = posixpath.dirname(target)
                if directory not in filled and not is_glob(directory):
                    empty.setdefault(directory, line)
        return empty

    def roots(self, config_path: str | None) -> list[str]:
        if config_path is not None and config_path in self.files:
            return [config_path]
        found = [p for p in sorted(self.files) if posixpath.basename(p) in ROOT_NAMES]
        by_rank = sorted(found, key=lambda p: ROOT_NAMES.index(posixpath.basename(p)))
        if by_rank:
            return [by_rank[0]]
        # No root file: the image's own fluent.conf includes the mounted directory. Every
        # file is read in path order, except those another file includes (never twice).
        included: set[str] = set()
        files = MemoryFiles(self.files)
        for path, source in self.files.items():
            for target, _ in include_targets(source, path):
                included.update(files.glob(target) if is_glob(target) else [target])
        roots = [p for p in sorted(self.files) if p not in included and p.endswith(".conf")
                 and not posixpath.basename(p).startswith(".")]
        line = min(s.first_line for s in self.files.values())
        self.notes.append((line, "no root file (" + ", ".join(ROOT_NAMES) + "): every .conf "
                                 "entry is read in name order, as the image's @include of "
                                 "the mounted directory would; entries another entry includes "
                                 "are read only there"))
        return roots


def include_targets(source: SourceText, path: str) -> list[tuple[str, int]]:
    """``@include`` targets of one file as absolute pod paths, with their manifest line.

    A quick scan, used only to lay files out; the parser reads includes exactly later. An
    embedded-Ruby include (``#{ENV['X'] || 'systemd'}.conf``) is read with its fallback.
    """
    out = []
    for match in _INCLUDE.finditer(source.text):
        target = match.group(1).split(" #")[0].strip().strip("\"'")
        target = re.sub(r"#\{ENV\[['\"]\w+['\"]\]\s*\|\|\s*['\"]([^'\"]*)['\"]\s*\}", r"\1",
                        target)
        if "#{" in target or "://" in target.removeprefix("file://"):
            continue
        target = target.removeprefix("file://")
        line = source.first_line + source.text.count("\n", 0, match.start())
        out.append((posixpath.normpath(posixpath.join(posixpath.dirname(path), target)), line))
    return out

