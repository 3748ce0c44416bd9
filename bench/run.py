"""Whole-process benchmark: the agent tails the standard workload and ships it.

For each run: a fresh state directory, the agent started as its own process
(``shipper run -c``), the end-point in another process, and the agent's CPU time taken from
``wait4`` on that one process — so neither the generator nor the end-point is counted.
A run ends when the agent's ``/metrics`` show every record delivered; the agent is then
stopped with SIGTERM. Reports lines/s (wall clock to the last delivery) and CPU-seconds per
million lines, median of the runs, and writes ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shipper.demo.embedded_es import EmbeddedElasticsearch, free_loopback_port, wait_for_http

CONFIG = """\
state_dir: {state}
sources:
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    buffer: {{{buffer}chunk_limit_bytes: 4MiB, chunk_limit_records: 10000,
              total_limit_bytes: 256MiB, flush_interval_secs: 1, max_in_flight: 2}}
telemetry: {{listen: "127.0.0.1:{telemetry}"}}
log_level: warning
"""


@dataclass
class RunResult:
    lines: int
    wall_secs: float
    cpu_secs: float
    max_rss_mib: float

    @property
    def lines_per_sec(self) -> float:
        return self.lines / self.wall_secs

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_secs / (self.lines / 1e6)


def delivered(telemetry_port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{telemetry_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("shipper_records_delivered_total", "shipper_records_duplicate_total",
                            "shipper_records_dead_lettered_total")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def buffer_variants(buffers: list[str], fsyncs: list[str]) -> list[tuple[str, str]]:
    """(label suffix, extra buffer settings) for each buffer configuration to measure."""
    out = [("", "")] if "memory" in buffers else []
    if "disk" in buffers:
        out += [(f" [disk buffer, fsync {f}]", f"type: disk, fsync: {f}, ") for f in fsyncs]
    return out


def run_once(workdir: Path, logs: Path, url: str, expected: int, timeout_secs: float,
             buffer: str = "") -> RunResult:
    state = workdir / "state"
    shutil.rmtree(state, ignore_errors=True)
    telemetry = free_loopback_port()
    cfg = workdir / "shipper.yaml"
    cfg.write_text(CONFIG.format(state=state, logs=logs, url=url, telemetry=telemetry,
                                 buffer=buffer))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "-c", str(cfg)],
                            stderr=open(workdir / "agent.log", "wb"))
    try:
        wait_for_http(f"http://127.0.0.1:{telemetry}/healthz", 60, None)
        done = 0.0
        while done < expected:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited early ({proc.returncode}); see agent.log")
            if time.monotonic() - started > timeout_secs:
                raise RuntimeError(f"only {done:.0f}/{expected} delivered in {timeout_secs}s")
            time.sleep(0.2)
            done = delivered(telemetry)
        wall = time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return RunResult(expected, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def ensure_workload(workdir: Path, lines: int, seed: int, files: int) -> tuple[Path, int, int]:
    from bench.workload import generate_workload

    root = workdir / f"workload-{lines}-{seed}-{files}"
    marker = root / "manifest.json"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        manifest = generate_workload(root, lines=lines, seed=seed, files=files)
        marker.write_text(json.dumps({"records": manifest.total_records,
                                      "bytes": manifest.total_bytes}))
    info = json.loads(marker.read_text())
    return root / "var" / "log" / "containers", int(info["records"]), int(info["bytes"])


def render(results: dict[str, list[RunResult]], bytes_total: int, args: argparse.Namespace,
           ) -> str:
    out = ["# Performance", "",
           "Measured by `make bench` (`python -m bench.run`): the agent runs as its own process,",
           "tails the standard workload from the start and ships it; CPU is the agent process's",
           "user+system time from `wait4`, wall time runs from start to the last delivery.",
           f"Median of {args.runs} runs on {time.strftime('%Y-%m-%d')}. "
           f"Machine: {platform.machine()}, {os.cpu_count()} cores,",
           f"Python {platform.python_version()}.", "",
           "| path | lines | MB | lines/s | CPU-s per million lines | max RSS MiB |",
           "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        lps = statistics.median(r.lines_per_sec for r in runs)
        cpu = statistics.median(r.cpu_per_million for r in runs)
        rss = max(r.max_rss_mib for r in runs)
        lines = runs[0].lines
        mb = f"{bytes_total / 1e6:.0f}" if name.startswith("blackhole") else "-"
        out.append(f"| {name} | {lines:,} | {mb} | {lps:,.0f} | {cpu:.2f} | {rss:.0f} |")
    out += ["", "Reproduce: `make bench` (or `python -m bench.run --runs 3 --lines 1000000`)."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="bench-run")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--es-lines", type=int, default=100_000,
                        help="workload size for the real Elasticsearch endpoint (kept in memory)")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-es", action="store_true")
    parser.add_argument("--write", default="docs/PERFORMANCE.md")
    parser.add_argument("--buffer", nargs="+", choices=["memory", "disk"], default=["memory"],
                        help="buffer types to measure (disk: crash-safe segment files)")
    parser.add_argument("--fsync", nargs="+", choices=["interval", "always"],
                        default=["interval"], help="fsync policies of the disk buffer")
    args = parser.parse_args(argv)
    variants = buffer_variants(args.buffer, args.fsync)
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[RunResult]] = {}

    logs, expected, nbytes = ensure_workload(workdir, args.lines, args.seed, args.files)
    hole = subprocess.Popen([sys.executable, "-m", "bench.blackhole"], stdout=subprocess.PIPE)
    try:
        port = int(hole.stdout.readline())  # type: ignore[union-attr]
        for label, buffer in variants:
            name = "blackhole: tail → parse → bulk HTTP" + label
            for i in range(args.runs):
                r = run_once(workdir, logs, f"http://127.0.0.1:{port}", expected, 1800, buffer)
                print(f"{name} run {i + 1}: {r.lines_per_sec:,.0f} lines/s, "
                      f"{r.cpu_per_million:.2f} CPU-s/M lines, {r.max_rss_mib:.0f} MiB",
                      flush=True)
                results.setdefault(name, []).append(r)
    finally:
        hole.terminate()
        hole.wait(10)

    if not args.skip_es:
        es_logs, es_expected, _ = ensure_workload(workdir, args.es_lines, args.seed, args.files)
        label, buffer = variants[0]
        name = "real ES API (embedded): tail → parse → bulk → index" + label
        for i in range(args.runs):
            with EmbeddedElasticsearch(workdir / f"es-{i}") as es:
                r = run_once(workdir, es_logs, es.url, es_expected, 1800, buffer)
            print(f"{name} run {i + 1}: {r.lines_per_sec:,.0f} lines/s, "
                  f"{r.cpu_per_million:.2f} CPU-s/M lines", flush=True)
            results.setdefault(name, []).append(r)
            shutil.rmtree(workdir / f"es-{i}", ignore_errors=True)

    text = render(results, nbytes, args)
    Path(args.write).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
