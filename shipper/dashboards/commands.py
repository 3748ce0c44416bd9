"""``shipper dashboards generate | import | check``: the command-line side of the dashboards.

Kept apart from ``shipper/cli.py`` so that file only adds the group; heavy imports happen in
the handlers. Credentials can come from the environment instead of the command line (where
other users of the machine could read them in the process list): ``SHIPPER_KIBANA_PASSWORD``,
``SHIPPER_KIBANA_API_KEY``, ``SHIPPER_ES_PASSWORD``, ``SHIPPER_ES_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2


def _credentials(parser: argparse.ArgumentParser, product: str) -> None:
    env = f"SHIPPER_{product.upper()}"
    parser.add_argument("--user", help=f"basic-auth user (password: --password or ${env}_PASSWORD)")
    parser.add_argument("--password", help=f"basic-auth password (default: ${env}_PASSWORD)")
    parser.add_argument("--api-key", help=f"API key, id:key or encoded (default: ${env}_API_KEY)")
    parser.add_argument("--ca-file", help="CA bundle (PEM) for an https URL")


def _objects(args: argparse.Namespace) -> list[dict[str, Any]]:
    from shipper.dashboards import ndjson, objects

    if args.file:
        return ndjson.read(Path(f) for f in args.file)
    return objects.all_objects(args.index_pattern)


def _client(args: argparse.Namespace, url: str, product: str) -> Any:
    from shipper.dashboards.http import HttpClient, auth_header
    from shipper.errors import DashboardsError

    env = f"SHIPPER_{product.upper()}"
    api_key = args.api_key or os.environ.get(f"{env}_API_KEY")
    password = args.password or os.environ.get(f"{env}_PASSWORD")
    if args.password and not args.user:
        raise DashboardsError("--password needs --user")
    if args.user and args.api_key:
        raise DashboardsError("give --user/--password or --api-key, not both")
    headers = auth_header(args.user, password, None if args.user else api_key)
    return HttpClient(url, headers, ca_file=args.ca_file)


def cmd_generate(args: argparse.Namespace) -> int:
    from shipper.dashboards import ndjson

    for path in ndjson.write(Path(args.output), args.index_pattern):
        print(f"wrote {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from shipper.dashboards import ndjson
    from shipper.dashboards.importer import Importer
    from shipper.errors import DashboardsError

    try:
        objects = _objects(args)
        importer = Importer(_client(args, args.kibana, "kibana"), wait_secs=args.wait_secs,
                            progress=lambda text: print(text, file=sys.stderr, flush=True))
        importer.wait_until_ready()
        result = importer.import_ndjson(ndjson.render(objects).encode(), args.space)
    except DashboardsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in result.imported:
        print(f"imported {line}")
    for line in result.errors:
        print(f"error: {line}", file=sys.stderr)
    print(f"{len(result.imported)} objects imported, {len(result.errors)} errors")
    return 0 if result.ok else EXIT_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    from shipper.dashboards.check import check_and_report
    from shipper.errors import DashboardsError

    try:
        ok = check_and_report(_client(args, args.es, "es"), _objects(args), args.time_from,
                              args.time_to, sys.stdout, index=args.index,
                              color=sys.stdout.isatty())
    except DashboardsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0 if ok else EXIT_FAILED


def add_parser(sub: Any) -> None:
    """Add ``dashboards`` and its subcommands to the CLI's subparsers."""
    group = sub.add_parser("dashboards", help="Kibana dashboards: generate, import, check")
    commands = group.add_subparsers(dest="dashboards_command", required=True)

    p = commands.add_parser("generate", help="write the saved objects as NDJSON files")
    p.add_argument("-o", "--output", default="dashboards", help="directory to write into")
    p.add_argument("--index-pattern", default="logstash-*", help="index pattern title")
    p.set_defaults(func=cmd_generate)

    p = commands.add_parser(
        "import", help="import the dashboards into Kibana or OpenSearch Dashboards "
                       "(overwrites by id; exits 1 if any object fails)")
    p.add_argument("--kibana", required=True, help="Kibana URL, e.g. http://kibana:5601")
    p.add_argument("--space", default=None, help="Kibana space id (default space if omitted)")
    _credentials(p, "kibana")
    p.add_argument("--file", action="append", help="NDJSON file(s) to import instead of the "
                   "built-in dashboards (repeatable)")
    p.add_argument("--index-pattern", default="logstash-*",
                   help="title of the index pattern the built-in dashboards use")
    p.add_argument("--wait-secs", type=float, default=120.0,
                   help="how long to wait for Kibana to come up (backoff up to 5 s)")
    p.set_defaults(func=cmd_import)

    p = commands.add_parser(
        "check", help="run every panel's query against Elasticsearch; exit 1 if a panel is "
                      "empty or uses a field the mapping lacks")
    p.add_argument("--es", required=True, help="Elasticsearch URL, e.g. http://127.0.0.1:9200")
    p.add_argument("--index", default=None,
                   help="indices to query (default: each panel's index pattern, logstash-*)")
    p.add_argument("--from", dest="time_from", default="now-24h",
                   help="start of the time range (ISO-8601 or date math; default: now-24h)")
    p.add_argument("--to", dest="time_to", default="now",
                   help="end of the time range (default: now)")
    _credentials(p, "es")
    p.add_argument("--file", action="append", help="NDJSON file(s) to check instead of the "
                   "built-in dashboards (repeatable)")
    p.add_argument("--index-pattern", default="logstash-*",
                   help="title of the index pattern the built-in dashboards use")
    p.set_defaults(func=cmd_check)
