"""``shipper migrate-fluentd``: convert a Fluentd configuration into a shipper configuration.

The pipeline is parse (``parser``: Fluentd syntax with includes and embedded-Ruby environment
lookups, every value located by file and line) -> convert (``convert`` and the per-plugin
mappers, which report whatever has no equivalent) -> write (``emit``: commented YAML). It reads
files and never touches the network, the environment or any server: the result is checked by
the same loader as ``shipper check``, by the operator or by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from shipper.migrate.configmap import is_manifest, load_configmap
from shipper.migrate.convert import convert
from shipper.migrate.document import Document
from shipper.migrate.emit import render
from shipper.migrate.files import DiskFiles, Files
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

    @property
    def exit_code(self) -> int:
        """0: converted exactly; 1: converted, but review the warnings (and moved secrets)."""
        return EXIT_WARNINGS if self.findings.needs_review else EXIT_OK


def read_fluentd(path: str, findings: Findings) -> Section:
    """Parse a Fluentd file (or a ConfigMap manifest holding Fluentd files) with its includes.

    Raises ``FluentdSyntaxError`` (``file:line: message``) when it cannot be read.
    """
    files: Files = DiskFiles()
    roots = [path]
    if is_manifest(path):
        files, roots = load_configmap(path)
        if len(roots) > 1:
            findings.note(f"{path}:1", "no fluent.conf entry: every .conf entry is read in "
                                       "name order, as an @include of the mounted directory "
                                       "would")
    root = Section("ROOT", Value(), path, 1)
    for entry in roots:
        _include_one(entry, root, findings, files, stack=())
    return root


def migrate(path: str) -> Migration:
    """Convert the Fluentd configuration at ``path``; see ``Migration``."""
    findings = Findings()
    root = read_fluentd(path, findings)
    conv = convert(root, findings)
    text = render(conv.document, findings, conv.env_used, path)
    return Migration(text, conv.document, findings, conv.env_used)
