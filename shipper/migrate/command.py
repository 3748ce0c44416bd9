"""``shipper migrate-fluentd fluent.conf [-o shipper.yaml]``: the command-line side.

Kept apart from ``shipper/cli.py`` so that file only registers the command. Warnings and the
list of moved secrets go to stderr as ``file:line: warning: ...`` (one per line, for editors
and CI); the YAML goes to ``-o`` or stdout. Exit codes: 0 converted, 1 converted with warnings,
2 the input cannot be read (``file:line: message``) or ``-o`` cannot be written (one line);
nothing is written then.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from pathlib import Path

from shipper.migrate.configmap import ROOT_NAMES as ROOT_FILE_NAMES


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
        problem = _unwritable(args.output, args.config)
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
        included = next((p for p in result.inputs[1:] if _same_file(Path(args.output),
                                                                    Path(p))), None)
        if included is not None:
            print(f"{args.output}: cannot write: it is {included}, which the configuration "
                  "includes; write the conversion somewhere else", file=sys.stderr)
            return EXIT_PARSE_ERROR
        try:
            write_atomically(Path(args.output), result.text)
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


def _unwritable(output: str, config: str) -> str | None:
    """Why ``-o`` cannot be written, checked before converting (no traceback, no output).

    Refused: an empty name, a name ending in ``/`` (a directory), a directory, anything but
    a regular file (a FIFO would block, a device would be written into), and the input
    itself (it would be replaced by its own conversion).
    """
    if not output:
        return "the name is empty"
    target = Path(output)
    if output.endswith(("/", os.sep)):
        if not target.is_dir():
            return f"{output} names a directory, which does not exist"
        return "it is a directory; give a file name"
    if target.is_dir():
        return "it is a directory"
    if target.exists() and not target.is_file():
        return "not a regular file"
    parent = target.parent
    if not parent.is_dir():
        return f"the directory {parent} does not exist"
    if target.exists() and _same_file(target, Path(config)):
        return "it is the input file; write the conversion somewhere else"
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        if b.is_dir():
            return a.resolve().parent == b.resolve() and a.name in ROOT_FILE_NAMES
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``target``, then rename it over ``target``.

    A failure part way (disk full, a file size limit) leaves the previous file as it was and
    no partial file behind; the new file keeps the old one's permissions.
    """
    directory = target.parent
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
