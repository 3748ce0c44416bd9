"""Command line: ``shipper run``, ``check``, ``demo``, ``dashboards``, ``tap``,
``migrate-fluentd``.

``check`` exits 2 and prints ``file:line: key.path: what is wrong`` for every problem, so CI
and humans see all mistakes at once. ``run`` drains on SIGTERM/SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from shipper import __version__
from shipper.dashboards.commands import add_parser as add_dashboards_parser
from shipper.errors import ConfigError, ConfigProblem, ShipperError
from shipper.migrate.command import add_parser as add_migrate_parser
from shipper.speedups import IMPLEMENTATION
from shipper.tap.cli import add_parser as add_tap_parser

if TYPE_CHECKING:
    from shipper.config.model import AgentConfig

log = logging.getLogger("shipper")

EXIT_CONFIG = 2

#: What ``shipper --help`` says first (the module docstring is for readers of the code).
DESCRIPTION = """\
A Kubernetes log shipper: tails container logs, adds Kubernetes metadata and
delivers every line exactly once to Elasticsearch, OpenSearch, Logz.io or a
forward server."""
EPILOG = """start here:
  shipper demo                       ship a generated node's logs, show the searches
  shipper check -c shipper.yaml      validate a config (exit 2 listing every problem)
  shipper run -c shipper.yaml        run the agent (SIGTERM drains, exit 0)
  shipper migrate-fluentd fluent.conf -o shipper.yaml

`shipper COMMAND --help` describes each command."""


def load(path: str) -> object:
    from shipper.app import load_agent_config

    return load_agent_config(path)


def state_dir_line(config: AgentConfig, *, create: bool) -> str | None:
    """One ``file: state_dir: problem`` line if the state directory is unusable, else None;
    ``create``: make it and prove it writable (``run``), or only look (``check``)."""
    from shipper.config.statedir import prepare_state_dir, state_dir_problem

    problem = state_dir_problem(config.state_dir)
    if problem is None and create:
        try:
            prepare_state_dir(config.state_dir)
        except ShipperError as exc:
            problem = str(exc)
    if problem is None:
        return None
    return str(ConfigProblem(config.config_file or "<config>", None, "state_dir", problem))


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = cast("AgentConfig", load(args.config))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    line = None if args.config_only else state_dir_line(config, create=False)
    if line is not None:
        print(line, file=sys.stderr)
        return EXIT_CONFIG
    if not args.config_only:  # TLS, CA, token files: present and readable on this host
        from shipper.config.hostfiles import unreadable_files

        missing = unreadable_files(config, config.config_file or args.config)
        for problem in missing:
            print(problem, file=sys.stderr)
        if missing:
            return EXIT_CONFIG
    print(f"{args.config}: ok")
    return 0


async def run_agent(config: object) -> None:
    from shipper.app import Agent
    from shipper.stopping import stop_on_signals
    from shipper.tuning import tune_for_throughput

    agent = Agent(config)  # type: ignore[arg-type]
    tune_for_throughput()
    await agent.run(stop_on_signals())


def cmd_run(args: argparse.Namespace) -> int:
    """One agent; with ``workers: N > 1`` a supervisor of N worker processes, each of which
    is this same command with ``SHIPPER_WORKER=<i>/<N>`` set (``shipper.workers``)."""
    from shipper.logs import configure_logging, flush_repeated
    from shipper.workers.role import WorkerRole

    try:
        config = cast("AgentConfig", load(args.config))
        role = WorkerRole.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    line = state_dir_line(config, create=True)
    if line is not None:  # one line, not a traceback from whichever component is first
        print(line, file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log_level,
                      fields={"worker": role.index} if role is not None else None)
    if role is None and config.workers > 1:
        from shipper.workers.supervisor import run_supervisor

        try:
            return run_supervisor(args.config, config)
        finally:
            flush_repeated()
    from shipper.blocking import exit_if_stuck, run_bounded

    code = 1
    try:
        if role is not None:
            from shipper.workers.worker import run_worker

            run_bounded(run_worker(config, role))
        else:
            _single_agent_state(config)
            run_bounded(run_agent(config))
        code = 0
    except ShipperError as exc:
        log.error(str(exc), extra={"event": "agent_failed"})
    finally:
        flush_repeated()  # the counts of repeated warnings still held back
        # A thread blocked on a hung disk or network call must not keep the process alive
        # past the shutdown deadline (the kubelet would SIGKILL it).
        exit_if_stuck(code)
    return code


def _single_agent_state(config: AgentConfig) -> None:
    """Bring back the checkpoints and buffers of an earlier ``workers: N`` run (no-op when
    there never was one)."""
    from shipper.workers.statedir import prepare_for

    prepare_for(config, 1)


def cmd_demo(args: argparse.Namespace) -> int:
    from shipper.demo.run import run_demo

    return run_demo(es_url=args.es, workdir=Path(args.workdir), lines=args.lines, seed=args.seed)


def cmd_docs(args: argparse.Namespace) -> int:
    from shipper.app import render_config_reference

    text = render_config_reference()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shipper", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"shipper {__version__} ({IMPLEMENTATION} per-line path)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run the agent")
    p.add_argument("-c", "--config", required=True, help="path to shipper.yaml")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("check", help="validate a config file and that this host can use its "
                       "state_dir; exit 2 listing every problem")
    p.add_argument("-c", "--config", required=True, help="path to shipper.yaml")
    p.add_argument("--config-only", action="store_true",
                   help="validate the file only, not state_dir on this host (CI checking a "
                        "config meant for the nodes)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("demo", help="ship a generated Istio node log tree into Elasticsearch")
    p.add_argument("--es", default=None,
                   help="Elasticsearch URL; default: start an embedded server")
    p.add_argument("--workdir", default="demo-run", help="where logs and state are written")
    p.add_argument("--lines", type=int, default=20_000, help="log records to generate")
    p.add_argument("--seed", type=int, default=42, help="generator seed")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("config-docs", help="write the configuration reference (Markdown)")
    p.add_argument("-o", "--output", default="-", help="file to write, '-' for stdout")
    p.set_defaults(func=cmd_docs)
    add_dashboards_parser(sub)
    add_tap_parser(sub)
    add_migrate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
