"""One matrix cell: {stop} x {buffer} x {output} x {source}, run against the real server.

Phase 1 runs the agent with the output behaving as the cell says and stops it the cell's way
(SIGTERM with a 1 s shutdown deadline while data is in flight, SIGKILL, or a named crash
point). Phase 2 writes more (tail) or lets the client resend (forward), restarts the agent on
the same state with the output reachable, waits until everything is indexed and stops it with
SIGTERM. Then the exact oracle: every message exactly once with its exact text (split
messages joined into one document), the refused ones only in the dead-letter store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from shipper.crashpoints import EXIT_STATUS, POINTS
from shipper.demo.esquery import SearchClient
from tests.integration.agent_harness import unique_prefix
from tests.integration.matrix.bulkproxy import BulkFaultProxy
from tests.integration.matrix.scenario import (
    DAY,
    Agent,
    ForwardClient,
    LogFiles,
    check_exactly_once,
    rejected_markers,
    wait_indexed,
)

STOPS = ("sigterm", "sigkill", *(f"crash:{p}" for p in sorted(POINTS)))
BUFFERS = ("memory", "disk")
OUTPUTS = ("up", "down", "flap", "429", "partial")
SOURCES = ("tail", "forward")
#: The full product also runs both sources into one buffer ("both": they compete for it).
ALL_SOURCES = (*SOURCES, "both")
#: The mode of the proxy in the run after the stop: faults that are a steady property of
#: the server (per-item rejections, a flapping network) stay; outages and storms end.
FINAL_MODE = {"up": "up", "down": "up", "429": "up", "flap": "flap", "partial": "partial"}
_NEEDS_DELIVERY = {"delivery_after_send", "buffer_before_delete", "buffer_after_delete"}

TAIL_FIRST = 1500  # messages per file before the stop (two files)
TAIL_LATER = 500  # messages per file written while the agent is stopped
FORWARD_TOTAL = 3000
SHUTDOWN_DEADLINE = 1.0
#: How long after the deadline a SIGTERMed agent may take to exit (process teardown).
EXIT_MARGIN = 3.0


@dataclass(frozen=True)
class Cell:
    stop: str
    buffer: str
    output: str
    source: str

    @property
    def id(self) -> str:
        return f"{self.stop}-{self.buffer}-{self.output}-{self.source}"

    @property
    def point(self) -> str | None:
        return self.stop.removeprefix("crash:") if self.stop.startswith("crash:") else None


def applicable(cell: Cell) -> bool:
    """False for combinations where the crash point cannot be reached."""
    point = cell.point
    if point is None:
        return True
    if point.startswith("buffer_") and cell.buffer != "disk":
        return False
    if point == "checkpoint_after_write":
        # The tail checkpoints; with a memory buffer only after delivery.
        return cell.source != "forward" and not (cell.buffer == "memory"
                                              and cell.output in ("down", "429"))
    return not (point in _NEEDS_DELIVERY and cell.output in ("down", "429"))


def all_cells() -> list[Cell]:
    return [c for s in STOPS for b in BUFFERS for o in OUTPUTS for src in ALL_SOURCES
            if applicable(c := Cell(s, b, o, src))]


class CellRun:
    """State shared by the phases of one cell."""

    def __init__(self, cell: Cell, root: Path, es_url: str, proxy: BulkFaultProxy) -> None:
        self.cell = cell
        self.proxy = proxy
        self.es = SearchClient(es_url)
        self.prefix = unique_prefix()
        self.index = f"{self.prefix}-{DAY}"
        self.agent = Agent(root, proxy.url, self.prefix, cell.source, cell.buffer,
                           deadline=SHUTDOWN_DEADLINE)
        self.files = LogFiles(self.agent.logs) if cell.source != "forward" else None
        self.client: ForwardClient | None = None
        self.notes: list[str] = []

    @property
    def expected(self) -> dict[str, str]:
        """marker → exact text, of every message written or sent so far."""
        merged: dict[str, str] = {}
        if self.files is not None:
            merged.update(self.files.expected)
        if self.client is not None:
            merged.update(self.client.expected)
        return merged

    def run(self) -> None:
        """Both phases, then the oracle; a phase that failed still gets the oracle's
        numbers (lost, duplicated) into the failure message."""
        failure: AssertionError | None = None
        try:
            self.phase_one()
            self.phase_two()
        except AssertionError as exc:
            failure = exc
        finally:
            self.agent.kill()
            if self.client is not None:
                self.client.stop()
        rejected = rejected_markers(self.expected) if self.cell.output == "partial" else set()
        try:
            check_exactly_once(self.es, self.index, self.expected, self.agent.state, rejected)
        except AssertionError as exc:
            if failure is None:
                raise
            raise AssertionError(f"{failure}; then: {exc}") from failure
        if failure is not None:
            raise failure
        self.check_faults_met()

    def check_faults_met(self) -> None:
        """The agent really met the cell's fault (else the cell proves nothing)."""
        met = {"down": self.proxy.count("reset"),
               "flap": self.proxy.count("dropped_answer"),
               "partial": min(self.proxy.count("item_400"), self.proxy.count("item_429"))}
        if self.cell.output in met:
            assert met[self.cell.output] > 0, f"the proxy never injected {self.cell.output}"

    # -- phase 1: run with the fault, stop the cell's way --------------------------------

    def phase_one(self) -> None:
        cell, agent = self.cell, self.agent
        self.proxy.set_mode(cell.output)
        first = 0
        if self.files is not None:
            self.files.write(TAIL_FIRST)
            first += 2 * TAIL_FIRST
        if cell.source != "tail":
            first += FORWARD_TOTAL
        point = cell.point
        if point is not None:
            if point == "buffer_salvage_moved":
                self._crash("buffer_after_write:3")
                self._tear_newest_segment()
                self._crash(point)
            else:
                # The second hit: some data is already through that step. With the output
                # stalled the buffer fills in one write, one fsync and one checkpoint, and a
                # second hit may never come: the first one kills.
                hit = 1 if cell.output in ("down", "429") else 2
                self._crash(f"{point}:{hit}")
            return
        agent.start()
        self._start_client()
        agent.wait_healthy()
        agent.wait_metric("shipper_records_read_total", first // 3, 60)
        if cell.stop == "sigkill":
            time.sleep(0.3)
            agent.kill()
            return
        code, took = agent.sigterm(SHUTDOWN_DEADLINE + EXIT_MARGIN + 30)
        assert code == 0, f"SIGTERM: exit {code}, see {agent.log}"
        assert took <= SHUTDOWN_DEADLINE + EXIT_MARGIN, (
            f"SIGTERM with a {SHUTDOWN_DEADLINE}s deadline took {took:.1f}s")

    def _start_client(self) -> None:
        if self.cell.source != "tail" and self.client is None:
            self.client = ForwardClient(self.agent.fport, FORWARD_TOTAL).start()

    def _crash(self, point: str) -> None:
        agent = self.agent
        agent.start(point)
        self._start_client()
        code = agent.wait_exit(60)
        assert code == EXIT_STATUS, f"{point}: exit {code}, see {agent.log}"
        assert f'"point":"{point.split(":")[0]}"' in agent.log.read_text(errors="replace")

    def _tear_newest_segment(self) -> None:
        segments = sorted(self.agent.buffer_dir.glob("*.seg"))
        assert segments, "a crash after a buffer write leaves its segment behind"
        with open(segments[-1], "ab") as fh:
            fh.write(b"\x40\x00\x00\x00torn")  # a record header promising 64 bytes, cut off

    # -- phase 2: restart with the output reachable, drain, SIGTERM ----------------------

    def phase_two(self) -> None:
        agent = self.agent
        self.proxy.set_mode(FINAL_MODE[self.cell.output])
        if self.files is not None:
            self.files.write(TAIL_LATER)
        agent.write_config(deadline=10)
        agent.start()
        self._start_client()
        agent.wait_healthy()
        rejected = rejected_markers(self.expected) if self.cell.output == "partial" else set()
        want = len(self.expected) - len(rejected)
        if self.client is not None:
            self.client.wait_done(120)
        count = wait_indexed(self.es, self.index, want, agent, 120)
        time.sleep(1.0)  # anything still in flight would now show up as an extra
        code, _took = agent.sigterm(30)
        assert code == 0, f"final SIGTERM: exit {code}, see {agent.log}"
        self.notes.append(f"indexed {count}/{want} before the final stop")
