"""The rows of the issue's table: how each one starts the agent, feeds it and ends the run.

Every row runs the agent with the same enrichment (``bench.enrich``) and the same buffer
settings; only the source, the output and what feeds the source change. A run ends when the
agent's ``/metrics`` show every record settled, then the agent is stopped and its CPU and
peak RSS read. A run whose records were not enriched, or not all delivered, fails instead of
being reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.agent import (
    AgentProcess,
    Scrape,
    agent_config,
    es_output_yaml,
    forward_source_yaml,
    null_output_yaml,
    tail_source_yaml,
)
from bench.enrich import enrichment_from, filters_yaml
from bench.report import RunResult
from shipper.demo.embedded_es import free_loopback_port

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workload:
    """A generated tree: its root, its container log directory and its record count."""

    root: Path
    records: int

    @property
    def logs(self) -> Path:
        return self.root / "var" / "log" / "containers"


@dataclass(frozen=True)
class Setting:
    """What every row of one benchmark invocation shares."""

    workdir: Path
    kube_url: str
    blackhole_url: str
    timeout_secs: float = 1800.0
    rss_interval: float = 2.0


def _fresh(workdir: Path, name: str) -> Path:
    run_dir = workdir / "runs" / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    return run_dir


def _agent(setting: Setting, run_dir: Path, source: str, output: str,
           env: dict[str, str] | None = None, workers: int = 1,
           enrich: bool = True) -> AgentProcess:
    telemetry = free_loopback_port()
    filters = filters_yaml(setting.kube_url) if enrich else ""
    text = agent_config(run_dir / "state", telemetry, source, filters, output, workers=workers)
    return AgentProcess(run_dir, text, telemetry, setting.rss_interval, env)


def _end(agent: AgentProcess, feeder: subprocess.Popen[bytes] | None = None) -> None:
    """After a run, failed or not: kill what fed the agent, stop the agent if it still runs."""
    if feeder is not None and feeder.poll() is None:
        feeder.kill()
        feeder.wait(10)
    if agent.proc is not None and agent.proc.returncode is None:
        agent.stop()


def _result(agent: AgentProcess, scrape: Scrape, records: int, wall: float,
            note: str = "", enrich: bool = True) -> RunResult:
    usage = agent.stop()
    enrichment = enrichment_from(scrape.filter_results())
    if enrich:
        enrichment.check(records)
    return RunResult(records, wall, usage.cpu_secs, usage.max_rss_mib, enrichment.enriched,
                     enrichment.not_found, enrichment.envoy_parsed, scrape.delivered(),
                     agent.rss_samples(), note)


def run_tail(setting: Setting, name: str, workload: Workload, output: str,
             workers: int = 1, enrich: bool = True, source_extra: str = "") -> RunResult:
    """Tail the finished tree from the start; wall time runs from the agent's start. With
    ``workers`` > 1 the agent is a supervisor: ``wait4`` counts its workers' CPU too (it
    waits for them), and memory is the sum of the processes'."""
    run_dir = _fresh(setting.workdir, name)
    agent = _agent(setting, run_dir, tail_source_yaml(workload.logs) + source_extra, output,
                   workers=workers, enrich=enrich)
    try:
        agent.start()
        scrape = agent.wait_settled(workload.records, setting.timeout_secs)
        wall = time.monotonic() - agent.started
        return _result(agent, scrape, workload.records, wall, enrich=enrich)
    finally:
        _end(agent)


def run_forward(setting: Setting, name: str, frames: Path, records: int, output: str,
                window: int) -> RunResult:
    """Send the frames from a client process; wall time runs from the client's start."""
    run_dir = _fresh(setting.workdir, name)
    port = free_loopback_port()
    agent = _agent(setting, run_dir, forward_source_yaml(port), output)
    client: subprocess.Popen[bytes] | None = None
    try:
        agent.start()
        started = time.monotonic()
        client = subprocess.Popen(
            [sys.executable, "-m", "bench.forward_client", "--frames", str(frames),
             "--port", str(port), "--window", str(window)],
            cwd=REPO, stdout=subprocess.PIPE)
        scrape = agent.wait_settled(records, setting.timeout_secs)
        wall = time.monotonic() - started
        out, _ = client.communicate(timeout=60)
        if client.returncode != 0:
            raise RuntimeError(f"forward client failed ({client.returncode}): {out.decode()}")
        acks = json.loads(out)
        return _result(agent, scrape, records, wall,
                       note=f"{acks['acked']:,} PackedForward chunks acknowledged")
    finally:
        _end(agent, client)


def run_steady(setting: Setting, name: str, source: Workload, output: str, rate: float,
               duration: float, env: dict[str, str] | None = None) -> RunResult:
    """A writer appends at ``rate`` for ``duration`` while the agent ships; the row's rate is
    what was written, and the run waits (bounded) for the agent to catch up."""
    run_dir = _fresh(setting.workdir, name)
    dest = run_dir / "node"
    logs = dest / "var" / "log" / "containers"
    logs.mkdir(parents=True)
    agent = _agent(setting, run_dir, tail_source_yaml(logs), output, env)
    writer: subprocess.Popen[bytes] | None = None
    try:
        agent.start()
        writer = subprocess.Popen(
            [sys.executable, "-m", "bench.steady", "--source", str(source.root),
             "--dest", str(dest), "--rate", str(rate), "--duration", str(duration)],
            cwd=REPO, stdout=subprocess.PIPE)
        out, _ = writer.communicate(timeout=duration + 120)
        if writer.returncode != 0:
            raise RuntimeError(f"log writer failed ({writer.returncode})")
        report = json.loads(out.splitlines()[-1])
        records, secs = int(report["records"]), float(report["secs"])
        written_at = time.monotonic()
        scrape = agent.wait_settled(records, max(120.0, duration))
        lag = time.monotonic() - written_at
        return _result(agent, scrape, records, secs,
                       note=f"all delivered {lag:.1f}s after the writer stopped")
    finally:
        _end(agent, writer)
        shutil.rmtree(dest, ignore_errors=True)


def run_idle(setting: Setting, output: str, secs: float = 2.0) -> RunResult:
    """An agent with nothing to read: its fixed start-up and shutdown CPU, for the notes."""
    run_dir = _fresh(setting.workdir, "idle")
    empty = run_dir / "empty"
    empty.mkdir()
    agent = _agent(setting, run_dir, tail_source_yaml(empty), output)
    try:
        agent.start()
        started = time.monotonic()
        time.sleep(secs)
        usage = agent.stop()
        return RunResult(0, time.monotonic() - started, usage.cpu_secs, usage.max_rss_mib,
                         0, 0, 0)
    finally:
        _end(agent)


def blackhole_output(setting: Setting, disk: bool = False, fsync: str = "interval",
                     gzip: bool = False) -> str:
    return es_output_yaml(setting.blackhole_url, f"type: disk, fsync: {fsync}, " if disk else "",
                          gzip=gzip)


def discard_output() -> str:
    return null_output_yaml()
