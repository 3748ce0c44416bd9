"""Results of the benchmark rows, judged against the issue's targets, and the markdown page.

Numbers per row are the median of its runs (lines/s, CPU-seconds per million records) and
the highest peak RSS of any run. Each row carries the issue's target and whether the median
meets it, so the page says plainly what is met and what is not.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: RSS may grow this much from the first minute to the last and still count as flat.
FLAT_GROWTH = 0.10


@dataclass
class RunResult:
    """One run of one row. CPU and peak RSS are the agent process's alone."""

    records: int
    wall_secs: float
    cpu_secs: float
    max_rss_mib: float
    enriched: int
    not_found: int
    envoy_parsed: int
    delivered: int = 0  # what the output accepted (the blackhole and null accept everything)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)
    note: str = ""

    @property
    def lines_per_sec(self) -> float:
        return self.records / self.wall_secs if self.wall_secs > 0 else 0.0

    @property
    def cpu_per_million(self) -> float:
        return self.cpu_secs / (self.records / 1e6) if self.records else 0.0

    def rss_windows(self) -> tuple[float, float] | None:
        """Average RSS over the first and the last window (a minute, or a quarter of a
        shorter run), skipping nothing: start-up growth is part of "flat or not"."""
        if len(self.rss_samples) < 4:
            return None
        end = self.rss_samples[-1][0]
        window = min(60.0, end / 4)
        first = [m for t, m in self.rss_samples if t <= window]
        last = [m for t, m in self.rss_samples if t >= end - window]
        return statistics.fmean(first), statistics.fmean(last)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(lines_per_sec=self.lines_per_sec, cpu_per_million=self.cpu_per_million,
                   rss_windows=self.rss_windows())
        return out


@dataclass(frozen=True)
class Summary:
    """A row's runs reduced to the published figures."""

    records: int
    lines_per_sec: float
    cpu_per_million: float
    peak_rss_mib: float
    rss_first: float | None
    rss_last: float | None

    @classmethod
    def of(cls, runs: list[RunResult]) -> Summary:
        windows = [w for w in (r.rss_windows() for r in runs) if w is not None]
        return cls(
            records=runs[0].records,
            lines_per_sec=statistics.median(r.lines_per_sec for r in runs),
            cpu_per_million=statistics.median(r.cpu_per_million for r in runs),
            peak_rss_mib=max(r.max_rss_mib for r in runs),
            rss_first=max(w[0] for w in windows) if windows else None,
            rss_last=max(w[1] for w in windows) if windows else None)

    @property
    def flat(self) -> bool | None:
        if self.rss_first is None or self.rss_last is None:
            return None
        return self.rss_last <= self.rss_first * (1 + FLAT_GROWTH)


@dataclass(frozen=True)
class Target:
    """The issue's target for a row, as text and as a check of the row's summary."""

    text: str
    met: Callable[[Summary], bool | None]


def cpu_at_most(limit: float, min_rate: float = 0.0) -> Target:
    text = f"≤ {limit:g} CPU-s per million"
    if min_rate:
        text += f", ≥ {min_rate / 1000:g}k lines/s"
    return Target(text, lambda s: s.cpu_per_million <= limit and s.lines_per_sec >= min_rate)


def rss_flat_at_most(limit_mib: float) -> Target:
    def met(s: Summary) -> bool | None:
        if s.flat is None:
            return None
        return s.peak_rss_mib <= limit_mib and s.flat
    return Target(f"RSS ≤ {limit_mib:g} MiB and flat", met)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    return (f"{os.cpu_count()} cores ({cpu_model()}), {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**not met**")


@dataclass
class RowReport:
    label: str
    target: Target
    runs: list[RunResult]
    detail: str = ""  # one line under the table (e.g. the steady row's memory over time)
    startup_cpu: float = 0.0  # CPU-s an idle agent (or its workers) costs to start and stop

    def line(self) -> str:
        s = Summary.of(self.runs)
        per_line = max(0.0, s.cpu_per_million - self.startup_cpu / (s.records / 1e6))
        return (f"| {self.label} | {s.records:,} | {s.lines_per_sec:,.0f} | "
                f"{s.cpu_per_million:.2f} | {per_line:.2f} | {s.peak_rss_mib:.0f} | "
                f"{self.target.text} | {_verdict(self.target.met(s))} |")


def stage_table(costs: dict[str, dict[str, float]], lines: int,
                whole_rows: dict[str, RowReport | None]) -> list[str]:
    """Where a line's CPU goes: the in-process stages, and what the whole agent adds, one
    column per implementation of the per-line loops (``costs``: implementation -> stage ->
    µs per line; ``whole_rows``: implementation -> its bulk blackhole row)."""
    names = list(costs)
    out = ["", "## Where the time goes", "",
           f"`python -m bench.stages`: the stages run in one process, batch by batch in "
           f"pipeline order, over {lines:,} lines of the same workload (best of 3 passes); "
           "microseconds per line are CPU-seconds per million lines. Decode and encode run "
           "in the compiled extension or in Python (`SHIPPER_PURE_PYTHON=1`).", "",
           "| stage | " + " | ".join(f"µs per line, {n}" for n in names) + " |",
           "|---|" + "---|" * len(names)]
    stages = list(next(iter(costs.values()))) if costs else []
    for stage in stages:
        out.append(f"| {stage} | " + " | ".join(f"{costs[n][stage]:.2f}" for n in names)
                   + " |")
    totals = {n: sum(costs[n].values()) for n in names}
    out.append("| **stages together** | "
               + " | ".join(f"**{totals[n]:.2f}**" for n in names) + " |")
    rest = []
    for n in names:
        row = whole_rows.get(n)
        if row is None:
            rest.append("")
            continue
        s = Summary.of(row.runs)
        whole = max(0.0, s.cpu_per_million - row.startup_cpu / (s.records / 1e6))
        rest.append(f"{max(0.0, whole - totals[n]):.2f}")
    if any(rest):
        out.append("| rest of the agent in the bulk blackhole row (reading, buffering, "
                   "HTTP, acknowledgements; start-up excluded) | " + " | ".join(rest) + " |")
    return out


def render(rows: list[RowReport], runs: int, notes: list[str], reproduce: str,
           stages: list[str] | None = None) -> str:
    out = ["# Performance", "",
           "Measured by `make bench` (`python -m bench.run`). The agent runs as its own process;",
           "CPU is that process's user+system time from `wait4` (start-up and shutdown included),",
           "peak RSS its VmHWM. The Kubernetes API, the blackhole, the forward client and",
           "the log writer are other processes and are not counted.", "",
           f"Median of {runs} run{'s' if runs != 1 else ''} on {time.strftime('%Y-%m-%d')}. "
           f"Machine: {machine_line()}.", "",
           "| path | records | lines/s | CPU-s per million | same, start-up excluded "
           "| peak RSS MiB | target | |",
           "|---|---|---|---|---|---|---|---|"]
    out += [row.line() for row in rows]
    details = [f"- {row.label}: {row.detail}" for row in rows if row.detail]
    if details:
        out += ["", *details]
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    if stages:
        out += stages
    out += ["", f"Reproduce: {reproduce}"]
    return "\n".join(out) + "\n"
