"""Watch the mesh's requests live: Envoy access logs from every agent, filtered in the agents.

    shipper tap workload/orders --ns shop --response-code 500-599 --pair
    shipper tap ns/shop --method POST -o json | jq .envoy.path
    shipper tap --agent http://127.0.0.1:24231 pod/orders-7d4b9c5f8-x2x5z

Without ``--agent`` the agents are found through the Kubernetes API (the DaemonSet's pods)
and reached through the API server's pod proxy. Filters run inside the agents, so only
matching requests cross the network. Stops on Ctrl-C, after ``--count`` lines, or when every
stream has ended.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from shipper.tap import client as tapclient
from shipper.tap.pair import Item, Pairer
from shipper.tap.query import TapQuery
from shipper.tap.render import json_line, text_line

_KINDS = {"ns": "namespace", "namespace": "namespace", "workload": "workload",
          "deploy": "workload", "deployment": "workload", "pod": "pod", "po": "pod"}
_POLL_SECS = 0.25


def add_parser(sub: Any) -> None:
    """Register ``shipper tap`` on the top-level subcommands."""
    p = sub.add_parser("tap", help="stream live Envoy access logs from the agents",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", default="",
                   help="ns/NAME, workload/NAME or pod/NAME: requests to or from it")
    p.add_argument("--ns", "--namespace", dest="ns", default="", help="namespace")
    p.add_argument("--method", default="", help="HTTP methods, comma separated")
    p.add_argument("--response-code", default=None,
                   help="codes or ranges, e.g. 500-599,429 or 5xx (0 = no response, "
                        "else 100-599); leave it out for any code")
    p.add_argument("--path", default="", help="path prefix")
    p.add_argument("--authority", default="", help="Host / :authority (any port without one)")
    p.add_argument("--direction", choices=("inbound", "outbound"), default="",
                   help="only lines logged by the server side (inbound) or client side")
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.add_argument("--pair", action="store_true",
                   help="join the client and server lines of each request (by request id)")
    p.add_argument("--pair-window", type=float, default=5.0, metavar="SECS",
                   help="how long a line waits for its partner before it is printed alone")
    p.add_argument("-n", "--count", type=int, default=0, help="stop after this many lines")
    p.add_argument("--agent", action="append", default=[], metavar="URL",
                   help="tap this agent (repeatable); default: discover them in Kubernetes")
    p.add_argument("--agent-namespace", default=tapclient.DEFAULT_NAMESPACE,
                   help="namespace of the agent DaemonSet")
    p.add_argument("--selector", default=tapclient.DEFAULT_SELECTOR,
                   help="label selector of the agent pods")
    p.add_argument("--port", type=int, default=tapclient.DEFAULT_PORT,
                   help="agent port serving /tap (telemetry port, or telemetry.tap.listen's)")
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--context", default=None)
    p.set_defaults(func=cmd_tap)


def build_query(args: argparse.Namespace) -> TapQuery:
    """The server-side filter from the arguments; ValueError says what is wrong."""
    fields = {"namespace": args.ns}
    if args.target:
        kind, sep, name = args.target.partition("/")
        if not sep or kind not in _KINDS or not name:
            raise ValueError(f"target {args.target!r}: expected ns/NAME, workload/NAME or "
                             "pod/NAME")
        key = _KINDS[kind]
        if key == "namespace" and args.ns and args.ns != name:
            raise ValueError(f"target {args.target!r} contradicts --ns {args.ns}")
        fields[key] = name
    code = args.response_code
    if code is not None and not code.replace(",", "").strip():
        # "" is usually an unset shell variable: tapping every code would hide the mistake
        raise ValueError(f"--response-code {code!r} is empty: give codes or ranges (e.g. "
                         "500-599,429 or 5xx), or leave the option out for any code")
    return TapQuery.build(method=args.method, code=code or "", path=args.path,
                          authority=args.authority, direction=args.direction, **fields)


def cmd_tap(args: argparse.Namespace) -> int:
    try:
        query = build_query(args)
    except ValueError as exc:
        print(f"shipper tap: {exc}", file=sys.stderr)
        return 2
    qs = query.to_query_string()
    try:
        agents = [tapclient.direct_agent(url, qs) for url in args.agent] if args.agent else \
            tapclient.discover_agents(qs, args.agent_namespace, args.selector, args.port,
                                      args.kubeconfig, args.context)
    except tapclient.TapError as exc:
        print(f"shipper tap: {exc}", file=sys.stderr)
        return 1
    pairer = Pairer(args.pair_window) if args.pair else None
    render = json_line if args.output == "json" else text_line
    try:
        return run(agents, pairer, render, sys.stdout, sys.stderr, args.count)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `| head`: the reader is gone, not an error
        sys.stderr.close()
        return 0


def run(agents: list[tapclient.AgentStream], pairer: Pairer | None, render: Any,
        out: TextIO, err: TextIO, count: int = 0, max_secs: float = 0.0) -> int:
    """Merge the streams and print until done; exit code 1 if every agent failed."""
    merger = tapclient.Merger(agents)
    merger.start()
    try:
        return _loop(merger, len(agents), pairer, render, out, err, count, max_secs)
    finally:
        merger.close()


def _loop(merger: tapclient.Merger, agents: int, pairer: Pairer | None, render: Any,
          out: TextIO, err: TextIO, count: int, max_secs: float) -> int:
    printed = failures = 0
    deadline = time.monotonic() + max_secs if max_secs else None

    def emit(items: list[Item]) -> bool:
        nonlocal printed
        for item in items:
            out.write(render(item) + "\n")
            printed += 1
            if count and printed >= count:
                out.flush()
                return True
        out.flush()
        return False

    while merger.running > 0:
        if deadline is not None and time.monotonic() > deadline:
            break
        item = merger.get(_POLL_SECS)
        if isinstance(item, tapclient.Ended):
            if item.error:
                failures += 1
                err.write(f"shipper tap: {item.error}\n")
            continue
        ready: list[Item] = []
        if item is not None:
            ready = pairer.add(item) if pairer is not None else [item]
        if pairer is not None:
            ready += pairer.expire()
        if emit(ready):
            return 0
    if pairer is not None:
        emit(pairer.drain())
    return 1 if failures == agents else 0
