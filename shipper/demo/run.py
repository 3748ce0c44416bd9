"""``shipper demo``: generate an Istio node's logs, ship them, show what Kibana would show.

Runs the real agent (same config loader, same pipeline, same Elasticsearch output) against the
embedded server or a cluster given with ``--es``, waits until every generated record is
settled, and prints the searches a user would run first. Exits non-zero if the index does not
hold every record exactly once.

The generated lines are dated just before now (fixed offsets from a base instant, so the
same seed gives the same lines relative to that instant): Kibana's default time range and
``dashboards check``'s ``now-24h`` show them. Every pod of a run carries the label
``shipper-demo-run: <run id>``, so the counts are of this run's documents only, even on a
cluster that already holds ``logstash-*`` data or an earlier demo run.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from shipper.app import Agent, load_agent_config
from shipper.demo.embedded_es import EmbeddedElasticsearch
from shipper.demo.esquery import SearchClient
from shipper.demo.k8s_api import KubeApiServer
from shipper.demo.k8s_objects import demo_objects
from shipper.demo.loggen import generate_node_logs
from shipper.demo.manifest import FileEntry, Manifest
from shipper.errors import ShipperError
from shipper.logs import configure_logging
from shipper.tap.excerpt import TapExcerpt
from shipper.tap.query import TapQuery

INDEX_PATTERN = "logstash-*"
TIMEOUT_SECS = 900.0
#: Per request of the summary: a free-text search over every field of a busy or small
#: cluster can take far longer than an indexing request.
QUERY_TIMEOUT_SECS = 120.0
NODE_NAME = "demo-node-1"
#: Pod label naming the run, so a run counts its own documents (kubernetes.labels.<this>).
RUN_LABEL = "shipper-demo-run"
#: Container kinds whose pods get a multiline annotation (the preset it names).
MULTILINE_HINTS = {"spring": "java"}
#: The lines start this long before the demo starts and span about ten minutes (a file of few
#: lines a little more), so they end before "now" and Kibana's default "Last 15 minutes"
#: shows most of them when the demo finishes.
LEAD_TIME = timedelta(minutes=15)


def demo_base_time(now: datetime | None = None) -> datetime:
    """The instant the demo's lines start from: ``LEAD_TIME`` before now, whole seconds."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    return now - LEAD_TIME


def run_scope(run_id: str) -> dict[str, Any]:
    """The filter matching one run's documents."""
    return {"term": {f"kubernetes.labels.{RUN_LABEL}": run_id}}

CONFIG_TEMPLATE = """\
# Written by `shipper demo`; run it yourself with: shipper run -c {config}
state_dir: {state_dir}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
filters:
  k8s:
    type: kubernetes_metadata
    kubernetes_url: "{k8s_url}"
    node_name: {node}
  envoy:
    type: envoy_access_log
outputs:
  es:
    type: elasticsearch
    hosts: ["{es_url}"]
    logstash_format: true
    logstash_prefix: logstash
    buffer: {{chunk_limit_bytes: 2MiB, total_limit_bytes: 64MiB, flush_interval_secs: 1}}
telemetry: {{listen: "127.0.0.1:0", tap: {{enabled: true}}}}
shutdown_deadline_secs: 20
"""


async def ship(config_path: Path, expected: int, out: TextIO) -> Agent:
    config = load_agent_config(config_path)
    agent = Agent(config)
    # Subscribed before the first record flows; printed with `shipper tap`'s text format.
    tap = TapExcerpt(agent.tap, TapQuery.build(code="500-599"),
                     "shipper tap --response-code 500-599")
    stop = asyncio.Event()
    runner = asyncio.create_task(agent.run(stop))
    started = time.monotonic()
    last_print = 0.0
    tty = out.isatty()
    try:
        while not runner.done():
            await asyncio.sleep(0.25)
            done = agent.settled_records("es")
            now = time.monotonic()
            if now - last_print >= 1.0 or done >= expected:
                rate = done / max(now - started, 1e-9)
                line = f"  indexed {int(done):>8,} / {expected:,} records ({rate:,.0f}/s)"
                # Rewrite one line on a terminal; one line per second in a log.
                out.write(f"\r{line}   " if tty else f"{line}\n")
                out.flush()
                last_print = now
            if done >= expected:
                break
            if now - started > TIMEOUT_SECS:
                raise TimeoutError(f"not every record was indexed within {TIMEOUT_SECS:.0f}s")
    finally:
        if tty:
            out.write("\n")
        stop.set()
        await runner
    tap.write(out)
    return agent


def print_summary(client: SearchClient, expected: int, out: TextIO, run_id: str,
                  manifest: Manifest | None = None, hinted: list[FileEntry] | None = None,
                  ) -> bool:
    """``hinted``: the files joined with a multiline preset (their pods are annotated)."""
    client.refresh(INDEX_PATTERN)
    scope = run_scope(run_id)
    total = client.count(INDEX_PATTERN, scope)
    traces_ok = _print_traces(client, scope, hinted or [], out)
    everything = client.count(INDEX_PATTERN)
    namespaces = client.terms(INDEX_PATTERN, "kubernetes.namespace_name", scope=scope)
    containers = client.terms(INDEX_PATTERN, "kubernetes.container_name", scope=scope)
    istio = client.kibana_count(INDEX_PATTERN, 'kubernetes.namespace_name : "istio-system"',
                                scope)
    envoy = client.kibana_count(INDEX_PATTERN, "envoy", scope)
    out.write(f"\nDocuments of this run ({RUN_LABEL}: {run_id}) per namespace:\n")
    for key, n in sorted(namespaces.items()):
        out.write(f"  {key:<28} {n:>8,}\n")
    out.write("Documents per container:\n")
    for key, n in sorted(containers.items()):
        out.write(f"  {key:<28} {n:>8,}\n")
    out.write(f'\nKibana search  kubernetes.namespace_name : "istio-system"  -> {istio:,} hits\n')
    out.write(f"Free-text search  envoy  -> {envoy:,} hits\n")
    for query in ('kubernetes.labels.app : "reviews"', 'level : "error"'):
        out.write(f"Kibana search  {query}  -> "
                  f"{client.kibana_count(INDEX_PATTERN, query, scope):,} hits\n")
    ok = total == expected and traces_ok
    verdict = "every line indexed exactly once" if ok else "MISMATCH"
    generated = manifest.total_records if manifest is not None else expected
    joined = f" (stack traces joined: {expected:,} documents expected)" \
        if generated != expected else ""
    out.write(f"\nTotal documents of this run {total:,} for {generated:,} generated records"
              f"{joined}: {verdict}\n")
    if everything > total:
        out.write(f"({everything - total:,} other documents in {INDEX_PATTERN}: earlier runs or "
                  f"other data; search {RUN_LABEL} to tell them apart.)\n")
    return ok


def _print_traces(client: SearchClient, scope: dict[str, Any], hinted: list[FileEntry],
                  out: TextIO) -> bool:
    """The annotated containers' documents: each stack trace one document, every other
    line its own (so their count is records - trace lines + traces)."""
    if not hinted:
        return True
    events = sum(f.events for f in hinted)
    ok = True
    for f in hinted:
        query = {"bool": {"filter": [scope,
                                     {"term": {"kubernetes.pod_name": f.pod}},
                                     {"term": {"kubernetes.container_name": f.container}}]}}
        docs = client.count(INDEX_PATTERN, query)
        ok = ok and docs == f.records - f.event_lines + f.events
    lines = sum(f.event_lines for f in hinted)
    names = ", ".join(sorted({f.container for f in hinted}))
    if ok:
        out.write(f"\nstack traces: {events:,} events, each one document ({lines:,} lines of "
                  f"{names}, annotation shipper.io/multiline.<container>: java)\n")
    else:
        out.write(f"\nstack traces: {events:,} events, but the documents of {names} do not "
                  "add up: MISMATCH\n")
    return ok


def print_dashboard_check(es_url: str, base_time: str, out: TextIO,
                          timeout_secs: float = QUERY_TIMEOUT_SECS) -> bool:
    """Run every panel of the shipped dashboards over the demo's data (``dashboards check``)."""
    from shipper.dashboards.check import check_and_report
    from shipper.dashboards.http import HttpClient
    from shipper.dashboards.objects import all_objects

    start = datetime.fromisoformat(base_time.replace("Z", "+00:00"))
    # The generated lines span about ten minutes after base_time, ending before now.
    time_from = (start - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    time_to = "now"
    out.write("\nDashboard panels over the demo data (shipper dashboards check):\n")
    return check_and_report(HttpClient(es_url, timeout_secs=timeout_secs), all_objects(),
                            time_from, time_to, out, color=out.isatty())


def summarize(es_url: str, expected: int, out: TextIO, run_id: str,
              manifest: Manifest, hinted: list[FileEntry],
              timeout_secs: float = QUERY_TIMEOUT_SECS) -> bool:
    """The searches and the dashboard check; False (a failed demo, exit 1) when one of them
    fails, with a message naming the query and the server instead of a traceback."""
    try:
        client = SearchClient(es_url, timeout_secs)
        ok = print_summary(client, expected, out, run_id, manifest, hinted)
        return print_dashboard_check(es_url, manifest.base_time, out, timeout_secs) and ok
    except (ShipperError, OSError) as exc:
        out.write(f"\nThe records were shipped, but a search failed: {exc}\n"
                  f"Demo not verified (exit 1). Search {INDEX_PATTERN} for "
                  f"{RUN_LABEL}: {run_id} once the server answers.\n")
        return False


def run_demo(es_url: str | None, workdir: Path, lines: int, seed: int,
             out: TextIO = sys.stdout) -> int:
    configure_logging("warning")
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    server = None
    k8s_api = KubeApiServer()
    if es_url is None:
        out.write("Starting the embedded Elasticsearch-compatible server ...\n")
        server = EmbeddedElasticsearch(workdir / "es-data")
        es_url = server.start()
        out.write(f"  listening on {es_url}\n")
    try:
        out.write(f"Generating a node log tree ({lines:,} records, seed {seed}) ...\n")
        manifest = generate_node_logs(workdir / "node", seed=seed, lines=lines,
                                      base_time=demo_base_time())
        logs = workdir / "node" / "var" / "log" / "containers"
        run_id = secrets.token_hex(4)
        namespaces, pods = demo_objects(manifest, NODE_NAME)
        hinted = [f for f in manifest.files if f.kind in MULTILINE_HINTS]
        for pod in pods:
            pod["metadata"]["labels"][RUN_LABEL] = run_id
            for f in hinted:  # the Java app's stack traces: one document each
                if (f.namespace, f.pod) == (pod["metadata"]["namespace"],
                                            pod["metadata"]["name"]):
                    pod["metadata"].setdefault("annotations", {})[
                        f"shipper.io/multiline.{f.container}"] = MULTILINE_HINTS[f.kind]
        expected = manifest.total_records - sum(f.event_lines - f.events for f in hinted)
        k8s_api.state.load(namespaces, pods)
        out.write(f"Serving its pods from a local Kubernetes API on {k8s_api.start()}\n")
        config_path = workdir / "shipper.yaml"
        config_path.write_text(CONFIG_TEMPLATE.format(
            config=config_path, state_dir=workdir / "state", logs=logs, es_url=es_url,
            k8s_url=k8s_api.url, node=NODE_NAME))
        out.write(f"  {len(manifest.files)} container log files under {logs}, lines from "
                  f"{manifest.base_time} (about ten minutes), pod label {RUN_LABEL}: {run_id}\n")
        out.write(f"Shipping with {config_path} ...\n")
        asyncio.run(ship(config_path, expected, out))
        ok = summarize(es_url, expected, out, run_id, manifest, hinted)
    finally:
        k8s_api.stop()
        if server is not None:
            out.write("Stopping the embedded server.\n")
            server.stop()
    return 0 if ok else 1
