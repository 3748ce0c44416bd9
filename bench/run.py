"""Whole-process benchmark of the agent: the rows of the performance issue.

Rows (``--rows``, all by default):

- ``discard``: tail → parse → enrich → encode → discard (the ``null`` output);
- ``java``: the same with ``preset: java`` on the Java apps' files (the cost of joining stack
  traces, next to ``discard``);
- ``blackhole``: the same to Elasticsearch bulk over HTTP, answered by a loopback blackhole;
- ``disk``: the same with ``buffer: {type: disk, fsync: interval}``;
- ``forward``: PackedForward from a local client → enrich → bulk to the blackhole;
- ``steady``: 20k lines/s written in real time for ``--steady-secs`` to ``--es-url`` (else
  the blackhole), with the agent's RSS sampled over time.

Every agent enriches: the workload's pods come from a local Kubernetes API (in this process,
so not counted) and sidecar lines get the Envoy fields. Each row reports lines/s, CPU-seconds
per million records and peak RSS, median of ``--runs``, against the issue's target, and the
page is written to ``--write`` (docs/PERFORMANCE.md).

Each throughput row runs once per implementation of the per-line loops (``--implementations``:
the compiled extension, and Python with ``SHIPPER_PURE_PYTHON=1``), their runs interleaved so
both see the same machine; the steady row runs with the first implementation only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from bench.agent import es_output_yaml
from bench.enrich import load_manifest, start_kube_api
from bench.forward_client import DEFAULT_WINDOW, ensure_frames
from bench.report import (
    RowReport,
    RunResult,
    Target,
    cpu_at_most,
    render,
    rss_flat_at_most,
    stage_table,
)
from bench.rows import (
    REPO,
    Setting,
    Workload,
    blackhole_output,
    discard_output,
    run_forward,
    run_idle,
    run_steady,
    run_tail,
)
from bench.workload import MANIFEST_NAME, generate_workload
from shipper import speedups
from shipper.demo.manifest import Manifest
from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.formats import make_decoder
from shipper.sources.tail.paths import parse_path

ROWS = ("discard", "java", "blackhole", "plain", "disk", "forward", "workers", "steady")
WORKERS = 2  # the workers row: one agent process per core of the benchmark machine
EXTRA_ROWS = ("disk-always", "gzip")  # not in the table; only when asked for
ES_URL_ENV = "SHIPPER_BENCH_ES_URL"
ES_USER_ENV = "SHIPPER_BENCH_ES_USER"
EMBEDDED_NOTE = (
    "The embedded Elasticsearch-compatible server of the test suite keeps every document in "
    "memory (about 10 GB per million documents) and cannot take the six million documents of "
    "a 5-minute run, so without `--es-url` the steady row ships to the blackhole: its memory "
    "figures are the agent's, but they say nothing about a real cluster's back-pressure.")

LABELS = {
    "discard": "tail → parse → enrich → encode → discard",
    "java": "same as the discard row, `multiline: [{preset: java}]` on the Java apps' files",
    "blackhole": "tail → parse → enrich → encode → Elasticsearch bulk (HTTP, loopback "
                 "blackhole)",
    "plain": "tail → parse → encode → bulk blackhole, no enrichment (the path of the "
             "issue's Fluent Bit figure, 6.3 CPU-s per million)",
    "disk": "same as the bulk blackhole row, `buffer: {type: disk, fsync: interval}`",
    "disk-always": "same as the bulk blackhole row, `buffer: {type: disk, fsync: always}`",
    "gzip": "same as the bulk blackhole row, `gzip: true` (compressed request bodies)",
    "forward": "forward input (PackedForward, local client) → enrich → bulk blackhole",
    "workers": f"same as the bulk blackhole row, `workers: {WORKERS}` (files sharded over "
               f"{WORKERS} processes; CPU and memory of all of them)",
}
IMPLEMENTATIONS = (speedups.COMPILED, speedups.PYTHON)
TARGETS: dict[str, Target] = {
    "discard": cpu_at_most(2.5),
    "java": Target("none in the issue; compare with the discard row", lambda _: None),
    "blackhole": cpu_at_most(3.5, min_rate=250_000),
    "plain": cpu_at_most(2.0),
    "disk": cpu_at_most(4.5),
    "disk-always": Target("none in the issue", lambda _: None),
    "gzip": Target("none in the issue", lambda _: None),
    "forward": cpu_at_most(4.0),
    "workers": Target("≥ 200k lines/s (the rate the issue asks of the bulk row)",
                      lambda s: s.lines_per_sec >= 200_000),
    "steady": rss_flat_at_most(150),
}


def ensure_workload(workdir: Path, lines: int, seed: int, files: int) -> tuple[Workload,
                                                                                Manifest]:
    """Generate the workload once per (lines, seed, files); the full manifest is kept with
    it, so a cached tree can still be served from the Kubernetes API and replayed."""
    root = workdir / f"workload-{lines}-{seed}-{files}"
    marker = root / MANIFEST_NAME
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        manifest = generate_workload(root, lines=lines, seed=seed, files=files)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(manifest.to_json())
        tmp.replace(marker)
    manifest = load_manifest(marker)
    if not any(f.kind for f in manifest.files):  # generated before kinds were recorded
        marker.unlink()
        return ensure_workload(workdir, lines, seed, files)
    return Workload(root, manifest.total_records), manifest


JAVA_KINDS = ("spring", "liberty")


def java_preset(workload: Workload, manifest: Manifest) -> tuple[str, Workload]:
    """The tail source's multiline rule for the Java apps' files, and the workload with the
    record count the agent ships with it (each file decoded here with the same rule)."""
    java = [f for f in manifest.files if f.kind in JAVA_KINDS]
    globs = sorted({f"*_{f.namespace}_{f.container}-*" for f in java})
    rule = MultilineConfig(files=globs, preset="java")
    joined = 0
    for f in java:
        path = f.symlink_in(workload.root)
        decoder = make_decoder(f.format, "bench", parse_path(str(path), "kube").static_fields(),
                               1 << 20, rule)
        records, _ = decoder.decode(f.path_in(workload.root).read_bytes().split(b"\n")[:-1], 0)
        joined += f.records - len(records) - len(decoder.flush())
    extra = f"    multiline: [{{files: {json.dumps(globs)}, preset: java}}]\n"
    return extra, Workload(workload.root, workload.records - joined)


@contextmanager
def implementation(name: str) -> Iterator[None]:
    """Agents started inside run the per-line loops of ``name`` (compiled or python)."""
    saved = os.environ.pop("SHIPPER_PURE_PYTHON", None)
    if name == speedups.PYTHON:
        os.environ["SHIPPER_PURE_PYTHON"] = "1"
    try:
        yield
    finally:
        os.environ.pop("SHIPPER_PURE_PYTHON", None)
        if saved is not None:
            os.environ["SHIPPER_PURE_PYTHON"] = saved


def impl_label(label: str, name: str) -> str:
    return f"{label} [{name}]"


def _report(label: str, i: int, runs: int, r: RunResult) -> None:
    extra = f"; {r.note}" if r.note else ""
    print(f"{label} — run {i + 1}/{runs}: {r.records:,} records, "
          f"{r.lines_per_sec:,.0f} lines/s, {r.cpu_per_million:.2f} CPU-s/M, "
          f"peak RSS {r.max_rss_mib:.0f} MiB; enriched {r.enriched:,}, "
          f"not found {r.not_found:,}, envoy parsed {r.envoy_parsed:,}{extra}", flush=True)


def _repeat(label: str, runs: int, once: Callable[[], RunResult]) -> list[RunResult]:
    results = []
    for i in range(runs):
        r = once()
        _report(label, i, runs, r)
        results.append(r)
    return results


def _interleaved(label: str, runs: int, names: list[str],
                 once: Callable[[], RunResult]) -> dict[str, list[RunResult]]:
    """``runs`` runs per implementation, alternating, so machine noise hits both alike."""
    results: dict[str, list[RunResult]] = {name: [] for name in names}
    for i in range(runs):
        for name in names:
            with implementation(name):
                r = once()
            _report(impl_label(label, name), i, runs, r)
            results[name].append(r)
    return results


def steady_detail(runs: list[RunResult], to_es: bool) -> str:
    parts = []
    for r in runs:
        w = r.rss_windows()
        span = "first minute → last minute" if r.wall_secs >= 240 else "first → last quarter"
        trend = f"RSS {span} {w[0]:.0f} → {w[1]:.0f} MiB" if w else "too few RSS samples"
        parts.append(f"{trend}, peak {r.max_rss_mib:.0f} MiB, {r.note}")
    where = "a real Elasticsearch endpoint" if to_es else "the loopback blackhole (see notes)"
    return f"to {where}; " + "; ".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=ROWS + EXTRA_ROWS, default=list(ROWS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lines", type=int, default=1_000_000, help="workload size")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("bench-run"),
                        help="generated workloads and per-run state (kept between runs)")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "PERFORMANCE.md")
    parser.add_argument("--json", type=Path, default=None, help="also write every run here")
    parser.add_argument("--steady-secs", type=float, default=300.0)
    parser.add_argument("--steady-rate", type=float, default=20_000.0, help="lines per second")
    parser.add_argument("--steady-runs", type=int, default=1,
                        help="runs of the steady row (it is long; its figures are not medians)")
    parser.add_argument("--steady-source-lines", type=int, default=100_000,
                        help="records the writer cycles through (held in its memory)")
    parser.add_argument("--es-url", default=os.environ.get(ES_URL_ENV),
                        help=f"Elasticsearch for the steady row (env {ES_URL_ENV}; user and "
                             f"password from {ES_USER_ENV} and SHIPPER_BENCH_ES_PASSWORD)")
    parser.add_argument("--rss-interval", type=float, default=2.0, help="seconds")
    parser.add_argument("--forward-window", type=int, default=DEFAULT_WINDOW,
                        help="unacknowledged chunks the forward client allows")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument("--stage-lines", type=int, default=200_000,
                        help="lines of the per-stage table (bench.stages); 0 leaves it out")
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS,
                        default=list(IMPLEMENTATIONS),
                        help="per-line loops to measure each row with (SHIPPER_PURE_PYTHON=1 "
                             "for python)")
    return parser.parse_args(argv)


def measure(row: str, args: argparse.Namespace, setting: Setting, workload: Workload,
            manifest: Manifest) -> list[RowReport]:
    """Every run of one throughput row, one report per implementation."""
    label = LABELS[row]
    once: Callable[[], RunResult]
    if row == "forward":
        frames = ensure_frames(workload.root, manifest)
        once = partial(run_forward, setting, "forward", frames, workload.records,
                       blackhole_output(setting), args.forward_window)
    elif row == "java":
        extra, joined = java_preset(workload, manifest)
        java_lines = sum(f.records for f in manifest.files if f.kind in JAVA_KINDS)
        note = (f"The java row reads the same {workload.records:,} lines as the discard row "
                f"({java_lines:,} of them in Java files, joined with the preset) and ships "
                f"{joined.records:,} records: its CPU-s per million are per record, multiply "
                f"by {joined.records / workload.records:.3f} for per line. The last event of "
                "each Java file waits `flush_timeout_secs` (2 s) for a next line, which "
                "lengthens its wall time (lines/s), not its CPU.")
        print(note, flush=True)
        args.notes.append(note)
        once = partial(run_tail, setting, row, joined, discard_output(), source_extra=extra)
    else:
        output = (discard_output() if row == "discard"
                  else blackhole_output(setting, disk=row.split("-")[0] == "disk",
                                        fsync="always" if row == "disk-always" else "interval",
                                        gzip=row == "gzip"))
        once = partial(run_tail, setting, row, workload, output,
                       workers=WORKERS if row == "workers" else 1, enrich=row != "plain")
    results = _interleaved(label, args.runs, args.implementations, once)
    return [RowReport(impl_label(label, name), TARGETS[row], runs)
            for name, runs in results.items()]


def measure_stages_of(name: str, args: argparse.Namespace) -> tuple[int, dict[str, float]]:
    """``bench.stages`` in a process of its own running the ``name`` implementation."""
    with implementation(name):
        done = subprocess.run(
            [sys.executable, "-m", "bench.stages", "--lines", str(args.stage_lines),
             "--files", str(args.files), "--seed", str(args.seed), "--json"],
            cwd=REPO, capture_output=True, text=True, check=True, env=dict(os.environ))
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data["implementation"] != name:
        raise RuntimeError(f"bench.stages ran {data['implementation']}, not {name}")
    return data["lines"], data["costs"]


def measure_steady(args: argparse.Namespace, setting: Setting, source: Workload) -> RowReport:
    to_es = bool(args.es_url)
    output = (es_output_yaml(args.es_url, credentials=ES_USER_ENV in os.environ)
              if to_es else blackhole_output(setting))
    label = (f"steady {args.steady_rate / 1000:g}k lines/s for {args.steady_secs:g} s → "
             + ("Elasticsearch" if to_es else "bulk blackhole"))
    once = partial(run_steady, setting, "steady", source, output, args.steady_rate,
                   args.steady_secs)
    runs = _repeat(label, args.steady_runs, once)
    return RowReport(label, TARGETS["steady"], runs, steady_detail(runs, to_es))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if speedups.COMPILED in args.implementations and speedups.speedups is None:
        print(f"the compiled extension is not available ({speedups.fallback_reason}); "
              "build it (pip install -e .) or pass --implementations python", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    workload, manifest = ensure_workload(workdir, args.lines, args.seed, args.files)
    print(f"workload: {manifest.summary()}", flush=True)
    steady_source, steady_manifest = workload, manifest
    if "steady" in args.rows and args.steady_source_lines < args.lines:
        steady_source, steady_manifest = ensure_workload(
            workdir, args.steady_source_lines, args.seed, args.files)

    kube = start_kube_api(manifest, steady_manifest)
    hole = subprocess.Popen([sys.executable, "-m", "bench.blackhole"], cwd=REPO,
                            stdout=subprocess.PIPE)
    reports: list[RowReport] = []
    notes: list[str] = []
    try:
        assert hole.stdout is not None
        port = int(hole.stdout.readline())
        setting = Setting(workdir, kube.url, f"http://127.0.0.1:{port}", args.timeout,
                          args.rss_interval)
        idle = run_idle(setting, discard_output())
        notes.append(f"An agent that starts, reads nothing and stops costs {idle.cpu_secs:.2f} "
                     "CPU-s (imports, start-up, the first Kubernetes list); it is included in "
                     "every row's CPU-s per million, and subtracted (once per process) in the "
                     "start-up-excluded column, which is what each further line costs.")
        args.notes = notes  # rows may add one
        for row in args.rows:
            if row == "steady":
                continue
            for report in measure(row, args, setting, workload, manifest):
                report.startup_cpu = idle.cpu_secs * (WORKERS if row == "workers" else 1)
                reports.append(report)
        if "steady" in args.rows:
            with implementation(args.implementations[0]):
                steady = measure_steady(args, setting, steady_source)
            steady.label = impl_label(steady.label, args.implementations[0])
            reports.append(steady)
            plural = "s" if args.steady_runs != 1 else ""
            notes.append(f"The steady row is {args.steady_runs} run{plural} "
                         "(`--steady-runs`), not a median; its writer cycles through a "
                         f"{steady_source.records:,}-record workload.")
            if not args.es_url:
                notes.append(EMBEDDED_NOTE)
    finally:
        hole.terminate()
        hole.wait(10)
        kube.stop()

    notes += [
        "Lines/s of the tail rows run from the agent's start to the last delivery; of the "
        "forward row from the client's start; of the steady row it is the rate written.",
        "Every record of every row but the no-enrichment one is enriched: `kubernetes.*` "
        "from a local Kubernetes API serving the workload's pods (warm cache), `envoy.*` on "
        "sidecar access logs; a run with less than 90% of its records enriched fails.",
        "Flat means the last minute's average RSS is at most 10% above the first minute's.",
    ]
    stages = None
    if args.stage_lines > 0:
        costs: dict[str, dict[str, float]] = {}
        stage_lines = 0
        for name in args.implementations:
            stage_lines, costs[name] = measure_stages_of(name, args)
        bulk = {name: next((r for r in reports
                            if r.label == impl_label(LABELS["blackhole"], name)), None)
                for name in args.implementations}
        stages = stage_table(costs, stage_lines, bulk)
    runs_text = "" if args.runs == 3 else f" --runs {args.runs}"
    text = render(reports, args.runs, notes,
                  "`make bench` (all rows, 3 runs each, steady row 300 s; "
                  "`make bench ES=http://host:9200` for the steady row against a real cluster), "
                  f"or `python -m bench.run --rows {' '.join(args.rows)}{runs_text} "
                  f"--lines {args.lines}` for a subset.", stages)
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"workload_records": workload.records,
             "steady_source_records": steady_source.records,
             "rows": {r.label: [run.to_json() for run in r.runs] for r in reports}}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
