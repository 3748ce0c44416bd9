"""Hypothesis drives the disk buffer through puts, deliveries, settles, crashes and power
cuts, and checks after every step:

- no settled record ever reappears;
- no record whose ack was released (it was reported safe) is ever lost, until settled;
- nothing is invented and the order of records is kept;
- the segment files never exceed ``total_limit_bytes``, and the buffer's own count of its
  bytes is exactly what is on disk.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shipper.acks import AckGroup
from shipper.buffer.disk import DiskBuffer, DiskChunk
from shipper.buffer.disk.storage import Storage
from tests.integration.buffer.helpers import (
    disk_bytes,
    new_buffer,
    simulate_crash,
    simulate_power_loss,
    stored_payloads,
)

LIMIT = 3000


def ident(payload: bytes) -> int:
    return int(payload[:8])


class NoFsyncStorage(Storage):
    """Skips the kernel's fsync (3 ms each here, thousands per run). What a power cut
    destroys is simulated from the buffer's own record of what it fsynced, so the check is
    the same: the buffer must never release an ack for bytes it has not fsynced."""

    def fsync(self, fd: int) -> None:
        pass

    def fsync_dir(self, path: Path) -> None:
        pass

    def fsync_file(self, path: Path) -> None:
        pass


class DiskBufferMachine(RuleBasedStateMachine):
    fsync = "always"

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="shipper-buffer-"))
        self.loop = asyncio.new_event_loop()
        self.next_id = 0
        self.unsettled: list[int] = []  # accepted and not settled, in order
        self.safe: set[int] = set()  # acknowledged: must survive until settled
        self.settled: set[int] = set()
        self.in_flight: list[DiskChunk] = []
        self.buf = self._open()

    def _open(self) -> DiskBuffer:
        buf = new_buffer(self.dir, storage=NoFsyncStorage(), fsync=self.fsync,
                         fsync_interval_secs=3600, total_limit_bytes=LIMIT,
                         chunk_limit_bytes=700, chunk_limit_records=5, flush_interval_secs=0.0,
                         when_full="drop_newest", max_in_flight=1)
        self.run(buf.open())
        return buf

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    def _has_ready(self) -> bool:
        return self.buf.chunk_count > len(self.in_flight)

    @rule(n=st.integers(1, 12), size=st.integers(0, 300))
    def put(self, n: int, size: int) -> None:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        accepted: list[int] = []
        group = AckGroup(on_safe=lambda g: self.safe.update(accepted))
        self.run(self.buf.put([b"%08d" % i + b"x" * size for i in ids], group))
        accepted += ids[: n - group.dropped]  # drop_newest drops the tail of the batch
        group.seal()
        self.unsettled += accepted

    @precondition(lambda self: self.fsync == "interval")
    @rule()
    def periodic_fsync(self) -> None:
        assert self.run(self.buf._syncer.sync())

    @precondition(lambda self: self._has_ready())
    @rule(settle=st.booleans())
    def take(self, settle: bool) -> None:
        chunk = self.run(self.buf.get())
        assert chunk is not None
        got = [ident(p) for p in chunk.payloads]
        assert got == self.unsettled[len(self._in_flight_ids()):][: len(got)], (
            "chunks come out in order")
        if settle:
            self.run(self._settle(chunk))
            self._settled(got)
        else:
            self.in_flight.append(chunk)

    @precondition(lambda self: self.in_flight)
    @rule(data=st.data())
    def settle_in_flight(self, data: st.DataObject) -> None:
        chunk = self.in_flight.pop(data.draw(st.integers(0, len(self.in_flight) - 1)))
        ids = [ident(p) for p in chunk.payloads]
        self.run(self._settle(chunk))
        self._settled(ids)

    @precondition(lambda self: self.in_flight)
    @rule()
    def requeue(self) -> None:
        for chunk in reversed(self.in_flight):
            self.buf.requeue(chunk)
        self.in_flight.clear()

    @rule(power_cut=st.booleans())
    def crash_and_restart(self, power_cut: bool) -> None:
        (simulate_power_loss if power_cut else simulate_crash)(self.buf)
        self.in_flight.clear()
        stored = [ident(p) for p in stored_payloads(self.dir)]
        assert not set(stored) & self.settled, "a settled record came back"
        assert (self.safe - self.settled) <= set(stored), "an acknowledged record was lost"
        assert set(stored) <= set(self.unsettled), "a record was invented"
        assert stored == sorted(stored), "order was not kept"
        self.buf = self._open()
        self.unsettled = stored
        self.safe |= set(stored)  # recovery fsyncs what it replays

    async def _settle(self, chunk: DiskChunk) -> None:
        await self.buf.settle(chunk)  # called inside the loop, as delivery does

    def _in_flight_ids(self) -> list[int]:
        return [ident(p) for c in self.in_flight for p in c.payloads]

    def _settled(self, ids: list[int]) -> None:
        self.settled.update(ids)
        gone = set(ids)
        self.unsettled = [i for i in self.unsettled if i not in gone]

    @invariant()
    def within_the_limit_and_counted_exactly(self) -> None:
        on_disk = disk_bytes(self.dir)
        assert on_disk <= LIMIT
        assert self.buf.bytes_used == on_disk

    def teardown(self) -> None:
        try:
            self.run(self.buf.shutdown())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class IntervalFsyncMachine(DiskBufferMachine):
    fsync = "interval"


_SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
_DEEP = settings(_SETTINGS, max_examples=600, stateful_step_count=60)

TestDiskBufferAlwaysFsync = DiskBufferMachine.TestCase
TestDiskBufferAlwaysFsync.settings = _SETTINGS
TestDiskBufferIntervalFsync = IntervalFsyncMachine.TestCase
TestDiskBufferIntervalFsync.settings = _SETTINGS


class DeepAlwaysFsyncMachine(DiskBufferMachine):
    pass


class DeepIntervalFsyncMachine(IntervalFsyncMachine):
    pass


TestDeepDiskBufferAlwaysFsync = pytest.mark.slow(DeepAlwaysFsyncMachine.TestCase)
TestDeepDiskBufferAlwaysFsync.settings = _DEEP
TestDeepDiskBufferIntervalFsync = pytest.mark.slow(DeepIntervalFsyncMachine.TestCase)
TestDeepDiskBufferIntervalFsync.settings = _DEEP
