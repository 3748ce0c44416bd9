import asyncio
import errno
import os
import threading

import orjson
import pytest

from shipper.deadletter import DeadLetterFiles, DeadLetterStore
from shipper.errors import StorageError
from shipper.metrics import Metrics
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
