"""Turn a validated config back into plain data, with secrets hidden, for ``shipper check``.

Printing the effective configuration (defaults filled in, ``${VAR}`` substituted, sizes in
bytes) is the quickest way to see what the agent will do, and it is exactly where a password
would leak into a terminal or a CI log; fields marked ``metadata={"secret": True}`` are
therefore replaced by ``SECRET_MASK`` unless the caller explicitly asks otherwise.

Given the same registries as the loader, components chosen by ``type:`` get their ``type`` key
back even when their dataclass does not declare one, so the dump reads like the input.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from shipper.config.schema import BY_TYPE, SECRET, TYPE_KEY, Registries, config_fields

SECRET_MASK = "<hidden>"


def to_plain(config: object, *, registries: Registries | None = None,
             reveal_secrets: bool = False) -> Any:
    """Plain dicts, lists and scalars for a config dataclass (ready for YAML or JSON)."""
    return _Dumper(registries or {}, reveal_secrets).plain(config)


class _Dumper:
    def __init__(self, registries: Registries, reveal_secrets: bool) -> None:
        self.registries = registries
        self.reveal_secrets = reveal_secrets

    def plain(self, value: object) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            result: dict[str, Any] = {}
            for f in config_fields(type(value)):
                item = getattr(value, f.name)
                if f.metadata.get(SECRET) and item is not None and not self.reveal_secrets:
                    result[f.name] = SECRET_MASK
                elif f.metadata.get(BY_TYPE) and isinstance(item, dict):
                    registry = self.registries.get(f.metadata[BY_TYPE], {})
                    result[f.name] = {name: self.component(c, registry)
                                      for name, c in item.items()}
                else:
                    result[f.name] = self.plain(item)
            return result
        if isinstance(value, dict):
            return {str(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.plain(v) for v in value]
        if isinstance(value, enum.Enum):
            return value.value
        return value

    def component(self, value: object, registry: Mapping[str, type]) -> Any:
        plain = self.plain(value)
        type_name = next((n for n, cls in registry.items() if cls is type(value)), None)
        if isinstance(plain, dict) and type_name is not None and TYPE_KEY not in plain:
            plain = {TYPE_KEY: type_name, **plain}
        return plain
