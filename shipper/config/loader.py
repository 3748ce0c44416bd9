"""Load and validate the agent's YAML configuration file, reporting every problem at once.

This is the only entry point the application needs::

    cfg = load_config(path, source_types=SOURCES, output_types=OUTPUTS)

It reads the file, parses it into a located tree (``yamltree``), substitutes ``${VAR}``
references from ``environ`` (``interpolate``) and converts the tree into ``AgentConfig``
(``schema``). Nothing else is touched: no directory is created, no host resolved, no socket
opened, so ``shipper check`` can validate a config anywhere and the daemon refuses a bad one
before it starts anything. All problems, from YAML syntax to a bad duration, are raised
together as one ``ConfigError`` whose lines read ``file:line: key.path: message``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from shipper.config.model import AgentConfig
from shipper.config.schema import convert
from shipper.config.yamltree import parse_yaml
from shipper.errors import ConfigError, ConfigProblem


def load_config(
    path: str | Path,
    *,
    source_types: Mapping[str, type],
    output_types: Mapping[str, type],
    filter_types: Mapping[str, type] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Read, interpolate and validate the config file at ``path``.

    ``source_types``, ``output_types`` and ``filter_types`` map a ``type:`` value to its config
    dataclass.
    ``environ`` defaults to the process environment. Raises ``ConfigError`` with every
    problem found, including a file that cannot be read.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(file, None, "", f"cannot read file: not UTF-8 ({exc.reason})")
        raise ConfigError([problem]) from exc
    except OSError as exc:
        problem = ConfigProblem(file, None, "", f"cannot read file: {exc.strerror or exc}")
        raise ConfigError([problem]) from exc
    return parse_config_text(text, file=file, source_types=source_types,
                             output_types=output_types, filter_types=filter_types,
                             environ=environ)


def parse_config_text(
    text: str,
    *,
    source_types: Mapping[str, type],
    output_types: Mapping[str, type],
    filter_types: Mapping[str, type] | None = None,
    environ: Mapping[str, str] | None = None,
    file: str = "<config>",
) -> AgentConfig:
    """Validate config ``text`` as if read from ``file`` (used in messages only)."""
    tree, problems = parse_yaml(text, file)
    if tree is None and not problems:
        problems = [ConfigProblem(file, 1, "", "the file is empty; it needs at least "
                                  "'sources' and 'outputs'")]
    if problems and tree is None:
        raise ConfigError(problems)
    config, schema_problems = convert(
        AgentConfig, tree, file=file,
        environ=os.environ if environ is None else environ,
        registries={"source": source_types, "output": output_types,
                    "filter": filter_types or {}},
        line=tree.line if tree is not None else 1)
    # A value the YAML layer already rejected (an unsupported tag...) is not reported twice.
    located = {(p.line, p.key_path) for p in problems}
    problems += [p for p in schema_problems if (p.line, p.key_path) not in located]
    problems.sort(key=lambda p: p.line or 0)
    if problems or config is None:
        raise ConfigError(problems)
    return dataclasses.replace(config, config_file=file)
