import asyncio
import errno
import os
import threading

import orjson
import pytest

from shipper import deadletter
from shipper.deadletter import DeadLetterFiles, DeadLetterStore
from shipper.errors import StorageError
from shipper.metrics import DEAD_LETTER_OPS, Metrics
from shipper.protocols import ItemError


def read_all(directory):
    return [orjson.loads(line) for f in sorted(directory.glob("*.ndjson"))
            for line in f.read_bytes().splitlines()]


def test_each_line_keeps_record_target_and_reason(tmp_path):
    store = DeadLetterStore(tmp_path, Metrics())
    err = ItemError(400, "document_parsing_exception", "failed to parse field [log]")
    entry = {"index": "logstash-2026.11.22", "record": {"log": {}}}
    assert store.write_blocking("es", [(entry, err)]) == 1
    [line] = read_all(tmp_path)
    assert line["record"] == {"log": {}}
    assert line["index"] == "logstash-2026.11.22"
    assert line["error"] == {"status": 400, "type": "document_parsing_exception",
                             "reason": "failed to parse field [log]"}
    assert line["output"] == "es"


def test_store_is_bounded_and_counts_what_it_cannot_keep(tmp_path):
    m = Metrics()
    store = DeadLetterStore(tmp_path, m, max_bytes=400)
    err = ItemError(400, "x", "y")
    entries = [({"record": {"n": i, "pad": "p" * 50}}, err) for i in range(10)]
    stored = store.write_blocking("es", entries)
    assert 0 < stored < 10
    assert len(read_all(tmp_path)) == stored
    dropped = m.registry.get_sample_value("shipper_records_dropped_total",
                                          {"output": "es", "reason": "dead_letter_full"})
    assert dropped == 10 - stored
    assert sum(f.stat().st_size for f in tmp_path.glob("*.ndjson")) <= 400


class FaultyFiles(DeadLetterFiles):
    """Fails the named step with an errno until cleared; records the threads that wrote."""

    def __init__(self) -> None:
        self.faults: dict[str, int] = {}
        self.partial = False  # pwrite: half the bytes land before the error
        self.threads: set[int] = set()

    def _maybe(self, op: str) -> None:
        code = self.faults.get(op)
        if code is not None:
            raise OSError(code, os.strerror(code))

    def makedirs(self, directory):
        self._maybe("mkdir")
        super().makedirs(directory)

    def usage(self, directory):
        self._maybe("usage")
        return super().usage(directory)

    def open(self, path):
        self._maybe("open")
        return super().open(path)

    def pwrite(self, fd, data, offset):
        self.threads.add(threading.get_ident())
        if self.partial and "write" in self.faults:
            os.pwrite(fd, data[: len(data) // 2], offset)
        self._maybe("write")
        super().pwrite(fd, data, offset)

    def fsync(self, fd):
        self.threads.add(threading.get_ident())
        self._maybe("fsync")
        super().fsync(fd)

    def fsync_dir(self, directory):
        self._maybe("fsync_dir")
        super().fsync_dir(directory)


def entries(n, start=0):
    err = ItemError(400, "mapper_parsing_exception", "bad field")
    return [({"record": {"n": i}}, err) for i in range(start, start + n)]


def storage_errors(m, op):
    return m.registry.get_sample_value(
        "shipper_storage_errors_total",
        {"component": "dead_letter", "output": "es", "op": op}) or 0


def dead_lettered(m):
    return m.registry.get_sample_value(
        "shipper_records_dead_lettered_total",
        {"output": "es", "reason": "mapper_parsing_exception"}) or 0


@pytest.mark.parametrize("op", ["mkdir", "usage", "open", "write", "fsync", "fsync_dir"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EEXIST, errno.EACCES])
def test_a_failed_step_raises_storage_error_leaves_nothing_and_the_retry_writes_once(
        tmp_path, op, code):
    assert op in DEAD_LETTER_OPS, "declared at zero up front"
    m, files = Metrics(), FaultyFiles()
    store = DeadLetterStore(tmp_path / "dl", m, files=files)
    files.faults[op] = code
    files.partial = True
    with pytest.raises(StorageError, match=os.strerror(code)):
        store.write_blocking("es", entries(3))
    assert storage_errors(m, op) == 1
    assert dead_lettered(m) == 0, "nothing counted as dead-lettered before it is durable"
    assert read_all(tmp_path / "dl") == [], "no line, not even half of one"
    del files.faults[op]
    assert store.write_blocking("es", entries(3)) == 3
    assert [line["record"]["n"] for line in read_all(tmp_path / "dl")] == [0, 1, 2]
    assert dead_lettered(m) == 3


def test_a_failed_append_is_cut_off_so_existing_lines_stay_whole(tmp_path):
    m, files = Metrics(), FaultyFiles()
    store = DeadLetterStore(tmp_path, m, files=files)
    store.write_blocking("es", entries(2))
    before = {f: f.read_bytes() for f in tmp_path.glob("*.ndjson")}
    files.faults["write"] = errno.ENOSPC
    files.partial = True
    with pytest.raises(StorageError):
        store.write_blocking("es", entries(2, 2))
    assert {f: f.read_bytes() for f in tmp_path.glob("*.ndjson")} == before
    files.faults.clear()
    store.write_blocking("es", entries(1, 4))
    assert [line["record"]["n"] for line in read_all(tmp_path)] == [0, 1, 4]


def test_a_torn_last_line_is_not_continued(tmp_path):
    store = DeadLetterStore(tmp_path, Metrics())
    store.write_blocking("es", entries(1))
    [path] = tmp_path.glob("*.ndjson")
    with open(path, "ab") as fh:
        fh.write(b'{"record":{"n":')  # a crash in the middle of a line
    store.write_blocking("es", entries(1, 7))
    lines = path.read_bytes().splitlines()
    assert lines[1] == b'{"record":{"n":'
    assert orjson.loads(lines[2])["record"] == {"n": 7}


def test_a_file_where_the_directory_should_be_is_a_storage_error(tmp_path):
    (tmp_path / "dl").write_text("not a directory")
    m = Metrics()
    store = DeadLetterStore(tmp_path / "dl", m)
    with pytest.raises(StorageError, match="mkdir"):
        store.write_blocking("es", entries(1))
    assert storage_errors(m, "mkdir") == 1


async def test_the_write_and_fsync_run_off_the_event_loop(tmp_path):
    files = FaultyFiles()
    store = DeadLetterStore(tmp_path, Metrics(), files=files)
    assert await store.write("es", entries(2)) == 2
    assert files.threads and threading.get_ident() not in files.threads
    assert len(read_all(tmp_path)) == 2


async def test_concurrent_writers_never_interleave_lines(tmp_path):
    store = DeadLetterStore(tmp_path, Metrics())
    await asyncio.gather(*(store.write("es", entries(50, 100 * k)) for k in range(8)))
    numbers = sorted(line["record"]["n"] for line in read_all(tmp_path))
    assert numbers == sorted(100 * k + i for k in range(8) for i in range(50))


def es_entries(ids, reason="mapper_parsing_exception"):
    err = ItemError(400, reason, "bad field")
    return [({"index": "logs", "_id": i, "op": "create", "record": {"id": i}}, err)
            for i in ids]


def duplicates(m):
    return m.registry.get_sample_value(
        "shipper_records_dead_lettered_duplicate_total", {"output": "es"}) or 0


def test_a_record_rejected_again_is_not_written_twice_and_counted_as_a_duplicate(tmp_path):
    m = Metrics()
    m.declare_output("es")
    store = DeadLetterStore(tmp_path, m)
    assert store.write_blocking("es", es_entries(["a", "b"])) == 2
    assert store.write_blocking("es", es_entries(["b", "c", "a"])) == 1
    assert [line["_id"] for line in read_all(tmp_path)] == ["a", "b", "c"]
    assert dead_lettered(m) == 3, "each rejected record counted once"
    assert duplicates(m) == 2


def test_a_restarted_store_recognises_the_ids_already_in_its_files(tmp_path):
    store = DeadLetterStore(tmp_path, Metrics())
    store.write_blocking("es", es_entries(["a", "b"]))
    store.write_blocking("es-2", es_entries(["c"]))  # another output's file: not its ids
    m = Metrics()
    again = DeadLetterStore(tmp_path, m)  # a new run after a crash re-read the lines
    assert again.write_blocking("es", es_entries(["a", "b", "c"])) == 1
    assert sorted(line["_id"] for line in read_all(tmp_path)) == ["a", "b", "c", "c"]
    assert dead_lettered(m) == 1
    assert duplicates(m) == 2


def test_the_same_id_twice_in_one_write_is_stored_once(tmp_path):
    m = Metrics()
    store = DeadLetterStore(tmp_path, m)
    assert store.write_blocking("es", es_entries(["a", "a"])) == 1
    assert len(read_all(tmp_path)) == 1
    assert (dead_lettered(m), duplicates(m)) == (1, 1)


def test_records_without_an_id_are_written_every_time(tmp_path):
    m = Metrics()
    store = DeadLetterStore(tmp_path, m)
    store.write_blocking("es", entries(2))
    store.write_blocking("es", entries(2))
    assert len(read_all(tmp_path)) == 4
    assert (dead_lettered(m), duplicates(m)) == (4, 0)


def test_a_failed_write_does_not_mark_its_ids_as_stored(tmp_path):
    m, files = Metrics(), FaultyFiles()
    store = DeadLetterStore(tmp_path, m, files=files)
    files.faults["fsync"] = errno.ENOSPC
    with pytest.raises(StorageError):
        store.write_blocking("es", es_entries(["a"]))
    files.faults.clear()
    assert store.write_blocking("es", es_entries(["a"])) == 1
    assert [line["_id"] for line in read_all(tmp_path)] == ["a"]
    assert (dead_lettered(m), duplicates(m)) == (1, 0)


def test_records_the_full_store_dropped_are_not_taken_for_stored(tmp_path):
    m = Metrics()
    store = DeadLetterStore(tmp_path, m, max_bytes=300)
    stored = store.write_blocking("es", es_entries([f"id{i}" for i in range(5)]))
    assert 0 < stored < 5
    assert duplicates(m) == 0
    dropped = m.registry.get_sample_value("shipper_records_dropped_total",
                                          {"output": "es", "reason": "dead_letter_full"})
    assert dropped == 5 - stored


def test_the_restart_scan_reads_only_the_two_newest_files_and_a_bounded_tail(
        tmp_path, monkeypatch):
    line = b'{"_id":"%s","output":"es"}\n'
    (tmp_path / "es-2026.12.01.ndjson").write_bytes(line % b"old")
    (tmp_path / "es-2026.12.05.ndjson").write_bytes(line % b"prev")
    (tmp_path / "es-2026.12.06.ndjson").write_bytes(
        line % b"early" + b"x" * 100 + b"\n" + line % b"late" + b'{"_id":"to')
    monkeypatch.setattr(deadletter, "SCAN_BYTES", len(line % b"late") + 20)
    store = DeadLetterStore(tmp_path, Metrics())
    recent = store._recent_ids("es")
    assert "late" in recent
    assert "early" not in recent and "prev" not in recent, "past the byte bound"
    assert "old" not in recent, "only the current and previous files are read"


def test_the_remembered_ids_are_bounded():
    recent = deadletter.RecentIds(limit=3)
    for i in "abcde":
        recent.add(i)
    recent.add("e")
    assert len(recent) == 3
    assert "b" not in recent and all(i in recent for i in "cde")


def test_an_unreadable_file_only_costs_the_deduplication(tmp_path):
    class Unreadable(DeadLetterFiles):
        def read_tail(self, path, limit):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    DeadLetterStore(tmp_path, Metrics()).write_blocking("es", es_entries(["a"]))
    store = DeadLetterStore(tmp_path, Metrics(), files=Unreadable())
    assert store.write_blocking("es", es_entries(["a"])) == 1, "written again, not lost"
