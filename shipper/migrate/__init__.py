"""``shipper migrate-fluentd``: convert a Fluentd configuration into a shipper configuration.

The pipeline is parse (``parser``: Fluentd syntax with includes and embedded-Ruby environment
lookups, every value located by file and line) -> convert (``convert`` and the per-plugin
mappers, which report whatever has no equivalent) -> write (``emit``: commented YAML). It reads
files and never touches the network, the environment or any server: the result is checked by
the same loader as ``shipper check``, by the operator or by the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shipper.errors import FluentdSyntaxError
from shipper.migrate.configmap import ROOT_NAMES, is_manifest, load_manifest
from shipper.migrate.convert import convert
from shipper.migrate.document import Document
from shipper.migrate.emit import render
from shipper.migrate.files import MAX_INPUT_BYTES, Budget, DiskFiles, Files
from shipper.migrate.findings import Findings
from shipper.migrate.model import Section, Value
from shipper.migrate.parser import _include_one

EXIT_OK = 0
EXIT_WARNINGS = 1
EXIT_PARSE_ERROR = 2


@dataclass
class Migration:
    """The outcome of one conversion."""

    text: str  # the shipper YAML, with its header comments
    document: Document
    findings: Findings
    env_used: dict[str, str]  # environment variables the config reads -> first place used
    inputs: tuple[str, ...] = ()  # the files read from disk (the root and its includes)

    @property
    def exit_code(self) -> int:
        """0: converted exactly; 1: converted, but review the warnings (and moved secrets)."""
        return EXIT_WARNINGS if self.findings.needs_review else EXIT_OK


#: Section names Fluentd accepts at the top level, and inside ``<label>`` / ``<worker>``.
TOP_SECTIONS = ("source", "match", "filter", "label", "system", "worker")
INNER_SECTIONS = {"label": ("match", "filter"), "worker": ("source", "match", "filter", "label")}


def read_fluentd(path: str, findings: Findings, workload: str | None = None,
                 disk: DiskFiles | None = None) -> Section:
    """Parse a Fluentd file (or manifests holding Fluentd files) with its includes.

    Raises ``FluentdSyntaxError`` (``file:line: message``) when it cannot be read, is larger
    than ``MAX_INPUT_BYTES`` (includes counted), or a section name is not one Fluentd knows.
    ``workload`` picks one workload's configuration from manifests holding several.
    """
    files: Files = disk if disk is not None else DiskFiles(Budget())
    if os.path.isdir(path):
        path = _root_in_directory(path)
    roots = [path]
    if is_manifest(path):
        layout = load_manifest(path, MAX_INPUT_BYTES, workload)
        files, roots = layout.files, layout.roots
        for line, message in layout.notes:
            findings.note(f"{path}:{line}", message)
    root = Section("ROOT", Value(), path, 1)
    for entry in roots:
        _include_one(entry, root, findings, files, stack=())
    _check_sections(root.children, TOP_SECTIONS, "at the top level")
    return root


def _root_in_directory(directory: str) -> str:
    """A directory like ``/fluentd/etc``: its root file, as Fluentd would be started on."""
    for name in ROOT_NAMES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise FluentdSyntaxError(directory, 1, f"no root file ({', '.join(ROOT_NAMES)}) in this "
                                           "directory; give the file Fluentd is started with")


def _check_sections(sections: list[Section], allowed: tuple[str, ...], where: str) -> None:
    """A misspelt section (``<sourc>``) is refused like Fluentd does, not converted partly."""
    for section in sections:
        if section.name not in allowed:
            raise FluentdSyntaxError(section.file, section.line,
                                     f"unknown section <{section.name}> {where}; Fluentd "
                                     f"accepts {', '.join(f'<{n}>' for n in allowed)} there")
        inner = INNER_SECTIONS.get(section.name)
        if inner is not None:
            _check_sections(section.children, inner, f"in <{section.name}>")


def migrate(path: str, workload: str | None = None) -> Migration:
    """Convert the Fluentd configuration at ``path``; see ``Migration``."""
    findings = Findings()
    disk = DiskFiles(Budget())
    root = read_fluentd(path, findings, workload, disk)
    conv = convert(root, findings)
    text = render(conv.document, findings, conv.env_used, path)
    inputs = (path, *(p for p in disk.included if p != path))
    return Migration(text, conv.document, findings, conv.env_used, inputs)
