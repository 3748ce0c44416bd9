"""Files the agent had not looked at yet when it crashed are read after the restart.

The watch loop saves the checkpoints more often than it rescans the include paths, so a
save can follow a container's new file before any scan saw it. The time a restart takes as
"seen by the previous run" is therefore the start of that run's last scan, not the time of
its last save: with the save time, a file written between the last scan and the last save
of a crashed run looked old, and was neither read nor counted when first seen after the
restart.

The source is driven step by step on a fake clock (``poll_files`` is one second of the
watch loop, ``read_available`` the read loop), like the property-based test whose
falsifying examples these are.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from shipper.metrics import Metrics
from shipper.record import Batch
from shipper.sources.tail import TailConfig, TailSource


class Node:
    """A node's kubelet layout, and an agent on it that can be started, crashed, stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links = root / "var/log/containers"
        self.links.mkdir(parents=True)
        self.state = root / "state"
        self.loop = asyncio.new_event_loop()
        self.now = 1000.0
        self.metrics = Metrics()
        self.source: TailSource | None = None
        self.delivered: dict[str, str] = {}  # line -> doc id
        self.seq = 0

    # -- the files ------------------------------------------------------------------------

    def container(self, index: int) -> Path:
        """A new container: ``.../c/0.log`` and its symlink; returns its directory."""
        directory = self.root / "var/log/pods" / f"ns_pod{index}_uid{index}" / "c"
        directory.mkdir(parents=True)
        (directory / "0.log").touch()
        self.link(index).symlink_to(directory / "0.log")
        return directory

    def link(self, index: int) -> Path:
        return self.links / f"pod{index}_ns_c-{index:064x}.log"

    def retarget(self, index: int, target: Path) -> None:
        """A container restart: kubelet points the symlink at the next ``<n>.log``."""
        target.touch()
        tmp = self.link(index).with_name(self.link(index).name + ".tmp")
        tmp.symlink_to(target)
        os.replace(tmp, self.link(index))

    def write(self, path: Path) -> bytes:
        """Append one CRI line; returns it."""
        self.seq += 1
        raw = f"2024-01-01T00:00:{self.seq:02d}.{self.seq:09d}Z stdout F line {self.seq}\n"
        with open(path, "ab") as handle:
            handle.write(raw.encode())
        return raw.encode()

    @staticmethod
    def copytruncate(path: Path, stamp: int) -> None:
        shutil.copyfile(path, path.with_name(f"{path.name}.{stamp:04d}"))
        with open(path, "r+b") as handle:
            handle.truncate(0)

    @staticmethod
    def kubelet_rotation(path: Path, stamp: int) -> None:
        """Compress every older rotation, rename the current file away, start a new one."""
        for older in sorted(path.parent.glob(path.name + ".*")):
            if older.suffix != ".gz":
                older.with_name(older.name + ".gz").write_bytes(
                    gzip.compress(older.read_bytes()))
                older.unlink()
        os.rename(path, path.with_name(f"{path.name}.{stamp:04d}"))
        path.touch()

    # -- the agent ------------------------------------------------------------------------

    def run(self, coro: object) -> None:
        self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    async def emit(self, batch: Batch) -> None:
        for record in batch.records:
            assert record.doc_id is not None
            text = record.body["log"]
            assert self.delivered.setdefault(text, record.doc_id) == record.doc_id, text
        assert batch.ack is not None
        batch.ack.seal()

    def start(self, look: bool = True) -> None:
        config = TailConfig(include=[str(self.links / "*.log")], rotate_wait_secs=5,
                            partial_flush_secs=5, deleted_file_timeout_secs=60,
                            exclude_own_pod=False, refresh_interval_secs=1)
        self.source = TailSource("tail", config, self.state, self.metrics,
                                 clock=lambda: self.now)
        self.run(self.source.open())
        if look:
            self.look()

    def look(self) -> None:
        """One second of the watch loop (it rescans every second here), then a save."""
        assert self.source is not None
        self.now += 1.0
        self.source.poll_files()
        self.save()

    def save(self) -> None:
        assert self.source is not None
        self.run(self.source._save(force=True))

    def read(self) -> None:
        """The read loop ships what it can, and the watch loop saves (without a rescan)."""
        assert self.source is not None
        self.run(self.source.read_available(self.emit))
        self.save()

    def crash(self) -> None:
        """Only what the last save holds survives."""
        assert self.source is not None
        self.source.files.close_all()
        self.source = None

    def settle(self) -> None:
        """Read everything, let drained files retire, read again (bounded)."""
        for _ in range(4):
            self.look()
            self.read()
            self.now += 6.0
        self.look()
        self.read()

    def lost(self) -> dict[str, float]:
        found = {}
        for metric in self.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "shipper_lost_bytes_total" and sample.value:
                    found[sample.labels["reason"]] = sample.value
        return found

    def close(self) -> None:
        if self.source is not None:
            self.crash()
        self.loop.close()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    built = Node(tmp_path)
    yield built
    built.close()


def text_of(raw: bytes) -> str:
    return raw.decode().rstrip("\n").split(" ", 3)[3]


def test_a_restarted_containers_file_written_after_the_last_scan_is_read_after_a_crash(
        node: Node) -> None:
    directory = node.container(0)
    node.start()
    node.retarget(0, directory / "1.log")  # the container restarts...
    line = node.write(directory / "1.log")  # ...and logs, before the agent rescans
    node.read()  # a save follows, no scan yet
    node.retarget(0, directory / "2.log")  # it restarts again
    node.crash()

    node.start()
    node.settle()

    assert text_of(line) in node.delivered, "a line still on disk was never delivered"
    assert node.lost() == {}


def test_a_new_container_then_copytruncates_and_rotations_while_down_lose_only_what_was_compressed(
        node: Node) -> None:
    node.start()
    directory = node.container(4)  # a container the agent has not scanned for yet
    first = node.write(directory / "0.log")
    node.retarget(4, directory / "1.log")
    node.read()  # a save follows, no scan yet
    node.crash()

    current = directory / "1.log"  # while the agent is down:
    node.copytruncate(current, 1)
    compressed = node.write(current)
    node.kubelet_rotation(current, 2)
    node.copytruncate(current, 3)
    last = node.write(current)
    node.kubelet_rotation(current, 4)  # the generation holding ``compressed`` is gzipped

    node.start()
    node.look()
    node.link(4).unlink()  # the container is deleted
    shutil.rmtree(directory)
    node.now += 6.0
    node.look()
    node.read()
    node.settle()

    assert text_of(first) in node.delivered, "0.log was on disk after the restart"
    assert text_of(last) in node.delivered
    assert text_of(compressed) not in node.delivered
    assert node.lost() == {"compressed_unread": len(compressed)}, "counted exactly"


def test_the_saved_time_is_the_start_of_the_last_scan_not_of_the_save(node: Node) -> None:
    positions = node.state / "tail" / "positions.json"
    node.start()
    before = time.time()
    node.look()  # scans
    after = time.time()
    scanned = orjson.loads(positions.read_bytes())["saved_at"]
    assert before <= scanned <= after
    node.container(0)
    node.read()  # saves without a scan: the time is still the scan's
    assert orjson.loads(positions.read_bytes())["saved_at"] == scanned
    node.crash()

    node.start(look=False)  # a save before this run's first scan keeps the previous time
    node.save()
    assert orjson.loads(positions.read_bytes())["saved_at"] == scanned
