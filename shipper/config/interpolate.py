"""``${ENV_VAR}`` interpolation in config strings.

Secrets (API keys, passwords) and per-node values reach the config through the environment of
the pod, so the YAML in a ConfigMap can stay free of them. The syntax is the familiar shell and
docker-compose subset, nothing more:

- ``${NAME}``: the value of ``NAME``; a problem if it is not set.
- ``${NAME:-default}``: the value of ``NAME``, or ``default`` if it is unset or empty.
- ``$${``: a literal ``${`` (so ``$${HOME}`` stays the text ``${HOME}``).

Any other ``$`` is literal. Names follow the shell rule ``[A-Za-z_][A-Za-z0-9_]*``; a malformed
reference (``${}``, ``${1X}``, an unclosed ``${``) is reported rather than left in place, because
an unexpanded reference silently sent to a server is a worse failure than a refused config.
Substitution happens once: a value that itself contains ``${`` is not expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{.*", re.DOTALL)
_REFERENCE_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)
SYNTAX_HINT = "write ${NAME} or ${NAME:-default}, or $${ for a literal ${"


@dataclass(frozen=True)
class Interpolated:
    """The outcome of interpolating one string.

    ``substituted`` is true when at least one reference was replaced: the loader then reads the
    text again for the target type (``port: ${PORT}`` becomes an int), which it must not do for
    text the operator wrote literally.
    """

    text: str
    substituted: bool = False
    missing: tuple[str, ...] = ()
    malformed: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every reference could be resolved."""
        return not self.missing and not self.malformed


def interpolate(text: str, environ: Mapping[str, str]) -> Interpolated:
    """Replace every ``${...}`` reference in ``text`` using ``environ``; report what failed."""
    if "$" not in text:
        return Interpolated(text)
    pieces: list[str] = []
    missing: list[str] = []
    malformed: list[str] = []
    substituted = False
    position = 0
    for match in _TOKEN_RE.finditer(text):
        pieces.append(text[position:match.start()])
        position = match.end()
        token = match.group(0)
        if token == "$${":
            pieces.append("${")
            continue
        reference = match.group(1)
        parsed = _REFERENCE_RE.match(reference) if reference is not None else None
        if parsed is None:
            malformed.append(token)
            pieces.append(token)
            continue
        name, default = parsed.group(1), parsed.group(2)
        value = environ.get(name)
        if default is not None and not value:
            value = default
        if value is None:
            missing.append(name)
            pieces.append(token)
            continue
        pieces.append(value)
        substituted = True
    pieces.append(text[position:])
    return Interpolated("".join(pieces), substituted, tuple(missing), tuple(malformed))
