"""Property-based (Hypothesis stateful) test of the tail against a real temporary node.

Random sequences of writes (whole lines, lines written in two halves with reads or a restart
in between), kubelet rotations (rename, compress older, delete beyond 5 files), copytruncate,
in-place truncation, container deletion and symlink retargets (container restarts), agent
restarts and crashes, blocked outputs and a fake clock, against real files. The port of
Vector's file-watcher model tests (reliability §2), with the oracle of lading's
``missed_bytes``:

* no line is ever delivered under two ids, no id ever names two lines (``create`` would
  turn the second into a 409 and lose it);
* at the end every line still on disk (in a plain file) has been delivered;
* every line not delivered is lost *and counted*: the lost-bytes counters never exceed the
  bytes of the lines not delivered, and fall short only by lines the agent could not see
  (written after its last look, then deleted or truncated while it was down).

Agent steps stand for what its loops do (``poll_files``: discovery, sizes, deadlines;
``read_available``: reading), and a checkpoint save follows each, as the watch loop does
every second; before a destructive operation the agent gets one look, as it gets every
second on a node where kubelet rotates every 10 seconds.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from shipper.metrics import Metrics
from shipper.record import Batch
from shipper.sources.tail import TailConfig, TailSource

ROTATE_WAIT = 5.0
DELETED_TIMEOUT = 60.0
KEEP = 5  # kubelet containerLogMaxFiles: the current file and 4 rotated ones


@dataclass(eq=False)
class Line:
    text: str
    raw: bytes
    observed: bool = False  # the agent looked at the file after this line was written
    unseeable: bool = False  # destroyed while the agent was down, before it could see it


class Container:
    """One container's log files in kubelet's layout."""

    def __init__(self, root: Path, index: int) -> None:
        self.index = index
        self.dir = root / "var/log/pods" / f"ns_pod{index}_uid{index}" / "c"
        self.dir.mkdir(parents=True)
        self.restarts = 0
        self.link = root / "var/log/containers" / f"pod{index}_ns_c-{index:064x}.log"
        self.current.touch()
        self.link.symlink_to(self.current)
        self.stamp = 0
        self.alive = True

    @property
    def current(self) -> Path:
        return self.dir / f"{self.restarts}.log"

    def __repr__(self) -> str:
        return f"container{self.index}"


class TailMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="tail-prop-"))
        (self.root / "var/log/containers").mkdir(parents=True)
        self.state = self.root / "state"
        self.loop = asyncio.new_event_loop()
        self.now = 1000.0
        self.metrics = Metrics()
        self.containers: list[Container] = []
        self.files: dict[Path, list[Line]] = {}  # plain and .gz files on disk -> lines
        self.lines: dict[str, Line] = {}
        self.ids: dict[str, str] = {}  # doc id -> text
        self.id_of: dict[str, str] = {}  # text -> doc id
        self.seq = 0
        self.source: TailSource | None = None
        self.gate = asyncio.Event()
        self.reading: asyncio.Task[None] | None = None

    # -- plumbing -------------------------------------------------------------------------

    def run(self, coro: object) -> None:
        self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def config(self) -> TailConfig:
        return TailConfig(include=[str(self.root / "var/log/containers/*.log")],
                          rotate_wait_secs=ROTATE_WAIT, partial_flush_secs=ROTATE_WAIT,
                          deleted_file_timeout_secs=DELETED_TIMEOUT, read_chunk_bytes=256,
                          max_batch_records=3, exclude_own_pod=False, refresh_interval_secs=1)

    async def emit(self, batch: Batch) -> None:
        await self.gate.wait()
        for record in batch.records:
            text, doc_id = record.body["log"], record.doc_id
            assert doc_id is not None
            assert self.ids.setdefault(doc_id, text) == text, f"id {doc_id} names two lines"
            assert self.id_of.setdefault(text, doc_id) == doc_id, f"{text} got two ids"
        assert batch.ack is not None
        batch.ack.seal()

    def start(self) -> None:
        self.source = TailSource("tail", self.config(), self.state, self.metrics,
                                 clock=lambda: self.now)
        self.gate.set()
        self.run(self.source.open())
        self.look()

    def look(self) -> None:
        """One second of the watch loop (discovery, path checks, sizes, deadlines) and the
        checkpoint save after it."""
        assert self.source is not None
        self.now += 1.0
        self.source.poll_files()
        for lines in self.files.values():
            for line in lines:
                line.observed = True
        self.save()

    def save(self) -> None:
        assert self.source is not None
        self.run(self.source._save(force=True))

    def settle_reading(self) -> None:
        if self.reading is not None:
            self.run(asyncio.wait_for(self.reading, 10))
            self.reading = None

    def stop(self, crash: bool) -> None:
        assert self.source is not None
        if self.reading is not None:
            self.reading.cancel()
            self.run(asyncio.wait([self.reading]))
            self.reading = None
        if crash:
            self.source.files.close_all()  # what the last save holds is all that survives
        else:
            self.look()
            self.run(self.source.stop())
        self.source = None

    def write(self, container: Container, data: bytes) -> None:
        with open(container.current, "ab") as handle:
            handle.write(data)

    def new_line(self, container: Container) -> Line:
        self.seq += 1
        text = f"s{self.seq}-c{container.index}"
        raw = f"2024-01-01T00:00:{self.seq % 60:02d}.{self.seq:09d}Z stdout F {text}\n"
        line = Line(text, raw.encode())
        self.lines[text] = line
        return line

    def before_destroying(self) -> None:
        if self.source is not None:
            self.look()

    def destroyed(self, lines: list[Line], compressed: bool = False) -> None:
        if self.source is None and not compressed:
            for line in lines:
                if not line.observed:
                    line.unseeable = True

    @property
    def up(self) -> bool:
        return self.source is not None

    def alive(self) -> list[Container]:
        return [c for c in self.containers if c.alive]

    # -- rules ----------------------------------------------------------------------------

    @initialize(count=st.integers(1, 3))
    def setup(self, count: int) -> None:
        for index in range(count):
            container = Container(self.root, index)
            self.containers.append(container)
            self.files[container.current] = []
        self.start()

    @precondition(lambda self: self.alive())
    @rule(data=st.data(), count=st.integers(1, 12))
    def write_lines(self, data: st.DataObject, count: int) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        lines = [self.new_line(container) for _ in range(count)]
        self.write(container, b"".join(line.raw for line in lines))
        self.files[container.current].extend(lines)

    @precondition(lambda self: self.alive())
    @rule(data=st.data(), cut=st.integers(1, 40), restart=st.booleans())
    def write_a_line_in_two_halves(self, data: st.DataObject, cut: int, restart: bool) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        line = self.new_line(container)
        self.write(container, line.raw[:cut])
        if self.up and self.reading is None:
            self.look()
            self.run(self.source.read_available(self.emit))  # type: ignore[union-attr]
            self.save()
            if restart:
                self.stop(crash=False)
                self.start()
        self.write(container, line.raw[cut:])
        self.files[container.current].append(line)

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def kubelet_rotation(self, data: st.DataObject) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        self.before_destroying()
        rotated = sorted((p for p in self.files if p.parent == container.dir
                          and p.name.startswith(container.current.name + ".")),
                         key=lambda p: p.name)
        while len(rotated) > KEEP - 2:  # delete the oldest
            oldest = rotated.pop(0)
            self.destroyed(self.files.pop(oldest))
            oldest.unlink()
        for path in rotated:  # compress every rotated file not compressed yet
            if path.suffix != ".gz":
                gz = path.with_name(path.name + ".gz")
                gz.write_bytes(gzip.compress(path.read_bytes()))
                path.unlink()
                self.files[gz] = self.files.pop(path)
                self.destroyed(self.files[gz], compressed=True)
        container.stamp += 1
        target = container.current.with_name(f"{container.current.name}.{container.stamp:04d}")
        os.rename(container.current, target)
        container.current.touch()
        self.files[target] = self.files.pop(container.current)
        self.files[container.current] = []

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def copytruncate(self, data: st.DataObject) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        self.before_destroying()
        container.stamp += 1
        copy = container.current.with_name(f"{container.current.name}.{container.stamp:04d}")
        shutil.copyfile(container.current, copy)
        with open(container.current, "r+b") as handle:
            handle.truncate(0)
        self.files[copy] = self.files[container.current]
        self.files[container.current] = []

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def truncate_in_place(self, data: st.DataObject) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        self.before_destroying()
        with open(container.current, "r+b") as handle:
            handle.truncate(0)
        self.destroyed(self.files[container.current])
        self.files[container.current] = []

    @precondition(lambda self: self.alive())
    @rule(data=st.data())
    def container_restart_retargets_the_symlink(self, data: st.DataObject) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        container.restarts += 1
        container.current.touch()
        self.files[container.current] = []
        tmp = container.link.with_name(container.link.name + ".tmp")
        tmp.symlink_to(container.current)
        os.replace(tmp, container.link)

    @precondition(lambda self: len(self.alive()) > 0)
    @rule(data=st.data())
    def container_deleted(self, data: st.DataObject) -> None:
        container = data.draw(st.sampled_from(self.alive()))
        self.before_destroying()
        container.alive = False
        container.link.unlink()
        for path in [p for p in self.files if p.parent == container.dir]:
            self.destroyed(self.files.pop(path))
            path.unlink()

    @precondition(lambda self: len(self.containers) < 5)
    @rule()
    def new_container(self) -> None:
        container = Container(self.root, len(self.containers))
        self.containers.append(container)
        self.files[container.current] = []

    @precondition(lambda self: self.up)
    @rule()
    def agent_looks(self) -> None:
        self.look()

    @precondition(lambda self: self.up and self.reading is None)
    @rule()
    def agent_reads(self) -> None:
        self.run(self.source.read_available(self.emit))  # type: ignore[union-attr]
        self.save()

    @precondition(lambda self: self.up and self.reading is None)
    @rule()
    def outputs_block(self) -> None:
        assert self.source is not None
        self.gate.clear()
        self.reading = self.loop.create_task(self.source.read_available(self.emit))
        for _ in range(20):
            self.run(asyncio.sleep(0))
        self.save()  # the watch loop saves within a second, whether reading is blocked or not

    @precondition(lambda self: self.up and self.reading is not None)
    @rule()
    def outputs_recover(self) -> None:
        self.gate.set()
        self.settle_reading()
        self.save()

    @precondition(lambda self: self.up)
    @rule(secs=st.sampled_from([1.0, ROTATE_WAIT + 1, DELETED_TIMEOUT + 1]))
    def time_passes(self, secs: float) -> None:
        self.now += secs
        self.look()

    @precondition(lambda self: self.up)
    @rule(crash=st.booleans())
    def agent_stops(self, crash: bool) -> None:
        self.stop(crash)

    @precondition(lambda self: not self.up)
    @rule()
    def agent_starts(self) -> None:
        self.start()

    # -- what must always hold ------------------------------------------------------------

    @invariant()
    def ids_and_lines_stay_one_to_one(self) -> None:
        assert len(self.ids) == len(self.id_of)

    def teardown(self) -> None:
        try:
            if self.containers:
                self.finish()
        finally:
            if self.source is not None:
                self.stop(crash=True)
            self.loop.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def finish(self) -> None:
        if not self.up:
            self.start()
        self.gate.set()
        self.settle_reading()
        for _ in range(4):  # read everything, let rotated files retire, read again
            self.look()
            self.run(self.source.read_available(self.emit))  # type: ignore[union-attr]
            self.now += ROTATE_WAIT + 1
        self.look()
        self.run(self.source.read_available(self.emit))  # type: ignore[union-attr]
        on_disk = set()
        for path in (self.root / "var/log/pods").rglob("*"):
            if path.is_file() and path.suffix not in (".gz", ".tmp"):
                on_disk |= {raw.split(b" ", 3)[3].decode() for raw in path.read_bytes().split(
                    b"\n") if raw.count(b" ") >= 3}
        missing = sorted(on_disk - self.id_of.keys())
        assert not missing, f"lines still on disk were never delivered: {missing[:5]}"
        undelivered = [line for text, line in self.lines.items() if text not in self.id_of]
        lost_bytes = sum(len(line.raw) for line in undelivered)
        unseeable = sum(len(line.raw) for line in undelivered if line.unseeable)
        counted = sum(sample.value for metric in self.metrics.registry.collect()
                      for sample in metric.samples
                      if sample.name == "shipper_lost_bytes_total")
        assert counted <= lost_bytes, "more bytes counted lost than were lost"
        assert counted >= lost_bytes - unseeable, (
            f"silent loss: {lost_bytes} bytes lost, {counted} counted, {unseeable} unseeable")


TailMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("SHIPPER_TAIL_EXAMPLES", "100")), stateful_step_count=30,
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_tail_state_machine = TailMachine.TestCase


@pytest.mark.slow
def test_tail_state_machine_long() -> None:
    run = TailMachine.TestCase("runTest")
    run.settings = settings(max_examples=1000, stateful_step_count=60, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow])
    run.runTest()
