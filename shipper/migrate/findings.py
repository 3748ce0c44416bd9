"""What the migration tells the operator: warnings, notes and the secrets it moved.

A *warning* is something the shipper config does not do the way the Fluentd config did (a
plugin or parameter without an equivalent, a literal secret that now needs an environment
variable): the command exits 1 so a pipeline notices. A *note* explains a conversion that is
exact or better (retries that never give up, a setting shipper does not need) and changes no
exit code. Both carry the ``file:line`` of the Fluentd text they are about.

Messages never contain a secret value: they name keys, never repeat what was written there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["warning", "note"]

# Parameter names whose values are credentials: never echoed in a message or a comment.
SECRET_WORDS = ("pass", "secret", "token", "shared_key", "api_key", "auth", "credential",
                "private_key")


def is_secret_key(key: str) -> bool:
    """True when a parameter of this name holds a credential."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


@dataclass(frozen=True, slots=True)
class Finding:
    """One message about one place of the Fluentd configuration."""

    severity: Severity
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


@dataclass(frozen=True, slots=True)
class MovedSecret:
    """A credential written literally in Fluentd, now a ``${env}`` reference."""

    env: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} -> ${{{self.env}}}"


@dataclass
class Findings:
    """Everything the migration reports, in the order it was found."""

    items: list[Finding] = field(default_factory=list)
    secrets: list[MovedSecret] = field(default_factory=list)
    _seen: set[Finding] = field(default_factory=set, repr=False)

    def warn(self, where: str, message: str) -> None:
        self._add(Finding("warning", where, message))

    def note(self, where: str, message: str) -> None:
        self._add(Finding("note", where, message))

    def _add(self, finding: Finding) -> None:
        if finding not in self._seen:  # an included file converted twice says it once
            self._seen.add(finding)
            self.items.append(finding)

    def secret(self, env: str, where: str, what: str) -> None:
        moved = MovedSecret(env, where, what)
        if moved not in self.secrets:
            self.secrets.append(moved)

    def ordered(self) -> list[Finding]:
        """Every finding by file (in the order files were first mentioned), then line."""
        files: dict[str, int] = {}
        for finding in self.items:
            files.setdefault(finding.where.rpartition(":")[0], len(files))

        def key(finding: Finding) -> tuple[int, int]:
            file, _, line = finding.where.rpartition(":")
            return files.get(file, 0), int(line) if line.isdigit() else 0

        return sorted(self.items, key=key)

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.ordered() if f.severity == "warning"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.ordered() if f.severity == "note"]

    @property
    def needs_review(self) -> bool:
        """True when the exit code must say "converted, with warnings"."""
        return bool(self.warnings or self.secrets)
