"""``shipper migrate-fluentd fluent.conf [-o shipper.yaml]``: the command-line side.

Kept apart from ``shipper/cli.py`` so that file only registers the command. Warnings and the
list of moved secrets go to stderr as ``file:line: warning: ...`` (one per line, for editors
and CI); the YAML goes to ``-o`` or stdout. Exit codes: 0 converted, 1 converted with warnings,
2 the input cannot be read (``file:line: message``) or ``-o`` cannot be written (one line);
nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``migrate-fluentd`` on the CLI's subcommands."""
    p = sub.add_parser(
        "migrate-fluentd",
        help="convert a Fluentd configuration (or its ConfigMap) into a shipper config",
        description="Convert a Fluentd configuration (fluent.conf, td-agent.conf, its "
                    "directory, or Kubernetes manifests: ConfigMaps with the workload that "
                    "mounts them, as helm template renders) into a shipper config. "
                    "Exit 0: converted; 1: converted with warnings; 2: unreadable or "
                    "ambiguous input, or -o cannot be written (nothing is written).")
    p.add_argument("config", help="fluent.conf (with its @include files), its directory, or "
                                  "a manifest file (.yaml, .yml, .json)")
    p.add_argument("-o", "--output", default="-", help="file to write, '-' for stdout")
    p.add_argument("--workload", metavar="NAME",
                   help="in manifests with several Fluentd workloads (a chart's forwarder "
                        "and aggregator), convert the configuration this one mounts")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print notes")
    p.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from shipper.errors import FluentdSyntaxError
    from shipper.migrate import EXIT_PARSE_ERROR, migrate

    if args.output != "-":
        problem = _unwritable(Path(args.output))
        if problem is not None:
            print(f"{args.output}: cannot write: {problem}", file=sys.stderr)
            return EXIT_PARSE_ERROR
    try:
        result = migrate(args.config, args.workload)
    except FluentdSyntaxError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PARSE_ERROR
    if args.output == "-":
        sys.stdout.write(result.text)
    else:
        try:
            Path(args.output).write_text(result.text, encoding="utf-8")
        except OSError as exc:
            print(f"{args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_PARSE_ERROR
    findings = result.findings
    for finding in findings.ordered():
        if finding.severity == "warning" or not args.quiet:
            print(str(finding), file=sys.stderr)
    for secret in findings.secrets:
        print(f"{secret.where}: warning: {secret.what} moved to ${{{secret.env}}}; set it "
              "from a Secret", file=sys.stderr)
    if args.output != "-":
        count = len(findings.warnings) + len(findings.secrets)
        print(f"wrote {args.output} ({count} warning{'s' if count != 1 else ''})",
              file=sys.stderr)
    return result.exit_code


def _unwritable(target: Path) -> str | None:
    """Why ``-o`` cannot be written, checked before converting (no traceback, no output)."""
    if target.is_dir():
        return "it is a directory"
    parent = target.parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    return None
