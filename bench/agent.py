"""The agent under measurement: its config, its process, its metrics and its memory.

The agent always runs as its own process (``python -m shipper.cli run -c``) so that its CPU
time can be read alone: ``wait4`` on that one pid gives user+system time when it exits, and
``/proc/<pid>/status`` gives its resident memory and its peak (VmHWM) while it runs. Progress
is read from its ``/metrics`` endpoint, the same numbers an operator would see.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shipper.demo.embedded_es import wait_for_http

DELIVERED_COUNTERS = ("shipper_records_delivered_total", "shipper_records_duplicate_total",
                      "shipper_records_dead_lettered_total")
FILTER_COUNTER = "shipper_filter_records_total"
STOP_TIMEOUT_SECS = 60.0

BUFFER_YAML = ("{{{extra}chunk_limit_bytes: 4MiB, chunk_limit_records: 10000, "
               "total_limit_bytes: 256MiB, flush_interval_secs: 1, max_in_flight: 2}}")


def tail_source_yaml(logs: Path) -> str:
    return ("sources:\n  containers:\n    type: tail\n"
            f'    include: ["{logs}/*.log"]\n    read_from_head: true\n')


def forward_source_yaml(port: int) -> str:
    return f'sources:\n  fwd:\n    type: forward\n    listen: "127.0.0.1:{port}"\n'


def null_output_yaml(disk_buffer: str = "") -> str:
    return ('outputs:\n  out:\n    type: "null"\n'
            f"    buffer: {BUFFER_YAML.format(extra=disk_buffer)}\n")


def es_output_yaml(url: str, disk_buffer: str = "", credentials: bool = False,
                   gzip: bool = False) -> str:
    """``credentials`` refers to variables in the agent's environment, never to values, so
    no password is written into the config file."""
    auth = ('    user: ${SHIPPER_BENCH_ES_USER}\n    password: ${SHIPPER_BENCH_ES_PASSWORD}\n'
            if credentials else "")
    return (f'outputs:\n  out:\n    type: elasticsearch\n    hosts: ["{url}"]\n{auth}'
            + ("    gzip: true\n" if gzip else "")
            + f"    buffer: {BUFFER_YAML.format(extra=disk_buffer)}\n")


def agent_config(state: Path, telemetry_port: int, *sections: str, workers: int = 1) -> str:
    return (f"state_dir: {state}\n" + "".join(sections)
            + f'telemetry: {{listen: "127.0.0.1:{telemetry_port}"}}\n'
            + "log_level: warning\n" + (f"workers: {workers}\n" if workers > 1 else ""))


@dataclass(frozen=True)
class Scrape:
    """One read of ``/metrics``: ``(name, sorted label pairs) -> value``."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls({(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples})

    def total(self, name: str) -> float:
        return sum(v for (n, _), v in self.samples.items() if n == name)

    def settled(self) -> int:
        """Records every output has finished with: delivered, duplicate or dead-lettered."""
        return int(sum(self.total(name) for name in DELIVERED_COUNTERS))

    def delivered(self) -> int:
        return int(self.total(DELIVERED_COUNTERS[0]))

    def filter_results(self) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for (name, labels), value in self.samples.items():
            if name == FILTER_COUNTER:
                d = dict(labels)
                key = (d.get("filter", ""), d.get("result", ""))
                out[key] = out.get(key, 0.0) + value  # summed over workers, if any
        return out


def _children(pid: int) -> list[int]:
    """Child processes of ``pid`` (the workers of a ``workers: N`` supervisor)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def read_memory_mib(pid: int) -> tuple[float, float] | None:
    """``(VmRSS, VmHWM)`` in MiB of a live process and its children (a supervisor's
    workers: their sum, so the peak is an upper bound), None once the process is gone.

    VmHWM is the peak RSS of the program the process runs now. ``wait4``'s ``ru_maxrss`` is
    not used: Linux carries the pre-exec peak into it, which for a child spawned from this
    (large) benchmark process is the benchmark's memory, not the agent's.
    """
    own = _read_status_mib(pid)
    if own is None:
        return None
    rss, hwm = own
    for child in _children(pid):
        memory = _read_status_mib(child)
        if memory is not None:
            rss, hwm = rss + memory[0], hwm + memory[1]
    return rss, hwm


def _read_status_mib(pid: int) -> tuple[float, float] | None:
    values: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values[line[:5]] = int(line.split()[1]) / 1024
    except OSError:
        return None
    if len(values) != 2:
        return None
    return values["VmRSS"], values["VmHWM"]


@dataclass
class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a daemon thread."""

    pid: int
    interval: float
    samples: list[tuple[float, float]] = field(default_factory=list)  # (secs since start, MiB)
    peak_mib: float = 0.0  # highest VmHWM read
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            if not self.sample(time.monotonic() - started):
                return
            self._stop.wait(self.interval)

    def sample(self, at: float | None = None) -> bool:
        """Read the process's memory now; False once it is gone. ``at`` None only updates the
        peak (the last read before the agent is stopped)."""
        memory = read_memory_mib(self.pid)
        if memory is None:
            return False
        rss, hwm = memory
        self.peak_mib = max(self.peak_mib, hwm)
        if at is not None:
            self.samples.append((at, rss))
        return True

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return self.samples


@dataclass(frozen=True)
class Usage:
    """The finished agent: CPU from ``wait4``, peak RSS from its VmHWM while it ran."""

    cpu_secs: float
    max_rss_mib: float
    exit_code: int


class AgentProcess:
    """One agent run: ``start``, poll ``scrape``/``wait_settled``, then ``stop`` once."""

    def __init__(self, workdir: Path, config_text: str, telemetry_port: int,
                 rss_interval: float = 2.0, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.config_path = workdir / "shipper.yaml"
        self.config_path.write_text(config_text)
        self.telemetry_port = telemetry_port
        self.rss_interval = rss_interval
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.sampler: RssSampler | None = None
        self.started = 0.0

    def start(self, ready_timeout: float = 60.0) -> None:
        self.started = time.monotonic()
        with open(self.workdir / "agent.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shipper.cli", "run", "-c", str(self.config_path)],
                stderr=log, stdout=subprocess.DEVNULL,
                env={**os.environ, **self.env} if self.env else None)
        self.sampler = RssSampler(self.proc.pid, self.rss_interval)
        self.sampler.start()
        wait_for_http(f"http://127.0.0.1:{self.telemetry_port}/healthz", ready_timeout, None)

    def scrape(self) -> Scrape:
        url = f"http://127.0.0.1:{self.telemetry_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return Scrape.parse(resp.read().decode())

    def wait_settled(self, expected: int, timeout_secs: float, poll: float = 0.2) -> Scrape:
        """Poll until ``expected`` records are settled; raises if the agent dies or stalls."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_secs
        while True:
            if self.exited():
                raise RuntimeError(f"agent exited early; see {self.workdir / 'agent.log'}")
            scrape = self.scrape()
            if scrape.settled() >= expected:
                return scrape
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {scrape.settled():,}/{expected:,} records settled "
                                   f"in {timeout_secs:.0f}s")
            time.sleep(poll)

    def exited(self) -> bool:
        """Whether the agent has exited, without reaping it (``wait4`` must do that)."""
        assert self.proc is not None
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def stop(self) -> Usage:
        """SIGTERM (the agent drains), then reap it with ``wait4`` for its resource usage."""
        assert self.proc is not None
        if self.sampler is not None:
            self.sampler.sample()
        if not self.exited():
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECS
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.exited():  # a hung drain must not hang the benchmark
            self.proc.kill()
        try:
            _, status, usage = os.wait4(self.proc.pid, 0)
        finally:
            if self.sampler is not None:
                self.sampler.stop()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        peak = self.sampler.peak_mib if self.sampler is not None else 0.0
        return Usage(usage.ru_utime + usage.ru_stime, peak, self.proc.returncode)

    def rss_samples(self) -> list[tuple[float, float]]:
        return list(self.sampler.samples) if self.sampler is not None else []
